//! Listing a namespace's UserGroups without downloading their members, for a plan made by a process
//! that keeps no view of them (`usersync sync --dry-run`). Every object usersync writes carries the
//! digest of the spec it applied; while usersync's field manager alone owns the spec and that
//! annotation (the object's managedFields say so), the object still holds that spec. Objects whose
//! digest equals the spec a run would write are rebuilt from it; only the others are downloaded.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use hashbrown::{HashMap, HashSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta};
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use kube::core::PartialObjectMeta;

use super::list_groups;
use crate::api::{
    FIELD_MANAGER, GroupUser, SHARD_OF_LABEL, SPEC_DIGEST_ANNOTATION, UserGroup, UserGroupSpec,
    UserSynchronization,
};
use crate::planner::current::owned_by;
use crate::planner::desired::{DesiredGroup, Identity};
use crate::planner::names::shard_name;
use crate::planner::shard::{json_bytes, parts_sized};
use crate::run::ApiError;
use crate::run::user_pool::UserPool;

/// Downloads in flight at once.
const DOWNLOADS: usize = 8;

/// A namespace's UserGroups: some downloaded whole, the task's others known by metadata alone.
pub struct Listing {
    pub downloaded: Vec<Arc<UserGroup>>,
    /// The task's objects (groups and shards) whose spec digest usersync can vouch for.
    pub vouched: Vec<PartialObjectMeta<UserGroup>>,
    /// Shard objects listed per group name, vouched for or not.
    pub shards: HashMap<String, usize>,
}

/// The digest an object's spec-digest annotation states, when usersync's own server-side apply is
/// the only writer of the object's spec and of that annotation.
pub fn vouched_digest(meta: &ObjectMeta) -> Option<&str> {
    let digest = meta.annotations.as_ref()?.get(SPEC_DIGEST_ANNOTATION)?;
    let fields = meta.managed_fields.as_ref()?;
    // Entries of the status subresource own only status.
    let main = |f: &&ManagedFieldsEntry| f.subresource.as_deref().unwrap_or_default().is_empty();
    // usersync applies, and creates (operation Update) what the plan found nowhere.
    let ours = |f: &ManagedFieldsEntry| f.manager.as_deref() == Some(FIELD_MANAGER);
    let annotation = format!("f:{SPEC_DIGEST_ANNOTATION}");
    let applied = fields.iter().filter(main).any(ours);
    let touched_by_others = fields.iter().filter(main).filter(|f| !ours(f)).any(|f| {
        f.fields_v1.as_ref().is_some_and(|v| {
            v.0.get("f:spec").is_some()
                || v.0
                    .get("f:metadata")
                    .and_then(|m| m.get("f:annotations"))
                    .and_then(|a| a.get(&annotation))
                    .is_some()
        })
    });
    (applied && !touched_by_others).then_some(digest.as_str())
}

/// Lists the namespace's UserGroups by metadata and downloads those a digest cannot stand for:
/// other tasks' and hand-made objects, and objects without a digest usersync can vouch for. When
/// that is most of them, one full list is cheaper.
pub async fn list_by_metadata(
    api: &Api<UserGroup>,
    pool: &UserPool,
    task: &UserSynchronization,
) -> Result<Listing, ApiError> {
    // One request, not pages: the apiserver answers it from its watch cache. Later pages of a
    // paginated list come from that cache only while it keeps the first page's snapshot, for a
    // while after the last UserGroup write; past that each page is read from etcd and every
    // object decoded whole, far slower than the whole list in one (figures in bench/notes.md).
    // The metadata is small, most of it managedFields.
    let metas = api
        .list_metadata(&ListParams::default())
        .await
        .map_err(ApiError::while_("listing UserGroups"))?
        .items;
    let mut shards: HashMap<String, usize> = HashMap::new();
    for base in metas
        .iter()
        .filter_map(|m| m.metadata.labels.as_ref()?.get(SHARD_OF_LABEL))
    {
        *shards.entry_ref(base.as_str()).or_default() += 1;
    }
    let owned = owned_by(task);
    let (vouched, others): (Vec<_>, Vec<_>) = metas
        .into_iter()
        .partition(|m| owned(&m.metadata) && vouched_digest(&m.metadata).is_some());
    if others.len() > vouched.len() {
        return Ok(Listing {
            downloaded: list_groups(api, pool).await?,
            vouched: Vec::new(),
            shards,
        });
    }
    let names = others.into_iter().filter_map(|m| m.metadata.name);
    Ok(Listing {
        downloaded: download(api, pool, names).await?,
        vouched,
        shards,
    })
}

