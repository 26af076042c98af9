//! The tree the directory asks for: the task's target group at the root, OU groups for the
//! containers that hold groups, and the directory groups below them (below their parent group when
//! nesting is preserved). Users are listed in every group they belong to; users in no group are
//! listed in the target group.

use std::collections::VecDeque;
use std::sync::Arc;

use super::order::by_name_then_id;
use crate::api::{DirectorySource, GroupUser, NestedGroups, UserGroupSpec};
use crate::directory::snapshot::Snapshot;

/// How an object is recognised across runs: never by its name, which is fixed at creation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Identity {
    /// The task's root group.
    Target,
    /// A directory group or container, by its stable directory id.
    Directory(String),
}

impl Identity {
    /// The identity of the group a stored spec holds: its source's id, or the target group.
    pub fn of(spec: &UserGroupSpec) -> Identity {
        match &spec.source {
            Some(source) => Identity::Directory(source.id.clone()),
            None => Identity::Target,
        }
    }
}

/// One UserGroup the directory asks for, before names are assigned.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredGroup {
    pub identity: Identity,
    pub display_name: String,
    pub description: Option<String>,
    pub source: Option<DirectorySource>,
    pub parent: Option<Identity>,
    /// In list order (`order::sort_users`): by name, then id.
    pub users: Vec<Arc<GroupUser>>,
}

pub fn desired_groups(
    s: &Snapshot,
    target_group: &str,
    description: Option<&str>,
    nested: NestedGroups,
) -> Vec<DesiredGroup> {
    let parent_group = if nested == NestedGroups::Preserve {
        tree_parents(s)
    } else {
        vec![None; s.groups.len()]
    };

    // Containers that hold a group placed by containment, and every container above them.
    let mut needed = vec![false; s.containers.len()];
    for (g, group) in s.groups.iter().enumerate() {
        if parent_group[g].is_none() {
            let mut c = group.container;
            while let Some(i) = c.filter(|&i| !needed[i]) {
                needed[i] = true;
                c = s.containers[i].parent;
            }
        }
    }
    let container_identity = |c: Option<usize>| match c {
        Some(i) => Identity::Directory(s.containers[i].id.clone()),
        None => Identity::Target,
    };

    let mut in_some_group = vec![false; s.users.len()];
    s.groups
        .iter()
        .flat_map(|g| &g.users)
        .for_each(|&u| in_some_group[u] = true);
    let in_list_order = in_list_order(s);

    let mut out = Vec::with_capacity(1 + s.groups.len());
    out.push(DesiredGroup {
        identity: Identity::Target,
        display_name: target_group.to_owned(),
        description: description.map(str::to_owned),
        source: None,
        parent: None,
        users: in_list_order((0..s.users.len()).filter(|&u| !in_some_group[u]).collect()),
    });
    for (i, c) in s.containers.iter().enumerate().filter(|(i, _)| needed[*i]) {
        out.push(DesiredGroup {
            identity: Identity::Directory(c.id.clone()),
            display_name: c.name.clone(),
            description: None,
            source: Some(DirectorySource {
                dn: c.dn.clone(),
                id: c.id.clone(),
                sid: None,
            }),
            parent: Some(container_identity(s.containers[i].parent)),
            users: Vec::new(),
        });
    }
    for (g, group) in s.groups.iter().enumerate() {
        let parent = match parent_group[g] {
            Some(p) => Identity::Directory(s.groups[p].id.clone()),
            None => container_identity(group.container),
        };
        out.push(DesiredGroup {
            identity: Identity::Directory(group.id.clone()),
            display_name: group.name.clone(),
            description: group.description.clone(),
            source: Some(DirectorySource {
                dn: group.dn.clone(),
                id: group.id.clone(),
                sid: group.sid.clone(),
            }),
            parent: Some(parent),
            users: in_list_order(group.users.clone()),
        });
    }
    out
}

/// Turns indices into the snapshot's users into records in list order. The users are ranked once:
/// a group's members then sort by rank, not by comparing names held elsewhere in memory, and every
/// later step can take their order as it is.
fn in_list_order(s: &Snapshot) -> impl Fn(Vec<usize>) -> Vec<Arc<GroupUser>> + '_ {
    let mut order: Vec<usize> = (0..s.users.len()).collect();
    // The snapshot's own order (by lower-case name) is close to this one, so the sort mostly
    // confirms runs.
    order.sort_by(|&a, &b| by_name_then_id(&s.users[a], &s.users[b]));
    let mut rank = vec![0; s.users.len()];
    for (r, u) in order.into_iter().enumerate() {
        rank[u] = r;
    }
    move |mut users: Vec<usize>| {
        users.sort_unstable_by_key(|&u| rank[u]);
        users.into_iter().map(|u| Arc::clone(&s.users[u])).collect()
    }
}

/// With nesting preserved, each group's parent group: a spanning tree of the membership graph.
/// Groups no group contains are roots; each other group hangs below the first group that reaches
/// it breadth-first. A cycle no root reaches is entered at its first group (in DN order), which is
/// then placed by containment. The result never loops.
fn tree_parents(s: &Snapshot) -> Vec<Option<usize>> {
    let n = s.groups.len();
    let mut is_child = vec![false; n];
    s.groups
        .iter()
        .flat_map(|g| &g.groups)
        .for_each(|&c| is_child[c] = true);
    let mut parent = vec![None; n];
    let mut seen = vec![false; n];
    let mut queue = VecDeque::new();
    // Snapshot groups are sorted by DN, so "first" is deterministic.
    let roots = (0..n).filter(|&g| !is_child[g]).chain(0..n);
    for root in roots {
        if seen[root] {
            continue;
        }
        seen[root] = true;
        queue.push_back(root);
        while let Some(g) = queue.pop_front() {
            for &child in &s.groups[g].groups {
                if !seen[child] {
                    seen[child] = true;
                    parent[child] = Some(g);
                    queue.push_back(child);
                }
            }
        }
    }
    parent
}
