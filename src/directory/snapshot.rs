//! The directory snapshot: what one complete read found, in a compact form the sync planner consumes.
//! Users and groups refer to each other by index; every id is the directory's stable id.

use std::sync::Arc;

/// A user as the directory describes it: the record UserGroups list, so that the snapshot and the
/// planned objects share one copy of each user.
pub use crate::api::GroupUser as User;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Group {
    pub id: String,
    pub dn: String,
    /// The group's name (cn), unchanged.
    pub name: String,
    pub description: Option<String>,
    pub sid: Option<String>,
    /// Index into `Snapshot::containers` of the OU or container holding the group.
    pub container: Option<usize>,
    /// Member users (indices into `Snapshot::users`), sorted, without duplicates. With nested groups
    /// flattened this includes the members of every group below.
    pub users: Vec<usize>,
    /// Member groups (indices into `Snapshot::groups`), sorted, without duplicates. Empty unless
    /// nested groups are preserved. May form cycles: that is what the directory holds.
    pub groups: Vec<usize>,
}

/// An OU or container under the base DN.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Container {
    /// Stable id, as for users and groups.
    pub id: String,
    pub dn: String,
    pub name: String,
    /// Index of the container holding this one; `None` directly below the base DN.
    pub parent: Option<usize>,
}

/// Member values that name nothing in the snapshot: entries outside the synchronized scope, or
/// entries that do not exist. Reported, never turned into removals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unresolved {
    pub count: usize,
    /// The first few, for the message on status.
    pub sample: Vec<String>,
}

pub const UNRESOLVED_SAMPLE: usize = 10;

impl Unresolved {
    pub fn record(&mut self, value: &str) {
        self.count += 1;
        if self.sample.len() < UNRESOLVED_SAMPLE {
            self.sample.push(value.to_owned());
        }
    }
}

/// An entry a read cannot use, and what still names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadEntry {
    /// The DN as the server sent it, when it is text.
    pub dn: Option<String>,
    /// The entry's id, when it has a usable one.
    pub id: Option<String>,
    pub why: String,
}

/// Entries a read could not use (without an id or a name, with a DN that does not parse, not valid
/// LDAP): counted and sampled for status, and named where they can be, so that a plan keeps
/// whatever stands for them as it was instead of removing it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unreadable {
    pub count: usize,
    /// The first few, as `<dn>: <why>`.
    pub sample: Vec<String>,
    /// Ids and DNs of the entries that have them.
    pub ids: Vec<String>,
    pub dns: Vec<String>,
    /// Entries with neither: nothing tells what stands for them.
    pub unnamed: usize,
}

impl Unreadable {
    pub fn record(&mut self, bad: BadEntry) {
        self.count += 1;
        if self.sample.len() < UNRESOLVED_SAMPLE {
            let dn = bad
                .dn
                .as_deref()
                .unwrap_or("an entry without a readable DN");
            self.sample.push(format!("{dn}: {}", bad.why));
        }
        if bad.dn.is_none() && bad.id.is_none() {
            self.unnamed += 1;
        }
        self.ids.extend(bad.id);
        self.dns.extend(bad.dn);
    }
}

/// Counters of one read, for status, logs and the benchmark.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Entries the server returned (users, groups, containers, range continuations).
    pub entries: usize,
    /// Search requests sent, pages and range continuations included.
    pub requests: usize,
    /// Users and groups left out by `excludes`.
    pub excluded: usize,
    /// Disabled users left out by `ignoreDisabledUsers`.
    pub disabled_skipped: usize,
    /// syncrepl refreshes the server answered with a list of what is still there, because its log
    /// did not reach back to the kept cookie.
    pub present_lists: usize,
    /// Entries left out because they cannot be used.
    pub unreadable: Unreadable,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub base_dn: String,
    pub users: Vec<Arc<User>>,
    pub groups: Vec<Group>,
    pub containers: Vec<Container>,
    pub unresolved: Unresolved,
    pub stats: ReadStats,
}

impl Snapshot {
    pub fn group_by_name(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// Puts each record in place of the listed user of the same id (a user the snapshot does not
    /// list stays out), and says where: the indices of the users replaced, in order. For records
    /// whose changes leave the snapshot's order and memberships as they are (see
    /// `kept::Entries::changed_in_place`).
    pub fn replace_users(&mut self, records: Vec<Arc<User>>) -> Vec<usize> {
        let mut replaced = Vec::with_capacity(records.len());
        for record in records {
            let at = self
                .position_by_name(&record)
                .or_else(|| self.users.iter().position(|u| u.id == record.id));
            if let Some(i) = at {
                self.users[i] = record;
                replaced.push(i);
            }
        }
        replaced.sort_unstable();
        replaced.dedup();
        replaced
    }

    /// Where the snapshot lists `user`, found by bisection: assembly orders users by lower-cased
    /// name first. `None` when no user of its name has its id.
    fn position_by_name(&self, user: &User) -> Option<usize> {
        let name = user.name.to_lowercase();
        let start = self.users.partition_point(|u| u.name.to_lowercase() < name);
        self.users[start..]
            .iter()
            .take_while(|u| u.name.to_lowercase() == name)
            .position(|u| u.id == user.id)
            .map(|offset| start + offset)
    }

    pub fn user_names(&self, group: &Group) -> Vec<&str> {
        group
            .users
            .iter()
            .map(|&u| self.users[u].name.as_str())
            .collect()
    }
}
