//! Names for the plan's groups: the root under `targetGroup`, chosen names (`groupNames`) under
//! theirs, every other group under its directory name, with a suffix from its id only where that
//! name is taken. A name is chosen once: an object keeps it across renames in the directory, and
//! a name taken later (another directory group called the same, a hand-made object) never
//! renames an object that holds it; the newcomer gets the suffix. Only a name the spec asks for
//! (a changed `targetGroup` or `groupNames` entry) moves an object to a new name.

use std::collections::BTreeMap;

use hashbrown::{HashMap, HashSet};

use super::{CurrentGroup, Plan, Policies, SkipReason, Skipped};
use crate::api::CollisionPolicy;
use crate::planner::desired::{DesiredGroup, Identity};
use crate::planner::names::{carries_suffix_of, plain_name, suffixed_name, suffixed_name_long};

/// The names the spec asks for.
#[derive(Clone, Debug, Default)]
pub struct Naming {
    /// `targetGroup`: the root UserGroup's name.
    pub root: String,
    /// `groupNames`, matched to the directory's groups.
    pub chosen: HashMap<Identity, String>,
}

/// Where the task's tree hangs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Root {
    /// The root is the task's, or is to be created: the tree hangs below it.
    Own,
    /// The root exists and is not the task's: never written; the task's own group, named after
    /// the task, hangs below it and the tree below that.
    Attached(String),
}

/// Where the task's tree hangs, from the object (if any) that holds the root's name. A root this
/// task's namesake left behind (`deletionPolicy: Orphan`) is taken back under `Overwrite`.
pub fn root_of(
    naming: &Naming,
    by_name: &HashMap<&str, &CurrentGroup<'_>>,
    collision: CollisionPolicy,
) -> Root {
    match by_name.get(naming.root.as_str()) {
        None => Root::Own,
        Some(c) if c.owned => Root::Own,
        Some(c)
            if c.left_behind
                && collision == CollisionPolicy::Overwrite
                && c.identity() == Identity::Target =>
        {
            Root::Own
        }
        Some(_) => Root::Attached(naming.root.clone()),
    }
}

/// The name the spec asks `identity` to have, if any.
pub fn required<'p>(policies: &'p Policies, root: &Root, identity: &Identity) -> Option<&'p str> {
    match identity {
        Identity::Target => (*root == Root::Own).then_some(policies.naming.root.as_str()),
        Identity::Directory(_) => policies.naming.chosen.get(identity).map(String::as_str),
    }
}

/// What a group's suffixed name derives its suffix from.
pub fn name_key(identity: &Identity, display_name: &str) -> String {
    match identity {
        Identity::Target => format!("target:{display_name}"),
        Identity::Directory(id) => id.clone(),
    }
}

/// Whether `c` holds a name usersync would give it now: the one the spec asks for, its plain
/// name, or one carrying its id's suffix. A copy under another name does not.
pub fn holds_given_name(c: &CurrentGroup<'_>, required: Option<&str>) -> bool {
    let identity = c.identity();
    required == Some(c.name.as_str())
        || plain_name(&c.spec.display_name).as_deref() == Some(c.name.as_str())
        || carries_suffix_of(&c.name, &name_key(&identity, &c.spec.display_name))
}

/// The plan's names: by identity, the ones to leave unwritten (their name is kept so children
/// hang below whatever holds it), and this task's objects a new name replaces.
#[derive(Debug, Default)]
pub struct Names {
    pub names: BTreeMap<Identity, String>,
    pub skip: HashSet<Identity>,
    pub replaced: Vec<String>,
}

/// Who holds a name.
enum Holder {
    /// Nobody, or this identity's own object.
    Free,
    /// Another of this task's objects or groups, or another task's object: never taken.
    Taken,
    /// An object no live task wrote (by hand, by GitOps, or left behind by a deleted task): the
    /// collision policy decides.
    HandMade,
}

struct Assigner<'a, 'c> {
    by_name: &'a HashMap<&'c str, &'c CurrentGroup<'c>>,
    collision: CollisionPolicy,
    used: HashSet<String>,
    out: Names,
    skipped: &'a mut Vec<Skipped>,
}

