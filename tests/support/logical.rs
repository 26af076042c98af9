//! A snapshot's logical content, free of ids, to compare servers with each other and with the
//! fixture generator.

use std::collections::BTreeMap;

use usersync::directory::snapshot::Snapshot;
use usersync_testbed::fixture::{Fixture, Member};

/// group name → (sorted member logins, sorted child group names).
pub type Logical = BTreeMap<String, (Vec<String>, Vec<String>)>;

pub fn logical(s: &Snapshot) -> Logical {
    s.groups
        .iter()
        .map(|g| {
            let mut users: Vec<String> = s.user_names(g).into_iter().map(str::to_owned).collect();
            users.sort();
            let mut children: Vec<String> =
                g.groups.iter().map(|&c| s.groups[c].name.clone()).collect();
            children.sort();
            (g.name.clone(), (users, children))
        })
        .collect()
}

/// What the fixture generator says each group holds.
pub fn expected_logical(f: &Fixture) -> Logical {
    f.groups
        .iter()
        .map(|g| {
            let mut users = Vec::new();
            let mut children = Vec::new();
            for m in &g.members {
                match *m {
                    Member::User(u) => users.push(f.users[u].login.clone()),
                    Member::Group(c) => children.push(f.groups[c].name.clone()),
                }
            }
            users.sort();
            children.sort();
            (g.name.clone(), (users, children))
        })
        .collect()
}
