//! The entries one read found, kept between runs of a task so that the next run can read only what
//! changed and apply it here. Pure: the change feeds in `delta` produce [`Changes`], this applies them.

use std::sync::Arc;
use std::time::SystemTime;

use hashbrown::{HashMap, HashSet};

use super::assemble::{Member, RawContainer, RawGroup, RawUser};
use super::entry::day_of;
use super::snapshot::User;
pub use by_id::ById;

mod by_id;

/// Every user, group and container in the task's searches, by stable id.
#[derive(Clone, Debug, Default)]
pub struct Entries {
    pub users: ById<RawUser>,
    pub groups: ById<RawGroup>,
    pub containers: ById<RawContainer>,
}

/// What a change feed reported for one kind of entry.
#[derive(Debug)]
pub struct Changes<T> {
    /// Entries added or changed, as they are now.
    pub upserts: Vec<T>,
    /// Ids of entries that left the search: deleted, moved out, or no longer matching the filter.
    pub removed: HashSet<String>,
    /// When the feed lists what is still there instead of what left: every id still in the search.
    pub present: Option<HashSet<String>>,
}

impl<T> Changes<T> {
    /// Nothing added, changed or gone.
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.removed.is_empty() && self.present.is_none()
    }
}

impl<T> Default for Changes<T> {
    fn default() -> Self {
        Changes {
            upserts: Vec::new(),
            removed: HashSet::new(),
            present: None,
        }
    }
}

/// Why changes cannot be applied and everything must be read again.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    /// A renamed, moved or deleted OU changes the DNs of everything below it without the feed
    /// reporting those entries.
    #[error("an OU or container was renamed, moved or deleted")]
    ContainerMoved,
    /// The server cannot answer from the kept position (too old, or a limit was hit).
    #[error("the server refused the change feed: {0}")]
    FeedRefused(String),
}

pub trait Keyed {
    fn id(&self) -> &str;
    /// The normalized form of the entry's DN.
    fn dn_key(&self) -> &str;
}

impl Keyed for RawUser {
    fn id(&self) -> &str {
        &self.user.id
    }
    fn dn_key(&self) -> &str {
        self.dn.key()
    }
}

impl Keyed for RawGroup {
    fn id(&self) -> &str {
        &self.group.id
    }
    fn dn_key(&self) -> &str {
        self.dn.key()
    }
}

impl Keyed for RawContainer {
    fn id(&self) -> &str {
        &self.id
    }
    fn dn_key(&self) -> &str {
        self.dn.key()
    }
}

impl Entries {
    pub fn from_read(
        users: Vec<RawUser>,
        groups: Vec<RawGroup>,
        containers: Vec<RawContainer>,
    ) -> Entries {
        Entries {
            users: users.into_iter().collect(),
            groups: groups.into_iter().collect(),
            containers: containers.into_iter().collect(),
        }
    }

    /// Disables the kept users whose accounts expired since they were read (no change feed reports
    /// a day passing); returns how many.
    pub fn disable_expired(&mut self, now: SystemTime) -> usize {
        let today = day_of(now);
        let mut count = 0;
        for raw in self.users.values_mut() {
            if raw.expires_on.is_some_and(|day| day <= today) {
                Arc::make_mut(&mut raw.user).disabled = true;
                raw.expires_on = None;
                count += 1;
            }
        }
        count
    }

    pub fn len(&self) -> usize {
        self.users.len() + self.groups.len() + self.containers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// When the changes only change users in place — no user added, gone, renamed, moved, given
    /// another login name or enabled or disabled, and no group or container added, changed or gone —
    /// their new records: a snapshot assembled before the changes then differs from one assembled
    /// after them in those records alone (same order, same memberships, same scope).
    pub fn changed_in_place(
        &self,
        users: &Changes<RawUser>,
        groups: &Changes<RawGroup>,
        containers: &Changes<RawContainer>,
    ) -> Option<Vec<Arc<User>>> {
        let untouched = |upserts: usize, nothing_gone: bool| upserts == 0 && nothing_gone;
        if !untouched(
            groups.upserts.len(),
            gone(&self.groups, groups).next().is_none(),
        ) || !untouched(
            containers.upserts.len(),
            gone(&self.containers, containers).next().is_none(),
        ) || gone(&self.users, users).next().is_some()
        {
            return None;
        }
        users
            .upserts
            .iter()
            .map(|new| {
                let old = self.users.get(new.id())?;
                let in_place = old.dn == new.dn
                    && old.user.name == new.user.name
                    && old.user.disabled == new.user.disabled;
                in_place.then(|| Arc::clone(&new.user))
            })
            .collect()
    }

    /// Applies one feed's changes. With `member_links` (member values are DNs), member values follow
    /// renamed and moved entries: Active Directory's links follow without changing the group, and
    /// OpenLDAP's refint overlay rewrites groups without a new entryCSN, so neither feed reports
    /// those groups.
    pub fn apply(
        &mut self,
        users: Changes<RawUser>,
        groups: Changes<RawGroup>,
        containers: Changes<RawContainer>,
        member_links: bool,
    ) -> Result<(), Unusable> {
        let containers_moved = containers.upserts.iter().any(|c| {
            self.containers
                .get(c.id())
                .is_some_and(|old| old.dn != c.dn)
        }) || gone(&self.containers, &containers).next().is_some();
        if containers_moved {
            return Err(Unusable::ContainerMoved);
        }
        apply_kind(&mut self.containers, containers);
        let mut renamed = apply_kind(&mut self.users, users);
        renamed.extend(apply_kind(&mut self.groups, groups));
        if member_links && !renamed.is_empty() {
            self.follow_renames(&renamed);
        }
        Ok(())
    }

    fn follow_renames(&mut self, renamed: &HashMap<String, String>) {
        for group in self.groups.values_mut() {
            for member in group.members.iter_mut() {
                if let Some(key) = member.key().and_then(|k| renamed.get(k)) {
                    *member = Member::Key(key.as_str().into());
                }
            }
        }
    }
}

/// Ids of kept entries the changes say are gone. Without a present list, those are among the
/// removed ones: the kept entries are not all looked at.
fn gone<'a, T: Keyed>(
    kept: &'a ById<T>,
    changes: &'a Changes<T>,
) -> impl Iterator<Item = &'a str> + 'a {
    let upserted: HashSet<&str> = changes.upserts.iter().map(Keyed::id).collect();
    let ids: Vec<&str> = match &changes.present {
        None => changes
            .removed
            .iter()
            .map(String::as_str)
            .filter(|id| kept.contains_key(id) && !upserted.contains(id))
            .collect(),
        Some(present) => kept
            .ids()
            .filter(|id| {
                !upserted.contains(id) && (changes.removed.contains(*id) || !present.contains(*id))
            })
            .collect(),
    };
    ids.into_iter()
}

/// Applies the changes of one kind; returns the renamed entries (old DN key → new DN key).
fn apply_kind<T: Keyed>(kept: &mut ById<T>, changes: Changes<T>) -> HashMap<String, String> {
    let gone: Vec<String> = gone(kept, &changes).map(str::to_owned).collect();
    for id in gone {
        kept.remove(&id);
    }
    let mut renamed = HashMap::new();
    for item in changes.upserts {
        if let Some(old) = kept.get(item.id())
            && old.dn_key() != item.dn_key()
        {
            renamed.insert(old.dn_key().to_owned(), item.dn_key().to_owned());
        }
        kept.insert(item);
    }
    renamed
}

#[cfg(test)]
mod tests;