/// Names for every desired group. Objects that keep their names first, then names the spec asks
/// for, then the directory's names, each group in the desired order.
pub fn assign_names(
    desired: &[DesiredGroup],
    owned: &HashMap<Identity, &CurrentGroup<'_>>,
    by_name: &HashMap<&str, &CurrentGroup<'_>>,
    (policies, root): (&Policies, &Root),
    out: &mut Plan,
) -> Names {
    let mut a = Assigner {
        by_name,
        collision: policies.collision,
        used: HashSet::new(),
        out: Names::default(),
        skipped: &mut out.skipped,
    };
    // A root the task hangs below is nobody's to collide with: a group called like it is suffixed.
    if let Root::Attached(name) = root {
        a.used.insert(name.clone());
    }
    for d in desired {
        let wanted = required(policies, root, &d.identity);
        if let Some(c) = owned.get(&d.identity)
            && wanted.is_none_or(|w| w == c.name)
        {
            a.take(&d.identity, &c.name);
        }
    }
    for d in desired {
        if let Some(wanted) = required(policies, root, &d.identity)
            && !a.out.names.contains_key(&d.identity)
        {
            a.place_required(d, wanted, owned.get(&d.identity).copied());
        }
    }
    for d in desired {
        if !a.out.names.contains_key(&d.identity) && !a.out.skip.contains(&d.identity) {
            a.place_generated(d);
        }
    }
    a.out
}

impl Assigner<'_, '_> {
    fn holder(&self, name: &str, identity: &Identity) -> Holder {
        if self.used.contains(name) {
            return Holder::Taken;
        }
        match self.by_name.get(name) {
            None => Holder::Free,
            Some(c) if c.owned && c.identity() == *identity => Holder::Free,
            Some(c) if c.owned || c.another_task => Holder::Taken,
            Some(_) => Holder::HandMade,
        }
    }

    fn take(&mut self, identity: &Identity, name: &str) {
        self.used.insert(name.to_owned());
        self.out.names.insert(identity.clone(), name.to_owned());
    }

    fn report_taken(&mut self, name: &str) {
        self.skipped.push(Skipped {
            name: name.to_owned(),
            reason: SkipReason::NameTaken,
        });
    }

    /// A hand-made object holds the name: Skip leaves the group out (its children hang below the
    /// object), Overwrite takes the object over.
    fn collide(&mut self, identity: &Identity, name: &str) {
        if self.collision == CollisionPolicy::Skip {
            self.report_taken(name);
            self.out.skip.insert(identity.clone());
        }
        self.take(identity, name);
    }

    /// The spec's name for the group. When it cannot be had, an object the group already has keeps
    /// its name; otherwise the group is left out (reported), and its children hang higher up.
    fn place_required(&mut self, d: &DesiredGroup, wanted: &str, current: Option<&CurrentGroup>) {
        let holder = self.holder(wanted, &d.identity);
        let gets_it = match holder {
            Holder::Free => true,
            Holder::HandMade => self.collision == CollisionPolicy::Overwrite,
            Holder::Taken => false,
        };
        if gets_it {
            self.take(&d.identity, wanted);
            if let Some(c) = current {
                self.out.replaced.push(c.name.clone());
            }
            return;
        }
        match (current, holder) {
            (Some(c), _) => {
                self.report_taken(wanted);
                self.take(&d.identity, &c.name);
            }
            (None, Holder::HandMade) => self.collide(&d.identity, wanted),
            (None, _) => {
                self.report_taken(wanted);
                self.out.skip.insert(d.identity.clone());
            }
        }
    }

    /// The group's plain name when free; its suffixed names when another group or task holds it;
    /// the collision policy when a hand-made object does.
    fn place_generated(&mut self, d: &DesiredGroup) {
        let key = name_key(&d.identity, &d.display_name);
        let candidates = plain_name(&d.display_name).into_iter().chain([
            suffixed_name(&d.display_name, &key),
            suffixed_name_long(&d.display_name, &key),
        ]);
        let mut last = String::new();
        for name in candidates {
            match self.holder(&name, &d.identity) {
                Holder::Free => return self.take(&d.identity, &name),
                Holder::HandMade => return self.collide(&d.identity, &name),
                Holder::Taken => last = name,
            }
        }
        // Even the long suffix is taken: vanishingly rare, reported rather than guessed around.
        self.report_taken(&last);
        self.out.skip.insert(d.identity.clone());
    }
}
