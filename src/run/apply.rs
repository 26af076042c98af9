//! Step 6 of a run: writes the plan with server-side apply under one field manager, splitting large
//! member lists into shard objects labelled `usersync.io/shard-of`, and writing only the objects
//! whose content changes.

use std::collections::{BTreeMap, HashMap as StdHashMap};
use std::sync::Mutex;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use governor::DefaultDirectRateLimiter;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::core::PartialObjectMeta;
use kube::{Resource, ResourceExt};

use super::api_error::ApiError;
use super::fence::{Fenced, WriteFence};
use crate::api::{
    EXTINCT_SINCE_ANNOTATION, FIELD_MANAGER, SHARD_OF_LABEL, SHARED_ROOT_MANAGER,
    SPEC_DIGEST_ANNOTATION, SYNCHRONIZATION_LABEL, UserGroup, UserGroupSpec, UserGroupStatus,
    UserSynchronization,
};
use crate::planner::current::ClusterState;
use crate::planner::names::shard_name;
use crate::planner::plan::Plan;
use crate::planner::shard::parts;

/// What one run wrote: objects applied (with the resourceVersion the apiserver answered) and
/// removed, so that a watch-backed view can wait until it shows them.
#[derive(Debug, Default)]
pub struct Written {
    pub applied: StdHashMap<String, String>,
    pub removed: Vec<String>,
}

/// What an apiserver sends for `Accept` of an object's metadata alone.
pub const METADATA_ONLY: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";

/// One stored object, in brief.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    spec_hash: u64,
    user_count: Option<i64>,
    extinct: bool,
}

/// The index of the managedFields entry usersync's create left (operation `Update`, not yet taken
/// into apply ownership), if the object has one.
pub fn created_entry(meta: &ObjectMeta) -> Option<usize> {
    meta.managed_fields.iter().flatten().position(|f| {
        f.manager.as_deref() == Some(FIELD_MANAGER)
            && f.operation.as_deref() == Some("Update")
            && f.subresource.as_deref().unwrap_or_default().is_empty()
    })
}

/// Whether `after` leaves out a field `before` has (in its spec, labels or annotations): lists
/// count as one field, as the schema keeps them whole.
fn drops_fields(before: &UserGroup, after: &UserGroup) -> bool {
    fn drops(before: &serde_json::Value, after: &serde_json::Value) -> bool {
        let (Some(before), Some(after)) = (before.as_object(), after.as_object()) else {
            return false;
        };
        before.iter().any(|(key, value)| match after.get(key) {
            None => !value.is_null(),
            Some(kept) => drops(value, kept),
        })
    }
    let fields = |g: &UserGroup| {
        serde_json::json!({
            "spec": g.spec, "labels": g.metadata.labels, "annotations": g.metadata.annotations,
        })
    };
    drops(&fields(before), &fields(after))
}

/// Compared only within this process, so a fast hash with a fixed seed will do.
fn spec_hash(spec: &UserGroupSpec) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x75_73_65_72_73_79_6e_63).hash_one(spec)
}

fn stored(group: &UserGroup) -> Stored {
    Stored {
        spec_hash: spec_hash(&group.spec),
        user_count: group.status.as_ref().map(|s| s.user_count),
        extinct: group.annotations().contains_key(EXTINCT_SINCE_ANNOTATION),
    }
}

/// Counts of what a plan's application wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub created: usize,
    pub updated: usize,
    pub removed: usize,
    pub marked: usize,
}

/// Writes a plan. `shard_bytes` bounds the serialized members kept in one object.
pub struct Writer<'a> {
    pub api: &'a Api<UserGroup>,
    pub task: &'a UserSynchronization,
    pub state: &'a ClusterState<'a>,
    pub shard_bytes: usize,
    /// Objects written at the same time.
    pub concurrency: usize,
    /// The operator's write rate, shared by every run.
    pub limit: Option<&'a DefaultDirectRateLimiter>,
    /// What was written, for the watch-backed view to catch up with.
    pub written: Mutex<Written>,
    /// Asked before every write.
    pub fence: &'a WriteFence,
    /// The cluster's UserGroup CRD still has a status subresource (one from before the count
    /// moved into the object): the count is then a write of its own (see [`status_subresource`]).
    pub status_subresource: bool,
}

