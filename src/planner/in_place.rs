//! The plan of a run whose users only changed in place (same names, places and memberships; see
//! `directory::kept::Entries::changed_in_place`) since a run whose plan was [`Plan::exact`], with
//! the task's objects as that run left them. Each object then already is its desired group, and
//! what changes is the objects that list a changed user, which take the new records. The work
//! follows the changed users and the objects that list them, not the size of the directory.

use std::sync::Arc;

use hashbrown::HashMap;

use super::order::by_name_then_id;
use super::plan::{CurrentGroup, Plan, Write};
use crate::api::{GroupUser, UserGroupSpec};
use crate::directory::snapshot::Snapshot;

/// The desired groups that list some of a run's changed users, and which of them each lists.
#[derive(Debug, Default)]
pub struct Touched {
    /// By the group's directory id: the changed users it lists (indices into the snapshot).
    pub groups: HashMap<String, Vec<usize>>,
    /// The changed users in no group, which the target group lists.
    pub target: Vec<usize>,
}

impl Touched {
    /// The changed users the group an object's spec stands for lists; `None` for an untouched one.
    pub fn of(&self, spec: &UserGroupSpec) -> Option<&[usize]> {
        match &spec.source {
            Some(source) => self.groups.get(source.id.as_str()).map(Vec::as_slice),
            None => Some(self.target.as_slice()).filter(|t| !t.is_empty()),
        }
    }
}

/// The desired groups that list any of the `changed` users (indices into the snapshot's users):
/// the directory groups they are members of, and the target group for those in no group. One pass
/// over the memberships, whatever the number of changed users.
pub fn touched(snapshot: &Snapshot, changed: &[usize]) -> Touched {
    let mut is_changed = vec![false; snapshot.users.len()];
    for &u in changed {
        is_changed[u] = true;
    }
    let mut in_a_group = vec![false; snapshot.users.len()];
    let mut out = Touched::default();
    for group in &snapshot.groups {
        let listed: Vec<usize> = group
            .users
            .iter()
            .copied()
            .filter(|&u| is_changed[u])
            .collect();
        if !listed.is_empty() {
            listed.iter().for_each(|&u| in_a_group[u] = true);
            out.groups.insert(group.id.clone(), listed);
        }
    }
    out.target = changed
        .iter()
        .copied()
        .filter(|&u| !in_a_group[u])
        .collect();
    out
}

/// The plan: each of `current` (the task's objects of the [`touched`] groups, shards joined)
/// listing the changed users' records from `snapshot`, written where that changes it. `objects`
/// is how many groups the task has in all: the ones not written are unchanged.
pub fn plan_in_place(
    current: &[CurrentGroup<'_>],
    snapshot: &Snapshot,
    touched: &Touched,
    objects: usize,
) -> Plan {
    let mut update: Vec<Write> = current
        .iter()
        .filter(|c| c.owned)
        .filter_map(|c| {
            let listed = touched.of(&c.spec)?;
            let records: Vec<&Arc<GroupUser>> =
                listed.iter().map(|&u| &snapshot.users[u]).collect();
            with_records(c, &records)
        })
        .collect();
    update.sort_by(|a, b| a.name.cmp(&b.name));
    Plan {
        unchanged: objects.saturating_sub(update.len()),
        update,
        exact: true,
        ..Plan::default()
    }
}

/// The object with the new records in place of the users they replace; `None` when that leaves
/// it as it is. A changed user keeps its name, so it keeps its place in the list, found by
/// bisection in list order.
fn with_records(c: &CurrentGroup<'_>, records: &[&Arc<GroupUser>]) -> Option<Write> {
    let listed = &c.spec.users;
    let mut users: Option<Vec<Arc<GroupUser>>> = None;
    for &record in records {
        let Ok(i) = listed.binary_search_by(|l| by_name_then_id(l, record)) else {
            continue;
        };
        if Arc::ptr_eq(record, &listed[i]) || **record == *listed[i] {
            continue;
        }
        users.get_or_insert_with(|| listed.clone())[i] = Arc::clone(record);
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
