//! What is gone from the directory: the users and groups this task's objects still stand for,
//! the deletion brake over their removal, and the listed users that stay.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use hashbrown::{HashMap, HashSet};

use super::{Brake, CurrentGroup, Policies};
use crate::api::{ExtinctionPolicy, GroupUser};
use crate::planner::desired::{DesiredGroup, Identity};

/// The user records this task's objects list.
pub(super) fn listed_records<'c>(current: &'c [CurrentGroup<'_>]) -> HashSet<Record<'c>> {
    current
        .iter()
        .filter(|c| c.owned)
        .flat_map(|c| c.spec.users.iter().map(Record))
        .collect()
}

/// Ids of the listed users the directory no longer has. The snapshot's records are shared with
/// the stored objects, so most are matched by address; ids are hashed only for the listed records
/// no desired group shares.
pub(super) fn vanished_users<'c>(
    listed: &HashSet<Record<'c>>,
    desired: &[DesiredGroup],
) -> HashSet<&'c str> {
    let present: HashSet<Record<'_>> = desired
        .iter()
        .flat_map(|d| d.users.iter().map(Record))
        .collect();
    let unshared: Vec<&str> = listed
        .iter()
        .filter(|r| !present.contains(*r))
        .map(|r| r.0.id.as_str())
        .collect();
    // Few records are unshared (those of users changed since they were written): their ids are
    // looked for among the desired records, and the search ends once every one is found.
    let mut gone: HashSet<&'c str> = unshared.into_iter().collect();
    for record in &present {
        if gone.is_empty() {
            break;
        }
        gone.remove(record.0.id.as_str());
    }
    gone
}

/// This task's objects whose group the directory no longer has.
pub(super) fn vanished_groups<'c>(
    owned: &HashMap<Identity, &'c CurrentGroup<'c>>,
    desired: &[DesiredGroup],
) -> Vec<&'c CurrentGroup<'c>> {
    let desired_ids: HashSet<&Identity> = desired.iter().map(|d| &d.identity).collect();
    owned
        .iter()
        .filter(|(id, _)| !desired_ids.contains(id))
        .map(|(_, c)| *c)
        .collect()
}

/// The brake, when the removals the extinction policies ask for exceed `maxDeletions` of the
/// objects the task manages (its groups and the distinct users they list) and nobody approved it.
pub(super) fn deletion_brake(
    listed: &HashSet<Record<'_>>,
    owned_groups: usize,
    vanished_users: usize,
    vanished_groups: usize,
    policies: &Policies,
) -> Option<Brake> {
    let user_removals = if policies.user_extinction == ExtinctionPolicy::Remove {
        vanished_users
    } else {
        0
    };
    let group_removals = if policies.group_extinction == ExtinctionPolicy::Remove {
        vanished_groups
    } else {
        0
    };
    let would_remove = (user_removals + group_removals) as u64;
    if would_remove == 0 {
        return None;
    }
    let listed_ids: HashSet<&str> = listed.iter().map(|r| r.0.id.as_str()).collect();
    let limit = policies
        .max_deletions
        .limit(owned_groups + listed_ids.len());
    (would_remove > limit && !policies.deletions_approved).then_some(Brake {
        would_remove,
        limit,
        ..Brake::default()
    })
}

/// Names of the vanished groups the run would remove (policy Remove), sorted.
pub(super) fn held_back_groups(vanished: &[&CurrentGroup<'_>], policies: &Policies) -> Vec<String> {
    if policies.group_extinction != ExtinctionPolicy::Remove {
        return Vec::new();
    }
    let mut names: Vec<String> = vanished.iter().map(|c| c.name.clone()).collect();
    names.sort();
    names
}

/// Login names of the vanished users the run would drop from their groups (policy Remove),
/// sorted, once each.
pub(super) fn held_back_users(
    listed: &HashSet<Record<'_>>,
    vanished: &HashSet<&str>,
    policies: &Policies,
) -> Vec<String> {
    if policies.user_extinction != ExtinctionPolicy::Remove {
        return Vec::new();
    }
    let mut names: Vec<String> = listed
        .iter()
        .filter(|r| vanished.contains(r.0.id.as_str()))
        .map(|r| r.0.name.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Adds the object's listed users that vanished from the directory and stay listed. A listed
/// entry standing in for a conflicting user (`resolved`) may be one of them already.
pub(super) fn keep_vanished_users(
    users: &mut Vec<Arc<GroupUser>>,
    current: &CurrentGroup<'_>,
    vanished_users: &HashSet<&str>,
    resolved: bool,
) {
    let present: HashSet<&str> = if resolved {
        users.iter().map(|u| u.id.as_str()).collect()
    } else {
        HashSet::new()
    };
    let kept: Vec<Arc<GroupUser>> = current
        .spec
        .users
        .iter()
        .filter(|u| vanished_users.contains(u.id.as_str()) && !present.contains(u.id.as_str()))
        .cloned()
        .collect();
    drop(present);
    users.extend(kept);
}

/// A user record, hashed and compared by address: records are shared, so equal addresses are the
/// same user, and telling them apart needs no read of the records.
#[derive(Clone, Copy)]
pub(super) struct Record<'a>(pub(super) &'a Arc<GroupUser>);

impl Hash for Record<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Arc::as_ptr(self.0).hash(state);
    }
}

impl PartialEq for Record<'_> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(self.0, other.0)
    }
}

impl Eq for Record<'_> {}
