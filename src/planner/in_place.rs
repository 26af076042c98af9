//! The plan of a run whose users only changed in place (same names, places and memberships; see
//! `directory::kept::Entries::changed_in_place`) since a run whose plan was [`Plan::exact`], with
//! the task's objects as that run left them. Each object then already is its desired group, and
//! what changes is the objects that list a changed user, which take the new records. The work
//! follows the changed users and the objects that list them, not the size of the directory.

use std::sync::Arc;

use hashbrown::{HashMap, HashSet};

use super::desired::Identity;
use super::plan::{CurrentGroup, Plan, Write};
use crate::api::{GroupUser, UserGroupSpec};
use crate::directory::snapshot::Snapshot;

/// The desired groups that list any of the `changed` users (indices into the snapshot's users):
/// the directory groups they are members of, and the target group for those in no group.
pub fn touched(snapshot: &Snapshot, changed: &[usize]) -> HashSet<Identity> {
    let mut is_changed = vec![false; snapshot.users.len()];
    for &u in changed {
        is_changed[u] = true;
    }
    let mut in_a_group = vec![false; snapshot.users.len()];
    let mut out = HashSet::new();
    for group in &snapshot.groups {
        let mut lists_one = false;
        for &u in group.users.iter().filter(|&&u| is_changed[u]) {
            in_a_group[u] = true;
            lists_one = true;
        }
        if lists_one {
            out.insert(Identity::Directory(group.id.clone()));
        }
    }
    if changed.iter().any(|&u| !in_a_group[u]) {
        out.insert(Identity::Target);
    }
    out
}

/// The plan: each of `current` (the task's objects of the [`touched`] groups, shards joined)
/// listing the changed users' records from `snapshot`, written where that changes it. `objects`
/// is how many groups the task has in all: the ones not written are unchanged.
pub fn plan_in_place(
    current: &[CurrentGroup<'_>],
    snapshot: &Snapshot,
    changed: &[usize],
    objects: usize,
) -> Plan {
    let records: HashMap<&str, &Arc<GroupUser>> = changed
        .iter()
        .map(|&u| (snapshot.users[u].id.as_str(), &snapshot.users[u]))
        .collect();
    let mut update: Vec<Write> = current
        .iter()
        .filter(|c| c.owned)
        .filter_map(|c| with_records(c, &records))
        .collect();
    update.sort_by(|a, b| a.name.cmp(&b.name));
    Plan {
        unchanged: objects.saturating_sub(update.len()),
        update,
        exact: true,
        ..Plan::default()
    }
}

/// The object with the new records in place of the users they replace (names are unchanged, so
/// the list order stands); `None` when that leaves it as it is.
fn with_records(c: &CurrentGroup<'_>, records: &HashMap<&str, &Arc<GroupUser>>) -> Option<Write> {
    let mut users: Option<Vec<Arc<GroupUser>>> = None;
    for (i, listed) in c.spec.users.iter().enumerate() {
        let Some(&record) = records.get(listed.id.as_str()) else {
            continue;
        };
        if Arc::ptr_eq(record, listed) || **record == **listed {
            continue;
        }
        users.get_or_insert_with(|| c.spec.users.clone())[i] = Arc::clone(record);
    }
    let spec = &*c.spec;
    Some(Write {
        name: c.name.clone(),
        spec: UserGroupSpec {
            display_name: spec.display_name.clone(),
            description: spec.description.clone(),
            parent: spec.parent.clone(),
            source: spec.source.clone(),
            users: users?,
        },
        take_over: false,
    })
}