/// The named UserGroups, whole, their members shared with `pool`; objects gone meanwhile are left
/// out.
pub async fn download(
    api: &Api<UserGroup>,
    pool: &UserPool,
    names: impl Iterator<Item = String>,
) -> Result<Vec<Arc<UserGroup>>, ApiError> {
    let gets: Vec<_> = names
        .map(|name| async move { api.get_opt(&name).await })
        .collect();
    let found: Vec<Option<UserGroup>> = futures::stream::iter(gets)
        .buffer_unordered(DOWNLOADS)
        .try_collect()
        .await
        .map_err(ApiError::while_("reading a UserGroup"))?;
    Ok(found
        .into_iter()
        .flatten()
        .map(|mut g| {
            pool.share_all(&mut g.spec.users);
            Arc::new(g)
        })
        .collect())
}

/// The listing's vouched objects rebuilt with the spec a run would write (`desired`, named after
/// the task's objects, split into shards of `shard_bytes`), where the digests of a group and of
/// each of its shards show they hold exactly that; and the names of the others, to download.
/// Rebuilt objects carry no status or managedFields.
pub fn rebuild(
    listing: Listing,
    desired: &[DesiredGroup],
    task: &UserSynchronization,
    shard_bytes: usize,
) -> (Vec<Arc<UserGroup>>, Vec<String>) {
    let Listing {
        mut downloaded,
        vouched,
        shards,
    } = listing;
    let names = downloaded_names(&downloaded, task);
    let specs = Matcher::index(&vouched, &shards).match_desired(desired, names, shard_bytes);
    let mut differing = Vec::new();
    for (meta, spec) in vouched.into_iter().zip(specs) {
        match spec {
            Some(spec) => {
                let mut metadata = meta.metadata;
                metadata.managed_fields = None;
                downloaded.push(Arc::new(UserGroup {
                    metadata,
                    spec,
                    status: None,
                }));
            }
            None => differing.push(meta.metadata.name.unwrap_or_default()),
        }
    }
    (downloaded, differing)
}

/// Identities the downloaded objects already answer for, with their names; the planner names
/// groups after them.
fn downloaded_names(
    downloaded: &[Arc<UserGroup>],
    task: &UserSynchronization,
) -> HashMap<Identity, String> {
    let owned = owned_by(task);
    downloaded
        .iter()
        .filter(|g| owned(&g.metadata) && !g.labels().contains_key(SHARD_OF_LABEL))
        .map(|g| (Identity::of(&g.spec), g.name_any()))
        .collect()
}

/// The vouched objects indexed for matching against desired groups, and the spec each is found
/// to hold.
struct Matcher<'v> {
    vouched: &'v [PartialObjectMeta<UserGroup>],
    /// Shard objects listed per group name, vouched for or not.
    shard_counts: &'v HashMap<String, usize>,
    /// Group objects (not shards) by the digest they state.
    groups_by_digest: HashMap<&'v str, Vec<usize>>,
    shards_by_name: HashMap<&'v str, usize>,
    /// Per vouched object, the spec it holds, once matched.
    specs: Vec<Option<UserGroupSpec>>,
}

