//! The plan: what to create, update, remove, mark or skip so the cluster matches the directory,
//! under the task's collision and extinction policies and its deletion brake.

use std::borrow::Cow;
use std::sync::Arc;

use hashbrown::{HashMap, HashSet};

mod held;
mod naming;
mod vanished;

pub use held::Held;
use held::{hold_groups, hold_users};
use naming::{Names, assign_names, holds_given_name, required, root_of};
pub use naming::{Naming, Root};
use vanished::{
    deletion_brake, held_back_groups, held_back_users, keep_vanished_users, listed_records,
    vanished_groups, vanished_users,
};

use super::desired::{DesiredGroup, Identity};
use super::order::sort_users;
use crate::api::{CollisionPolicy, ExtinctionPolicy, GroupUser, UserGroupSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// The task settings the planner needs.
#[derive(Clone, Debug)]
pub struct Policies {
    /// The task's name: its own group's, when it hangs below a root that is not its.
    pub task: String,
    pub naming: Naming,
    pub collision: CollisionPolicy,
    pub user_extinction: ExtinctionPolicy,
    pub group_extinction: ExtinctionPolicy,
    pub max_deletions: MaxDeletions,
    /// A one-shot approval to exceed `max_deletions` in this run.
    pub deletions_approved: bool,
    /// What the read could not vouch for: kept as it is.
    pub held: Held,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaxDeletions {
    Count(u64),
    /// Percent of the objects the task manages (its groups plus the distinct users listed in them),
    /// and never fewer than `at_least`, so that a small task does not stall on one deletion.
    Percent {
        percent: u8,
        at_least: u64,
    },
}

impl MaxDeletions {
    /// Parses `maxDeletions`: an integer, a digit string, or `N%` (0 to 100, no leading zero), as
    /// the CRD's rule spells them.
    pub fn parse(
        value: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString,
    ) -> Option<MaxDeletions> {
        use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        match value {
            IntOrString::Int(n) => u64::try_from(*n).ok().map(MaxDeletions::Count),
            IntOrString::String(s) => match s.strip_suffix('%') {
                Some(p) if digits(p) && (p.len() == 1 || !p.starts_with('0')) => p
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= 100)
                    .map(MaxDeletions::percent),
                Some(_) => None,
                // Digits past u64 (which the CRD's rule lets through) are no bound at all.
                None if digits(s) => {
                    Some(MaxDeletions::Count(s.parse::<u64>().unwrap_or(u64::MAX)))
                }
                None => None,
            },
        }
    }

    /// A percentage with no floor.
    pub fn percent(percent: u8) -> MaxDeletions {
        MaxDeletions::Percent {
            percent,
            at_least: 0,
        }
    }

    /// A percentage that never allows fewer than `floor` deletions; a count stays as it is.
    pub fn at_least(self, floor: u64) -> MaxDeletions {
        match self {
            MaxDeletions::Percent { percent, .. } => MaxDeletions::Percent {
                percent,
                at_least: floor,
            },
            count => count,
        }
    }

    fn limit(self, managed: usize) -> u64 {
        match self {
            MaxDeletions::Count(n) => n,
            MaxDeletions::Percent { percent, at_least } => {
                ((managed as u64 * u64::from(percent)) / 100).max(at_least)
            }
        }
    }
}

/// A UserGroup as it is in the cluster (shards already joined into it).
#[derive(Clone, Debug, PartialEq)]
pub struct CurrentGroup<'a> {
    pub name: String,
    /// Written by this task (its label and owner reference).
    pub owned: bool,
    /// Another task's, alive (its label, and an owner reference that is not this task's): never
    /// taken over.
    pub another_task: bool,
    /// Left by a task of this task's name deleted with `deletionPolicy: Orphan` (its label, no
    /// owner): `collisionPolicy: Overwrite` takes it back, the root included.
    pub left_behind: bool,
    /// When the object was created: the older of two copies stands.
    pub created: Option<Time>,
    /// Borrowed from the stored object; owned when shards were joined into it.
    pub spec: Cow<'a, UserGroupSpec>,
    /// Already marked as gone from the directory.
    pub marked_extinct: bool,
}