/// Whether the cluster's UserGroup CRD has a status subresource, by API discovery (which every
/// client may read). A CRD from an earlier version has one until it is upgraded, and ignores a
/// status sent with the object.
pub async fn status_subresource(client: &kube::Client) -> Result<bool, ApiError> {
    let api_version = UserGroup::api_version(&());
    let resources = client
        .list_api_group_resources(&api_version)
        .await
        .map_err(ApiError::while_("discovering the UserGroup API"))?;
    let status = format!("{}/status", UserGroup::plural(&()));
    Ok(resources.resources.iter().any(|r| r.name == status))
}

/// Why a write was not made.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Fenced(#[from] Fenced),
}

impl<'a> Writer<'a> {
    pub async fn apply(&self, plan: &Plan, now: &str) -> Result<Applied, WriteError> {
        let marks: Vec<(&str, &UserGroupSpec)> = plan
            .mark_extinct
            .iter()
            .filter_map(|name| {
                let current = self.state.groups.iter().find(|c| &c.name == name)?;
                Some((name.as_str(), &*current.spec))
            })
            .collect();
        let applied = Applied {
            created: plan.create.len(),
            updated: plan.update.len(),
            marked: marks.len(),
            removed: plan.remove.len(),
        };
        // Objects are independent of each other (parents are referenced by name), so they are
        // written concurrently, a bounded number at a time. Each write's future is made when its
        // turn comes: an unpolled write is a few KiB, and a full sync has one per object.
        let puts: Vec<Write<'_>> = plan
            .create
            .iter()
            .chain(&plan.update)
            .map(|w| Write::Put(&w.name, &w.spec, None))
            .chain(
                marks
                    .into_iter()
                    .map(|(name, spec)| Write::Put(name, spec, Some(now))),
            )
            .collect();
        self.in_turn(puts).await?;
        if let Some(root) = &plan.attached_to {
            self.keep_root(root).await?;
        }
        let deletes = plan.remove.iter().flat_map(|name| {
            let shards = self
                .state
                .shards
                .get(name)
                .map(Vec::as_slice)
                .unwrap_or_default();
            std::iter::once(name).chain(shards)
        });
        let deletes = deletes.map(|name| Write::Delete(name)).collect();
        self.in_turn(deletes).await?;
        Ok(applied)
    }