impl<'v> Matcher<'v> {
    /// Indexes the vouched objects: groups by the digest they state, shards by name.
    fn index(
        vouched: &'v [PartialObjectMeta<UserGroup>],
        shard_counts: &'v HashMap<String, usize>,
    ) -> Matcher<'v> {
        let is_shard = |m: &PartialObjectMeta<UserGroup>| {
            m.metadata
                .labels
                .as_ref()
                .is_some_and(|l| l.contains_key(SHARD_OF_LABEL))
        };
        let mut groups_by_digest: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut shards_by_name: HashMap<&str, usize> = HashMap::new();
        for (i, meta) in vouched.iter().enumerate() {
            if is_shard(meta) {
                shards_by_name.insert(meta.metadata.name.as_deref().unwrap_or_default(), i);
            } else if let Some(digest) = vouched_digest(&meta.metadata) {
                groups_by_digest.entry(digest).or_default().push(i);
            }
        }
        Matcher {
            vouched,
            shard_counts,
            groups_by_digest,
            shards_by_name,
            specs: vec![None; vouched.len()],
        }
    }

    /// Matches the desired groups `names` does not answer for yet to vouched objects, parents
    /// first: a spec names its parent's object, known once the parent is matched. The spec each
    /// vouched object holds, `None` where no desired group matched it.
    fn match_desired(
        mut self,
        desired: &[DesiredGroup],
        mut names: HashMap<Identity, String>,
        shard_bytes: usize,
    ) -> Vec<Option<UserGroupSpec>> {
        let members = Members::measure(desired);
        let mut pending: Vec<&DesiredGroup> = desired
            .iter()
            .filter(|d| !names.contains_key(&d.identity))
            .collect();
        loop {
            let (ready, waiting): (Vec<_>, Vec<_>) = pending
                .into_iter()
                .partition(|d| d.parent.as_ref().is_none_or(|p| names.contains_key(p)));
            if ready.is_empty() {
                break;
            }
            pending = waiting;
            let candidates = on_every_core(&ready, |d| {
                let parent = d.parent.as_ref().and_then(|p| names.get(p).cloned());
                let parts = parts_sized("", &written_spec(d, parent), shard_bytes, |u| {
                    members.bytes(u)
                });
                let digest = parts[0].digest_with(|u| members.digest(u));
                (parts, digest)
            });
            for (d, (parts, digest)) in ready.into_iter().zip(candidates) {
                if let Some(name) = self.claim(parts, &digest, &members) {
                    names.insert(d.identity.clone(), name);
                }
            }
        }
        self.specs
    }

    /// The name of the vouched object that holds exactly a group's `parts` (the first with
    /// `digest`), its shards each holding the part after it and no others; their specs are then
    /// set. `None` when there is no such object or its objects are matched already.
    fn claim(
        &mut self,
        mut parts: Vec<UserGroupSpec>,
        digest: &str,
        members: &Members,
    ) -> Option<String> {
        // One object holds exactly this group's first part (two with it are both downloaded).
        let Some(&[base]) = self.groups_by_digest.get(digest).map(Vec::as_slice) else {
            return None;
        };
        let name = self.vouched[base].metadata.name.clone().unwrap_or_default();
        // Every shard the group needs, each holding its part, and no others.
        let mut found = vec![base];
        for (n, part) in parts.iter_mut().enumerate().skip(1) {
            part.parent = Some(name.clone());
            let shard = self
                .shards_by_name
                .get(shard_name(&name, n).as_str())
                .copied();
            let digest = part.digest_with(|u| members.digest(u));
            let i = shard.filter(|&i| self.digest_of(i) == Some(digest.as_str()))?;
            found.push(i);
        }
        if self.shard_counts.get(&name).copied().unwrap_or(0) != parts.len() - 1
            || found.iter().any(|&i| self.specs[i].is_some())
        {
            return None;
        }
        for (i, part) in found.into_iter().zip(parts) {
            self.specs[i] = Some(part);
        }
        Some(name)
    }

    /// The digest the vouched object `i` states.
    fn digest_of(&self, i: usize) -> Option<&'v str> {
        vouched_digest(&self.vouched[i].metadata)
    }
}

/// Each distinct member's JSON size and digest, measured once however many groups list it (the
/// members of desired groups are the snapshot's shared records, told apart by address).
struct Members(HashMap<usize, Measured>);

#[derive(Clone, Copy)]
struct Measured {
    bytes: usize,
    digest: [u8; 32],
}

impl Members {
    fn measure(desired: &[DesiredGroup]) -> Members {
        let mut seen = HashSet::new();
        let distinct: Vec<&Arc<GroupUser>> = desired
            .iter()
            .flat_map(|d| &d.users)
            .filter(|u| seen.insert(Arc::as_ptr(u) as usize))
            .collect();
        let measured = on_every_core(&distinct, |u| {
            let (digest, len) = u.digest_and_len();
            // As json_bytes counts: the JSON and a comma.
            Measured {
                bytes: len + 1,
                digest,
            }
        });
        let addresses = distinct.iter().map(|u| Arc::as_ptr(u) as usize);
        Members(addresses.zip(measured).collect())
    }

    fn bytes(&self, user: &Arc<GroupUser>) -> usize {
        self.get(user).map_or_else(|| json_bytes(user), |m| m.bytes)
    }

    fn digest(&self, user: &Arc<GroupUser>) -> [u8; 32] {
        self.get(user).map_or_else(|| user.digest(), |m| m.digest)
    }

    fn get(&self, user: &Arc<GroupUser>) -> Option<&Measured> {
        self.0.get(&(Arc::as_ptr(user) as usize))
    }
}

/// `f` over `items`, in order, the items split between the machine's cores.
fn on_every_core<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Small inputs are not worth a thread.
    let chunk = items.len().div_ceil(cores).max(256);
    if items.len() <= chunk {
        return items.iter().map(&f).collect();
    }
    std::thread::scope(|scope| {
        let f = &f;
        let workers: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<_>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// The spec a run writes for a desired group when nothing in the cluster changes it.
fn written_spec(d: &DesiredGroup, parent: Option<String>) -> UserGroupSpec {
    UserGroupSpec {
        display_name: d.display_name.clone(),
        description: d.description.clone(),
        parent,
        source: d.source.clone(),
        users: d.users.clone(),
    }
}

#[cfg(test)]
mod tests;