impl CurrentGroup<'_> {
    fn identity(&self) -> Identity {
        Identity::of(&self.spec)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Write {
    pub name: String,
    pub spec: UserGroupSpec,
    /// The object exists but is not this task's: Overwrite takes it over.
    pub take_over: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub name: String,
    pub reason: SkipReason,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// A UserGroup of that name exists and is not this task's.
    NameTaken,
    /// A listed user of that name has another directory id than the directory's user.
    UserIdConflict { user: String },
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Brake {
    pub would_remove: u64,
    pub limit: u64,
    /// What the run holds back: the task's objects it would remove, by name, and the users gone
    /// from the directory it would drop from their groups, by login name (both sorted).
    pub groups: Vec<String>,
    pub users: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub create: Vec<Write>,
    pub update: Vec<Write>,
    /// Names of UserGroups to delete.
    pub remove: Vec<String>,
    /// Names of UserGroups gone from the directory but kept (extinction policy Skip): to be marked.
    pub mark_extinct: Vec<String>,
    pub skipped: Vec<Skipped>,
    pub unchanged: usize,
    /// Users gone from the directory and dropped from their groups.
    pub users_removed: usize,
    /// Users gone from the directory but kept in their groups.
    pub users_kept: usize,
    /// Set when the removals exceeded maxDeletions: nothing is removed this run.
    pub brake: Option<Brake>,
    /// This task's objects that stand for the same directory object as another one: removed
    /// (they are in `remove` too), and reported.
    pub duplicates: Vec<String>,
    /// Listed users and groups gone from the read because their entries could not be used: kept
    /// as they were.
    pub held: usize,
    /// This task's objects moved to the name the spec now asks for (they are in `remove` too).
    pub replaced: Vec<String>,
    /// The root the task's own group hangs below, when the root is not the task's.
    pub attached_to: Option<String>,
    /// Applied in full, the plan leaves the task's objects exactly the desired groups: none skipped,
    /// held, kept after leaving the directory, braked, or hanging below another task's root. A
    /// later run whose users only changed in place can then plan from the objects alone (the
    /// in-place planner).
    pub exact: bool,
}

impl Plan {
    pub fn is_noop(&self) -> bool {
        self.create.is_empty()
            && self.update.is_empty()
            && self.remove.is_empty()
            && self.mark_extinct.is_empty()
    }
}

/// What makes the cluster's UserGroups (`current`) match the directory (`desired`) under the
/// task's policies.
pub fn plan(
    mut desired: Vec<DesiredGroup>,
    current: &[CurrentGroup<'_>],
    policies: &Policies,
) -> Plan {
    let by_name: HashMap<&str, &CurrentGroup<'_>> =
        current.iter().map(|c| (c.name.as_str(), c)).collect();
    let root = root_of(&policies.naming, &by_name, policies.collision);
    if let Root::Attached(_) = root {
        for d in desired
            .iter_mut()
            .filter(|d| d.identity == Identity::Target)
        {
            d.display_name = policies.task.clone();
        }
    }
    let mut planning = Planning::start(&desired, current, by_name, (policies, &root));
    let names = assign_names(
        &desired,
        &planning.owned,
        &planning.by_name,
        (policies, &root),
        &mut planning.out,
    );
    if let Root::Attached(name) = root {
        planning.out.attached_to = Some(name);
    }
    for d in desired {
        planning.write_group(d, &names);
    }
    planning.finish(names.replaced)
}

/// One plan's working state: the cluster's objects indexed, what is gone from the directory and
/// whether this run removes it, and the plan so far.
struct Planning<'c> {
    policies: &'c Policies,
    /// This task's objects by the identity they stand for.
    owned: HashMap<Identity, &'c CurrentGroup<'c>>,
    /// Every object, this task's or not, by name.
    by_name: HashMap<&'c str, &'c CurrentGroup<'c>>,
    /// Ids of listed users the directory no longer has.
    vanished_users: HashSet<&'c str>,
    /// Ids of listed users whose entries the read could not use: they stay listed as they were.
    held_users: HashSet<&'c str>,
    /// This task's objects whose group the directory no longer has.
    vanished_groups: Vec<&'c CurrentGroup<'c>>,
    /// The brake holds every removal back this run.
    braked: bool,
    /// Vanished users are dropped from their groups (policy Remove, not braked).
    drop_vanished_users: bool,
    out: Plan,
}

impl<'c> Planning<'c> {
    /// Indexes the cluster's objects, finds the users and groups gone from the directory, and
    /// applies the deletion brake to their removal.
    fn start(
        desired: &[DesiredGroup],
        current: &'c [CurrentGroup<'c>],
        by_name: HashMap<&'c str, &'c CurrentGroup<'c>>,
        (policies, root): (&'c Policies, &Root),
    ) -> Planning<'c> {
        let (owned, duplicates) = index_owned(current, |c| {
            holds_given_name(c, required(policies, root, &c.identity()))
        });
        // Dropped on return: only the brake needs the listed records.
        let listed = listed_records(current);
        let mut vanished_users = vanished_users(&listed, desired);
        let held_users = hold_users(
            listed.iter().map(|r| &**r.0),
            &mut vanished_users,
            &policies.held,
        );
        let mut vanished_groups = vanished_groups(&owned, desired);
        let held = held_users.len() + hold_groups(&mut vanished_groups, &policies.held);
        let brake = deletion_brake(
            &listed,
            owned.len(),
            vanished_users.len(),
            vanished_groups.len(),
            policies,
        )
        .map(|brake| Brake {
            groups: held_back_groups(&vanished_groups, policies),
            users: held_back_users(&listed, &vanished_users, policies),
            ..brake
        });
        let braked = brake.is_some();
        Planning {
            policies,
            owned,
            by_name,
            vanished_users,
            held_users,
            vanished_groups,
            braked,
            drop_vanished_users: policies.user_extinction == ExtinctionPolicy::Remove && !braked,
            out: Plan {
                brake,
                duplicates: duplicates.iter().map(|c| c.name.clone()).collect(),
                held,
                ..Plan::default()
            },
        }
    }

    /// Plans one desired group under its name: a create, an update, or unchanged. A group skipped
    /// for its name is left out.
    fn write_group(&mut self, d: DesiredGroup, names: &Names) {
        let Some(name) = names
            .names
            .get(&d.identity)
            .cloned()
            .filter(|_| !names.skip.contains(&d.identity))
        else {
            return;
        };
        let existing = self.by_name.get(name.as_str()).copied();
        let parent = match &d.parent {
            Some(p) => names.names.get(p).cloned(),
            None => self.out.attached_to.clone(),
        };
        // Desired groups list their users in list order already.
        let mut users = d.users;
        if let Some(current) =
            existing.filter(|c| c.owned || self.policies.collision == CollisionPolicy::Overwrite)
        {
            self.merge_listed_users(&mut users, current, &name);
        }
        let spec = UserGroupSpec {
            display_name: d.display_name,
            description: d.description,
            parent,
            source: d.source,
            users,
        };
        match existing {
            None => self.out.create.push(Write {
                name,
                spec,
                take_over: false,
            }),
            Some(c) if c.owned && *c.spec == spec && !c.marked_extinct => self.out.unchanged += 1,
            Some(c) => self.out.update.push(Write {
                name,
                spec,
                take_over: !c.owned,
            }),
        }
    }

    /// Fits the directory's users of a group to the object that already holds its name: user
    /// name conflicts settled by the collision policy, vanished users kept unless this run drops
    /// them, and the list sorted again when either changed it.
    fn merge_listed_users(
        &mut self,
        users: &mut Vec<Arc<GroupUser>>,
        current: &CurrentGroup<'_>,
        name: &str,
    ) {
        // Listed entries this run removes: a name they hold is free for the directory's user.
        let no_users = HashSet::new();
        let removed_users = if self.drop_vanished_users {
            &self.vanished_users
        } else {
            &no_users
        };
        let resolved = resolve_user_conflicts(
            users,
            current,
            removed_users,
            self.policies.collision,
            name,
            &mut self.out.skipped,
        );
        let before_kept = users.len();
        if !self.drop_vanished_users {
            keep_vanished_users(users, current, &self.vanished_users, resolved);
        }
        if !self.held_users.is_empty() {
            keep_vanished_users(users, current, &self.held_users, resolved);
        }
        if resolved || users.len() > before_kept {
            sort_users(users);
        }
    }

    /// Counts the vanished users, removes or marks the vanished groups as the policy and the
    /// brake allow, and hands back the plan.
    fn finish(mut self, replaced: Vec<String>) -> Plan {
        if self.drop_vanished_users {
            self.out.users_removed = self.vanished_users.len();
        } else {
            self.out.users_kept = self.vanished_users.len();
        }
        let mut groups_kept = 0;
        for c in self.vanished_groups {
            match (self.policies.group_extinction, self.braked) {
                (ExtinctionPolicy::Remove, false) => self.out.remove.push(c.name.clone()),
                (ExtinctionPolicy::Skip, _) if !c.marked_extinct => {
                    groups_kept += 1;
                    self.out.mark_extinct.push(c.name.clone())
                }
                _ => groups_kept += 1,
            }
        }
        self.out.exact = groups_kept == 0
            && self.out.users_kept == 0
            && self.out.held == 0
            && self.out.skipped.is_empty()
            && self.out.brake.is_none()
            && self.out.attached_to.is_none();
        // A duplicate is a copy of an object that stands: removing it loses nothing, so the brake
        // does not hold it back.
        self.out.remove.extend(self.out.duplicates.iter().cloned());
        // So is an object whose group is written under its new name in the same run.
        self.out.remove.extend(replaced.iter().cloned());
        self.out.replaced = replaced;
        self.out.remove.sort();
        self.out.mark_extinct.sort();
        self.out
    }
}

/// This task's objects by the identity they stand for, and the ones that stand for an identity
/// another object already does (a copy made with the task's label and owner, or a write that
/// raced). Whatever order the objects come in, the same one stands: one holding a name usersync
/// would give it (`given`) before any other, then the oldest, then the smallest name.
fn index_owned<'c>(
    current: &'c [CurrentGroup<'c>],
    given: impl Fn(&CurrentGroup<'_>) -> bool,
) -> (
    HashMap<Identity, &'c CurrentGroup<'c>>,
    Vec<&'c CurrentGroup<'c>>,
) {
    let mut mine: Vec<(bool, &CurrentGroup<'_>)> = current
        .iter()
        .filter(|c| c.owned)
        .map(|c| (given(c), c))
        .collect();
    mine.sort_by(|(given_a, a), (given_b, b)| {
        given_b
            .cmp(given_a)
            .then_with(|| match (&a.created, &b.created) {
                (Some(x), Some(y)) => x.0.cmp(&y.0),
                (x, y) => y.is_some().cmp(&x.is_some()),
            })
            .then_with(|| a.name.cmp(&b.name))
    });
    let mut owned = HashMap::with_capacity(mine.len());
    let mut duplicates = Vec::new();
    for (_, c) in mine {
        let identity = c.identity();
        if owned.contains_key(&identity) {
            duplicates.push(c);
        } else {
            owned.insert(identity, c);
        }
    }
    (owned, duplicates)
}

/// A listed name that now belongs to a user with another id: Skip keeps the listed entry in its
/// place, Overwrite takes the directory's. An entry this run removes (its user is gone from the
/// directory, in `removed`) holds no name: a user recreated under it is listed in its place.
/// Several users may share a name (a `cn` mapped as the user name, say): a user conflicts only
/// when no listed entry of its name has its id, and a listed entry stands in for one conflicting
/// user at most, so nobody is listed twice. Whether the list changed.
fn resolve_user_conflicts(
    users: &mut Vec<Arc<GroupUser>>,
    current: &CurrentGroup<'_>,
    removed: &HashSet<&str>,
    policy: CollisionPolicy,
    group: &str,
    skipped: &mut Vec<Skipped>,
) -> bool {
    // The same users under the same names as listed, in the same order (records mostly shared,
    // so compared by address first): nothing can conflict, and a long list is not indexed.
    let aligned = users.len() == current.spec.users.len()
        && users
            .iter()
            .zip(&current.spec.users)
            .all(|(u, l)| Arc::ptr_eq(u, l) || (u.id == l.id && u.name == l.name));
    if policy == CollisionPolicy::Overwrite || aligned {
        return false;
    }
    let mut listed: HashMap<&str, Vec<&Arc<GroupUser>>> = HashMap::new();
    for u in &current.spec.users {
        if !removed.contains(u.id.as_str()) {
            listed.entry(u.name.as_str()).or_default().push(u);
        }
    }
    let ids: HashSet<&str> = users.iter().map(|u| u.id.as_str()).collect();
    let mut standing_in = HashSet::new();
    // For each conflicting user, the listed entry that takes its place, if one is left.
    let mut replaced: Vec<(usize, Option<Arc<GroupUser>>)> = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let Some(entries) = listed.get(u.name.as_str()) else {
            continue;
        };
        if entries.iter().any(|e| e.id == u.id) {
            continue;
        }
        skipped.push(Skipped {
            name: group.to_owned(),
            reason: SkipReason::UserIdConflict {
                user: u.name.clone(),
            },
        });
        let free = entries
            .iter()
            .find(|e| !ids.contains(e.id.as_str()) && standing_in.insert(e.id.as_str()));
        replaced.push((i, free.map(|e| Arc::clone(e))));
    }
    drop(ids);
    let changed = !replaced.is_empty();
    let mut dropped = HashSet::new();
    for (i, entry) in replaced {
        match entry {
            Some(entry) => users[i] = entry,
            None => {
                dropped.insert(i);
            }
        }
    }
    if !dropped.is_empty() {
        let mut i = 0;
        users.retain(|_| {
            i += 1;
            !dropped.contains(&(i - 1))
        });
    }
    changed
}

#[cfg(test)]
mod tests;
