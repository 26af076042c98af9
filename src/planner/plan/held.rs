//! Directory objects a read could not use: whatever stands for them stays as it was. A user whose
//! entry became unreadable stays listed in its groups as it was listed; a group whose entry became
//! unreadable is neither removed nor marked extinct.

use hashbrown::HashSet;

use super::CurrentGroup;
use crate::api::GroupUser;

/// The ids and DNs of the entries a read could not use; `everything` when one of them had neither,
/// so nothing tells what it stands for and nothing is taken as gone.
#[derive(Clone, Debug, Default)]
pub struct Held {
    ids: HashSet<String>,
    /// Lower case: servers answer DNs in the case they were written, which may have changed.
    dns: HashSet<String>,
    everything: bool,
}

impl Held {
    pub fn new(
        ids: impl IntoIterator<Item = String>,
        dns: impl IntoIterator<Item = String>,
        everything: bool,
    ) -> Held {
        Held {
            ids: ids.into_iter().collect(),
            dns: dns.into_iter().map(|dn| dn.to_lowercase()).collect(),
            everything,
        }
    }

    fn holds(&self, id: &str, dn: &str) -> bool {
        self.everything || self.ids.contains(id) || self.dns.contains(&dn.to_lowercase())
    }

    fn is_empty(&self) -> bool {
        !self.everything && self.ids.is_empty() && self.dns.is_empty()
    }
}

/// Moves the vanished users that `held` names out of `vanished` and returns them.
pub(super) fn hold_users<'c>(
    listed: impl Iterator<Item = &'c GroupUser>,
    vanished: &mut HashSet<&'c str>,
    held: &Held,
) -> HashSet<&'c str> {
    if held.is_empty() || vanished.is_empty() {
        return HashSet::new();
    }
    let kept: HashSet<&str> = listed
        .filter(|u| vanished.contains(u.id.as_str()) && held.holds(&u.id, &u.dn))
        .map(|u| u.id.as_str())
        .collect();
    vanished.retain(|id| !kept.contains(id));
    kept
}

/// Takes the vanished groups that `held` names out of `vanished`; returns how many.
pub(super) fn hold_groups(vanished: &mut Vec<&CurrentGroup<'_>>, held: &Held) -> usize {
    if held.is_empty() {
        return 0;
    }
    let before = vanished.len();
    vanished.retain(|c| {
        c.spec
            .source
            .as_ref()
            .is_none_or(|source| !held.holds(&source.id, &source.dn))
    });
    before - vanished.len()
}
