//! The namespace's UserGroups as the planner sees them: shards joined back into their groups, each
//! marked as the task's own or not. Pure: the objects come from the controller's view or a listing.

use std::borrow::Cow;

use hashbrown::HashMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use super::plan::CurrentGroup;
use crate::api::{
    EXTINCT_SINCE_ANNOTATION, SHARD_OF_LABEL, SYNCHRONIZATION_LABEL, UserGroup, UserGroupSpec,
    UserSynchronization,
};

/// The namespace's UserGroups as the planner sees them, and the shard objects behind the task's.
pub struct ClusterState<'a> {
    /// Every UserGroup that is not a shard, with its shards' members appended.
    pub groups: Vec<CurrentGroup<'a>>,
    /// Shard names of each of the task's groups, in order.
    pub shards: HashMap<String, Vec<String>>,
    /// Each of the task's objects (shards included) as stored now, so that writing a group touches
    /// only the objects that change.
    pub stored: HashMap<String, &'a UserGroup>,
    /// Every other UserGroup as the plan saw it: what a takeover under `collisionPolicy: Overwrite`
    /// may write over, and nothing else.
    pub foreign: HashMap<String, &'a UserGroup>,
}

/// The namespace's UserGroups as the planner sees them: the task's own ones, and the others that
/// names may collide with. Specs are borrowed from `objects` except where shards are joined.
pub fn cluster_state<'a>(
    objects: impl IntoIterator<Item = &'a UserGroup>,
    task: &UserSynchronization,
) -> ClusterState<'a> {
    let owned = owned_by(task);
    let task_name = task.name_any();
    let owned_by_task = |g: &UserGroup| owned(&g.metadata);
    let (shard_objects, bases): (Vec<&UserGroup>, Vec<&UserGroup>) = objects
        .into_iter()
        .partition(|g| g.labels().contains_key(SHARD_OF_LABEL));
    let (stored, foreign): (HashMap<String, &UserGroup>, _) = shard_objects
        .iter()
        .chain(&bases)
        .map(|g| (g.name_any(), *g))
        .partition(|(_, g)| owned_by_task(g));
    let mut shard_users: HashMap<&str, Vec<(usize, String, &UserGroupSpec)>> = HashMap::new();
    for shard in shard_objects.into_iter().filter(|s| owned_by_task(s)) {
        let base = shard.labels()[SHARD_OF_LABEL].as_str();
        let name = shard.name_any();
        shard_users
            .entry(base)
            .or_default()
            .push((shard_index(&name), name, &shard.spec));
    }
    let mut shards = HashMap::new();
    let groups = bases
        .into_iter()
        .map(|g| {
            let owned = owned_by_task(g);
            let labelled = g.labels().contains_key(SYNCHRONIZATION_LABEL);
            let name = g.name_any();
            let mut spec = Cow::Borrowed(&g.spec);
            if let Some(mut parts) = shard_users.remove(name.as_str()).filter(|_| owned) {
                parts.sort_by_key(|(index, _, _)| *index);
                shards.insert(
                    name.clone(),
                    parts.iter().map(|(_, n, _)| n.clone()).collect(),
                );
                spec.to_mut().users.extend(
                    parts
                        .into_iter()
                        .flat_map(|(_, _, s)| s.users.iter().cloned()),
                );
            }
            CurrentGroup {
                marked_extinct: g.annotations().contains_key(EXTINCT_SINCE_ANNOTATION),
                name,
                owned,
                another_task: labelled && !owned && !g.owner_references().is_empty(),
                left_behind: g.labels().get(SYNCHRONIZATION_LABEL) == Some(&task_name)
                    && g.owner_references().is_empty(),
                created: g.metadata.creation_timestamp.clone(),
                spec,
            }
        })
        .collect();
    ClusterState {
        groups,
        shards,
        stored,
        foreign,
    }
}

/// Whether an object is the task's: labelled with its name and owned by it (by uid).
pub fn owned_by(task: &UserSynchronization) -> impl Fn(&ObjectMeta) -> bool + use<> {
    let name = task.name_any();
    let uid = task.uid();
    move |meta| {
        let labelled = meta
            .labels
            .as_ref()
            .and_then(|l| l.get(SYNCHRONIZATION_LABEL))
            .is_some_and(|n| *n == name);
        labelled
            && meta
                .owner_references
                .iter()
                .flatten()
                .any(|o| Some(&o.uid) == uid.as_ref())
    }
}

/// The N of a shard named `<base>-sN`; unknown names sort last.
pub fn shard_index(name: &str) -> usize {
    name.rsplit_once("-s")
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_indices_come_from_the_name() {
        assert_eq!(shard_index("corp-all-staff-4e8608-s2"), 2);
        assert_eq!(shard_index("corp-all-staff-4e8608-s10"), 10);
        assert_eq!(shard_index("no-index"), usize::MAX);
    }
}
