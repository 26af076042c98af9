//! Step 6 of a run: writes the plan with server-side apply under one field manager, splitting large
//! member lists into shard objects labelled `usersync.io/shard-of`, and writing only the objects
//! whose content changes.

use std::collections::{BTreeMap, HashMap as StdHashMap};
use std::sync::Mutex;

use futures::{StreamExt, TryStreamExt};
use governor::DefaultDirectRateLimiter;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::core::PartialObjectMeta;
use kube::{Resource, ResourceExt};

use super::api_error::ApiError;
use crate::api::{
    EXTINCT_SINCE_ANNOTATION, FIELD_MANAGER, SHARD_OF_LABEL, SPEC_DIGEST_ANNOTATION,
    SYNCHRONIZATION_LABEL, UserGroup, UserGroupSpec, UserGroupStatus, UserSynchronization,
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
const METADATA_ONLY: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";

/// One stored object, in brief.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    spec_hash: u64,
    user_count: Option<i64>,
    extinct: bool,
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
}

impl Writer<'_> {
    pub async fn apply(&self, plan: &Plan, now: &str) -> Result<Applied, ApiError> {
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
        // written concurrently, a bounded number at a time. The futures are collected first: a
        // stream over a closure's futures is not provably Send to the controller.
        let puts: Vec<_> = plan
            .create
            .iter()
            .chain(&plan.update)
            .map(|w| self.put(&w.name, &w.spec, None))
            .chain(
                marks
                    .into_iter()
                    .map(|(name, spec)| self.put(name, spec, Some(now))),
            )
            .collect();
        futures::stream::iter(puts)
            .buffer_unordered(self.concurrency.max(1))
            .try_collect::<Vec<()>>()
            .await?;
        let deletes = plan.remove.iter().flat_map(|name| {
            let shards = self
                .state
                .shards
                .get(name)
                .map(Vec::as_slice)
                .unwrap_or_default();
            std::iter::once(name).chain(shards)
        });
        let deletes: Vec<_> = deletes.map(|object| self.delete(object)).collect();
        futures::stream::iter(deletes)
            .buffer_unordered(self.concurrency.max(1))
            .try_collect::<Vec<()>>()
            .await?;
        Ok(applied)
    }

    /// Applies the whole group as this task wants it, shards included. Fields usersync applied before
    /// and leaves out now (such as the extinct-since annotation) are removed by the apiserver.
    async fn put(
        &self,
        name: &str,
        spec: &UserGroupSpec,
        extinct_since: Option<&str>,
    ) -> Result<(), ApiError> {
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
    ) -> Result<(), ApiError> {
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
        // Force: this task is the only writer of these fields, and Overwrite takes objects over.
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let unchanged = current
            .as_ref()
            .is_some_and(|c| c.spec_hash == wanted.spec_hash && c.extinct == wanted.extinct);
        if !unchanged {
            // An object unchanged but for a missing digest (written by an older usersync) is left
            // alone: readers that cannot vouch for it download it.
            let mut annotations =
                BTreeMap::from([(SPEC_DIGEST_ANNOTATION.to_owned(), group.spec.digest())]);
            if let Some(since) = extinct_since {
                annotations.insert(EXTINCT_SINCE_ANNOTATION.to_owned(), since.to_owned());
            }
            group.metadata.annotations = Some(annotations);
            self.pace().await;
            // Only the metadata comes back: the whole object would repeat every member.
            let stored = self
                .api
                .patch_metadata(name, &params, &Patch::Apply(&group))
                .await
                .map_err(ApiError::while_("applying a UserGroup"))?;
            self.record(name, &stored);
        }
        if current.is_some_and(|c| c.user_count == wanted.user_count) {
            return Ok(());
        }
        let status = serde_json::json!({
            "apiVersion": UserGroup::api_version(&()),
            "kind": UserGroup::kind(&()),
            "status": UserGroupStatus { user_count: user_count as i64 },
        });
        self.pace().await;
        let stored = self
            .apply_status(name, &params, &status)
            .await
            .map_err(ApiError::while_("applying a UserGroup status"))?;
        self.record(name, &stored);
        Ok(())
    }

    /// Applies a status and takes back only the metadata, as `patch_metadata` does for the object.
    async fn apply_status(
        &self,
        name: &str,
        params: &PatchParams,
        status: &serde_json::Value,
    ) -> Result<PartialObjectMeta<UserGroup>, kube::Error> {
        let mut request = kube::core::Request::new(self.api.resource_url())
            .patch_subresource("status", name, params, &Patch::Apply(status))
            .map_err(kube::Error::BuildRequest)?;
        request.headers_mut().insert(
            http::header::ACCEPT,
            http::HeaderValue::from_static(METADATA_ONLY),
        );
        self.api.clone().into_client().request(request).await
    }

    /// Deletes the object as the plan saw it, and only that: the uid and resourceVersion it was
    /// planned from are preconditions, so an object replaced or changed since (by a person, or a
    /// newer leader) stays, and the run fails with a conflict for the next one to look again.
    async fn delete(&self, name: &str) -> Result<(), ApiError> {
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
        self.pace().await;
        match self.api.delete(name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.is_not_found() => {}
            Err(e) => return Err(ApiError::while_("removing a UserGroup")(e)),
        }
        self.lock().removed.push(name.to_owned());
        Ok(())
    }

    /// Waits until the operator's write rate allows one more write.
    async fn pace(&self) {
        if let Some(limit) = self.limit {
            limit.until_ready().await;
        }
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
