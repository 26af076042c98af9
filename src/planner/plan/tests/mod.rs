use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::api::NestedGroups;
use crate::directory::snapshot::{Container, Group, Snapshot, User};
use crate::planner::desired::desired_groups;
use crate::planner::names::is_dns1123_label;

mod collisions;
mod extinction;
mod held;
mod in_place;
mod max_deletions;
mod naming;
mod order;
mod properties;
mod tree;

fn user(name: &str) -> Arc<User> {
    User {
        id: format!("uid-{name}"),
        dn: format!("CN={name},OU=Staff,DC=x"),
        name: name.into(),
        ..Default::default()
    }
    .into()
}

fn group(name: &str, container: Option<usize>, users: &[usize], groups: &[usize]) -> Group {
    Group {
        id: format!("gid-{name}"),
        dn: format!("CN={name},OU=Groups,DC=x"),
        name: name.into(),
        container,
        users: users.to_vec(),
        groups: groups.to_vec(),
        ..Default::default()
    }
}

/// Users a, b, c, loner; OU Groups holds Eng (a + child Ops) and Ops (b); Sales (c) directly below
/// the base; loner is in no group.
fn snapshot() -> Snapshot {
    Snapshot {
        base_dn: "DC=x".into(),
        users: vec![user("a"), user("b"), user("c"), user("loner")],
        groups: vec![
            group("Eng", Some(0), &[0], &[1]),
            group("Ops", Some(0), &[1], &[]),
            group("Sales", None, &[2], &[]),
        ],
        containers: vec![Container {
            id: "cid-groups".into(),
            dn: "OU=Groups,DC=x".into(),
            name: "Groups".into(),
            parent: None,
        }],
        ..Default::default()
    }
}

fn policies() -> Policies {
    Policies {
        task: "corp-ad".into(),
        naming: Naming {
            root: "all-users".into(),
            ..Naming::default()
        },
        collision: CollisionPolicy::Skip,
        user_extinction: ExtinctionPolicy::Remove,
        group_extinction: ExtinctionPolicy::Remove,
        max_deletions: MaxDeletions::percent(100),
        deletions_approved: false,
        held: Held::default(),
    }
}

/// [`policies`], with vanished users kept listed (Skip).
fn keeping_vanished_users() -> Policies {
    Policies {
        user_extinction: ExtinctionPolicy::Skip,
        ..policies()
    }
}

fn desired(s: &Snapshot, nested: NestedGroups) -> Vec<DesiredGroup> {
    desired_groups(s, "all-users", Some("Synced"), nested)
}

/// The cluster after a plan was applied on top of `current`.
fn apply(current: &[CurrentGroup<'static>], plan: &Plan) -> Vec<CurrentGroup<'static>> {
    let mut out: BTreeMap<String, CurrentGroup<'static>> = current
        .iter()
        .map(|c| (c.name.clone(), c.clone()))
        .collect();
    for w in plan.create.iter().chain(&plan.update) {
        out.insert(
            w.name.clone(),
            CurrentGroup {
                name: w.name.clone(),
                owned: true,
                another_task: false,
                left_behind: false,
                created: None,
                spec: Cow::Owned(w.spec.clone()),
                marked_extinct: false,
            },
        );
    }
    for name in &plan.remove {
        out.remove(name);
    }
    for name in &plan.mark_extinct {
        if let Some(c) = out.get_mut(name) {
            c.marked_extinct = true;
        }
    }
    out.into_values().collect()
}

fn by_display<'a>(groups: &'a [CurrentGroup<'a>], display: &str) -> &'a CurrentGroup<'a> {
    groups
        .iter()
        .find(|g| g.spec.display_name == display)
        .unwrap_or_else(|| panic!("{display} exists"))
}

fn user_names<'a>(g: &'a CurrentGroup<'_>) -> Vec<&'a str> {
    g.spec.users.iter().map(|u| u.name.as_str()).collect()
}

fn first_sync() -> Vec<CurrentGroup<'static>> {
    first_sync_of(&snapshot())
}

/// The cluster after a first sync of `s`.
fn first_sync_of(s: &Snapshot) -> Vec<CurrentGroup<'static>> {
    apply(
        &[],
        &plan(desired(s, NestedGroups::Preserve), &[], &policies()),
    )
}

/// A user named "a" with the given id: users may share a name.
fn user_a(id: &str) -> Arc<User> {
    let mut u = (*user("a")).clone();
    u.id = id.into();
    u.into()
}

fn listed(users: &[Arc<GroupUser>]) -> Vec<(&str, &str)> {
    users
        .iter()
        .map(|u| (u.name.as_str(), u.id.as_str()))
        .collect()
}