    /// Runs the writes, `concurrency` at a time, each future made when its turn comes. The stream
    /// is boxed where its lifetimes are known: the controller must see the run's future as Send
    /// for every lifetime.
    async fn in_turn<'w>(&'w self, writes: Vec<Write<'w>>) -> Result<(), WriteError> {
        let writes = Lazily {
            writer: self,
            items: writes.into_iter(),
        };
        let stream: BoxStream<'w, Result<(), WriteError>> = futures::stream::iter(writes)
            .buffer_unordered(self.concurrency.max(1))
            .boxed();
        stream.try_collect::<Vec<()>>().await.map(drop)
    }

    /// Applies the whole group as this task wants it, shards included. Fields usersync applied before
    /// and leaves out now (such as the extinct-since annotation) are removed by the apiserver.
    async fn put(
        &self,
        name: &str,
        spec: &UserGroupSpec,
        extinct_since: Option<&str>,
    ) -> Result<(), WriteError> {
        let mut parts = parts(name, spec, self.shard_bytes).into_iter();
        let count = parts.len();
        if let Some(base) = parts.next() {
            self.apply_object(name, base, None, extinct_since, spec.users.len())
                .await?;
        }
        for (i, shard) in parts.enumerate() {
            let users = shard.users.len();
            self.apply_object(&shard_name(name, i + 1), shard, Some(name), None, users)
                .await?;
        }
        let stale = self
            .state
            .shards
            .get(name)
            .map(Vec::as_slice)
            .unwrap_or_default();
        // Shards past the new count, and any under a name this version does not give them.
        let wanted: Vec<String> = (1..count).map(|i| shard_name(name, i)).collect();
        for old in stale.iter().filter(|s| !wanted.contains(s)) {
            self.delete(old).await?;
        }
        Ok(())
    }

    async fn apply_object(
        &self,
        name: &str,
        spec: UserGroupSpec,
        shard_of: Option<&str>,
        extinct_since: Option<&str>,
        user_count: usize,
    ) -> Result<(), WriteError> {
        let mut group = UserGroup::new(name, spec);
        let mut labels = BTreeMap::from([(SYNCHRONIZATION_LABEL.to_owned(), self.task.name_any())]);
        if let Some(base) = shard_of {
            labels.insert(SHARD_OF_LABEL.to_owned(), base.to_owned());
        }
        group.metadata.labels = Some(labels);
        group.metadata.owner_references = self.task.controller_owner_ref(&()).map(|r| vec![r]);
        // Only the objects a run writes are hashed, not every stored one.
        let current = self.state.stored.get(name).map(|g| stored(g));
        let wanted = Stored {
            spec_hash: spec_hash(&group.spec),
            user_count: Some(user_count as i64),
            extinct: extinct_since.is_some(),
        };
        let seen = self
            .state
            .stored
            .get(name)
            .or_else(|| self.state.foreign.get(name));
        let mut version = seen.and_then(|g| g.resource_version());
        let in_object = !self.status_subresource;
        let unchanged = current.as_ref().is_some_and(|c| {
            c.spec_hash == wanted.spec_hash
                && c.extinct == wanted.extinct
                && (!in_object || c.user_count == wanted.user_count)
        });
        if in_object {
            group.status = Some(UserGroupStatus {
                user_count: user_count as i64,
            });
        }
        if !unchanged {
            // An object unchanged but for a missing digest (written by an older usersync) is left
            // alone: readers that cannot vouch for it download it.
            let mut annotations =
                BTreeMap::from([(SPEC_DIGEST_ANNOTATION.to_owned(), group.spec.digest())]);
            if let Some(since) = extinct_since {
                annotations.insert(EXTINCT_SINCE_ANNOTATION.to_owned(), since.to_owned());
            }
            group.metadata.annotations = Some(annotations);
            let written = match seen {
                None => self.create(&group).await?,
                Some(seen) => self.overwrite(group, seen).await?,
            };
            version = written.resource_version();
            self.record(name, &written);
        }
        if in_object || current.is_some_and(|c| c.user_count == wanted.user_count) {
            return Ok(());
        }
        let status = serde_json::json!({
            "apiVersion": UserGroup::api_version(&()),
            "kind": UserGroup::kind(&()),
            "metadata": {"resourceVersion": version},
            "status": UserGroupStatus { user_count: user_count as i64 },
        });
        self.pace().await?;
        let stored = self
            .apply_status(name, &status)
            .await
            .map_err(ApiError::while_("applying a UserGroup status"))?;
        self.record(name, &stored);
        Ok(())
    }

    /// Creates an object the plan found nowhere. Never an apply: an object of that name that
    /// appeared since (made by a person, another task or a newer leader) is a conflict for the next
    /// run to plan with, never taken over.
    async fn create(&self, group: &UserGroup) -> Result<PartialObjectMeta<UserGroup>, WriteError> {
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PostParams::default()
        };
        let body = serde_json::to_vec(group).map_err(|e| ApiError {
            step: "creating a UserGroup",
            source: kube::Error::SerdeError(e),
        })?;
        let request = kube::core::Request::new(self.api.resource_url())
            .create(&params, body)
            .map_err(kube::Error::BuildRequest)
            .map_err(ApiError::while_("creating a UserGroup"))?;
        self.pace().await?;
        Ok(self
            .metadata_of(request)
            .await
            .map_err(ApiError::while_("creating a UserGroup"))?)
    }

    /// Applies over the object as the plan saw it, and only that: its uid and resourceVersion are
    /// preconditions, so an object replaced or changed since fails the run with a conflict instead
    /// of being written over (a takeover under `collisionPolicy: Overwrite` included).
    async fn overwrite(
        &self,
        mut group: UserGroup,
        seen: &UserGroup,
    ) -> Result<PartialObjectMeta<UserGroup>, WriteError> {
        group.metadata.uid = seen.metadata.uid.clone();
        group.metadata.resource_version = seen.metadata.resource_version.clone();
        if let Some(entry) = created_entry(&seen.metadata).filter(|_| drops_fields(seen, &group)) {
            let converted = self.own_by_apply(seen, entry).await?;
            group.metadata.resource_version = converted.resource_version();
        }
        // Force: this task is the only writer of these fields, and Overwrite takes objects over.
        let params = PatchParams::apply(FIELD_MANAGER).force();
        self.pace().await?;
        // Only the metadata comes back: the whole object would repeat every member.
        Ok(self
            .api
            .patch_metadata(&group.name_any(), &params, &Patch::Apply(&group))
            .await
            .map_err(ApiError::while_("applying a UserGroup"))?)
    }

    /// A created object's fields belong to usersync's `Update` entry, which a later apply neither
    /// replaces nor removes: a field the apply leaves out would stay. Renaming the entry to `Apply`
    /// (once, before the first apply that leaves a field out) lets the apply remove it.
    async fn own_by_apply(
        &self,
        seen: &UserGroup,
        entry: usize,
    ) -> Result<PartialObjectMeta<UserGroup>, WriteError> {
        let operation = format!("/metadata/managedFields/{entry}/operation");
        let ops = serde_json::json!([
            {"op": "test", "path": operation, "value": "Update"},
            {"op": "replace", "path": operation, "value": "Apply"},
        ]);
        let step = "taking a created UserGroup into apply ownership";
        self.json_patch(seen, ops, FIELD_MANAGER, step).await
    }

    /// Applies a status (its resourceVersion a precondition) and takes back only the metadata, as
    /// `patch_metadata` does for the object.
    async fn apply_status(
        &self,
        name: &str,
        status: &serde_json::Value,
    ) -> Result<PartialObjectMeta<UserGroup>, kube::Error> {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let request = kube::core::Request::new(self.api.resource_url())
            .patch_subresource("status", name, &params, &Patch::Apply(status))
            .map_err(kube::Error::BuildRequest)?;
        self.metadata_of(request).await
    }

    /// Sends a write and takes back only the metadata of the object written.
    async fn metadata_of(
        &self,
        mut request: http::Request<Vec<u8>>,
    ) -> Result<PartialObjectMeta<UserGroup>, kube::Error> {
        request.headers_mut().insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static(METADATA_ONLY),
        );
        self.api.clone().into_client().request(request).await
    }

    /// Deletes the object as the plan saw it, and only that: the uid and resourceVersion it was
    /// planned from are preconditions, so an object replaced or changed since (by a person, or a
    /// newer leader) stays, and the run fails with a conflict for the next one to look again.
    async fn delete(&self, name: &str) -> Result<(), WriteError> {
        let Some(seen) = self.state.stored.get(name) else {
            // Not one of this task's objects as the plan saw them: nothing vouches for removing it.
            return Ok(());
        };
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: seen.metadata.uid.clone(),
                resource_version: seen.metadata.resource_version.clone(),
            }),
            ..DeleteParams::background()
        };
        self.pace().await?;
        match self.api.delete(name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.is_not_found() => {}
            Err(e) => return Err(ApiError::while_("removing a UserGroup")(e).into()),
        }
        self.lock().removed.push(name.to_owned());
        Ok(())
    }

    /// A root another task made, that this task's tree hangs below, gets this task's owner
    /// reference beside the other's (not as controller): the garbage collector then removes it
    /// only when every task that uses it is gone, so the tasks can be deleted independently.
    /// Nothing else of it is written, and a root no task made (by hand, by GitOps) is never
    /// touched.
    async fn keep_root(&self, root: &str) -> Result<(), WriteError> {
        let Some(seen) = self.state.foreign.get(root) else {
            return Ok(());
        };
        let owners = seen.owner_references();
        let Some(reference) = self.task.owner_ref(&()) else {
            return Ok(());
        };
        let made_by_a_task = seen.labels().contains_key(SYNCHRONIZATION_LABEL)
            && !seen.labels().contains_key(SHARD_OF_LABEL);
        if !made_by_a_task || owners.is_empty() || owners.iter().any(|o| o.uid == reference.uid) {
            return Ok(());
        }
        let ops = serde_json::json!([
            {"op": "add", "path": "/metadata/ownerReferences/-", "value": reference},
        ]);
        // A manager of its own: the other task's applies never take over (and drop) the reference.
        let stored = self
            .json_patch(seen, ops, SHARED_ROOT_MANAGER, "keeping the shared root")
            .await?;
        self.record(root, &stored);
        Ok(())
    }

    /// A JSON patch of `ops` on the object as the plan saw it (its resourceVersion tested first),
    /// under `manager`; only the metadata comes back.
    async fn json_patch(
        &self,
        seen: &UserGroup,
        ops: serde_json::Value,
        manager: &str,
        step: &'static str,
    ) -> Result<PartialObjectMeta<UserGroup>, WriteError> {
        let version = serde_json::json!(
            {"op": "test", "path": "/metadata/resourceVersion", "value": seen.resource_version()}
        );
        let ops = std::iter::once(version).chain(ops.as_array().into_iter().flatten().cloned());
        let patch =
            serde_json::from_value(serde_json::Value::Array(ops.collect())).map_err(|e| {
                ApiError {
                    step,
                    source: kube::Error::SerdeError(e),
                }
            })?;
        let params = PatchParams {
            field_manager: Some(manager.to_owned()),
            ..PatchParams::default()
        };
        self.pace().await?;
        Ok(self
            .api
            .patch_metadata(&seen.name_any(), &params, &Patch::Json::<()>(patch))
            .await
            .map_err(ApiError::while_(step))?)
    }

    /// Waits until the operator's write rate allows one more write, then asks the fence: the wait
    /// (or a pause of the whole process) may have outlasted this replica's lease.
    async fn pace(&self) -> Result<(), Fenced> {
        if let Some(limit) = self.limit {
            limit.until_ready().await;
        }
        self.fence.check()
    }

    fn record(&self, name: &str, stored: &PartialObjectMeta<UserGroup>) {
        if let Some(version) = stored.resource_version() {
            self.lock().applied.insert(name.to_owned(), version);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Written> {
        self.written.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One write of a run: an object's name, its spec and when it was marked extinct; or a removal.
enum Write<'w> {
    Put(&'w str, &'w UserGroupSpec, Option<&'w str>),
    Delete(&'w str),
}

/// Writes, each future made when the stream asks for it. A named iterator rather than a map over
/// a closure: the controller must see the stream over it as Send.
struct Lazily<'w, 'a> {
    writer: &'w Writer<'a>,
    items: std::vec::IntoIter<Write<'w>>,
}

impl<'w> Iterator for Lazily<'w, '_> {
    type Item = BoxFuture<'w, Result<(), WriteError>>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(match self.items.next()? {
            Write::Put(name, spec, extinct_since) => {
                Box::pin(self.writer.put(name, spec, extinct_since))
            }
            Write::Delete(name) => Box::pin(self.writer.delete(name)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(description: Option<&str>, annotations: &[&str]) -> UserGroup {
        let mut group = UserGroup::new(
            "g",
            UserGroupSpec {
                display_name: "G".into(),
                description: description.map(str::to_owned),
                ..UserGroupSpec::default()
            },
        );
        group.metadata.annotations = Some(
            annotations
                .iter()
                .map(|a| ((*a).to_owned(), "x".to_owned()))
                .collect(),
        );
        group
    }

    #[test]
    fn a_field_left_out_is_a_drop_and_a_changed_or_added_one_is_not() {
        let digest = SPEC_DIGEST_ANNOTATION;
        let extinct = EXTINCT_SINCE_ANNOTATION;
        assert!(drops_fields(
            &group(Some("d"), &[digest]),
            &group(None, &[digest])
        ));
        assert!(drops_fields(
            &group(None, &[digest, extinct]),
            &group(None, &[digest])
        ));
        assert!(!drops_fields(
            &group(Some("d"), &[digest]),
            &group(Some("e"), &[digest])
        ));
        assert!(!drops_fields(
            &group(None, &[digest]),
            &group(Some("e"), &[digest, extinct])
        ));
    }
}
