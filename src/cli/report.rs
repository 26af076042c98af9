//! What `usersync preview` and `usersync browse` print: a snapshot as text for people, or as
//! documents (`-o json|yaml`) for scripts.

use std::collections::HashMap;
use std::fmt::Write;

use serde::Serialize;

use crate::directory::dn::Dn;
use crate::directory::snapshot::Snapshot;

pub fn summary(s: &Snapshot, server: &str, seconds: f64) -> String {
    let mut out = String::new();
    let disabled = s.users.iter().filter(|u| u.disabled).count();
    let _ = writeln!(out, "server:      {server}");
    let _ = writeln!(out, "base DN:     {}", s.base_dn);
    let _ = writeln!(out, "users:       {} ({disabled} disabled)", s.users.len());
    let _ = writeln!(out, "groups:      {}", s.groups.len());
    let _ = writeln!(out, "containers:  {}", s.containers.len());
    let _ = writeln!(
        out,
        "excluded:    {} (plus {} disabled users left out)",
        s.stats.excluded, s.stats.disabled_skipped
    );
    let _ = writeln!(
        out,
        "unresolved:  {} member values name nothing in scope",
        s.unresolved.count
    );
    for value in &s.unresolved.sample {
        let _ = writeln!(out, "             e.g. {value}");
    }
    let unreadable = &s.stats.unreadable;
    if unreadable.count > 0 {
        let _ = writeln!(
            out,
            "unreadable:  {} entries cannot be used and are left out",
            unreadable.count
        );
        for entry in &unreadable.sample {
            let _ = writeln!(out, "             e.g. {entry}");
        }
    }
    let _ = writeln!(
        out,
        "read:        {} entries in {} requests, {seconds:.2}s",
        s.stats.entries, s.stats.requests
    );
    let _ = writeln!(out, "\ngroups (users, child groups):");
    let mut groups: Vec<_> = s.groups.iter().collect();
    groups.sort_by_key(|g| g.name.to_lowercase());
    for g in groups {
        let _ = writeln!(
            out,
            "  {:<40} {:>7} {:>4}",
            g.name,
            g.users.len(),
            g.groups.len()
        );
    }
    out
}

/// The containment tree under the base DN, each container with its groups and a count of its users,
/// down to `depth` levels.
pub fn tree(s: &Snapshot, depth: usize) -> String {
    let mut users_in: HashMap<String, usize> = HashMap::new();
    for u in &s.users {
        if let Some(parent) = Dn::parse(&u.dn).ok().and_then(|d| d.parent()) {
            *users_in.entry(parent.key().to_owned()).or_default() += 1;
        }
    }
    let key = |dn: &str| {
        Dn::parse(dn)
            .map(|d| d.key().to_owned())
            .unwrap_or_default()
    };
    let mut out = String::new();
    let base_key = key(&s.base_dn);
    let _ = writeln!(
        out,
        "{}  [{} users]",
        s.base_dn,
        users_in.get(&base_key).copied().unwrap_or(0)
    );
    write_level(&mut out, s, None, 1, depth, &users_in, &key);
    out
}

fn write_level(
    out: &mut String,
    s: &Snapshot,
    parent: Option<usize>,
    level: usize,
    depth: usize,
    users_in: &HashMap<String, usize>,
    key: &dyn Fn(&str) -> String,
) {
    if level > depth {
        return;
    }
    let indent = "  ".repeat(level);
    for g in s.groups.iter().filter(|g| g.container == parent) {
        let _ = writeln!(
            out,
            "{indent}* {}  ({} users, {} child groups)  {}",
            g.name,
            g.users.len(),
            g.groups.len(),
            g.dn
        );
    }
    for (i, c) in s
        .containers
        .iter()
        .enumerate()
        .filter(|(_, c)| c.parent == parent)
    {
        let users = users_in.get(&key(&c.dn)).copied().unwrap_or(0);
        let groups = s.groups.iter().filter(|g| g.container == Some(i)).count();
        let _ = writeln!(
            out,
            "{indent}{}/  [{users} users, {groups} groups]  {}",
            c.name, c.dn
        );
        write_level(out, s, Some(i), level + 1, depth, users_in, key);
    }
}

/// What `preview -o json|yaml` prints.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary<'a> {
    pub server: &'a str,
    #[serde(rename = "baseDN")]
    pub base_dn: &'a str,
    pub users: usize,
    pub disabled_users: usize,
    pub containers: usize,
    pub excluded: usize,
    pub disabled_left_out: usize,
    pub unresolved_members: usize,
    pub unresolved_sample: &'a [String],
    pub unreadable_entries: usize,
    pub unreadable_sample: &'a [String],
    pub entries_read: usize,
    pub requests: usize,
    pub seconds: f64,
    pub groups: Vec<GroupSummary<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupSummary<'a> {
    pub name: &'a str,
    pub dn: &'a str,
    pub users: usize,
    pub child_groups: usize,
}

pub fn summary_doc<'a>(s: &'a Snapshot, server: &'a str, seconds: f64) -> Summary<'a> {
    Summary {
        server,
        base_dn: &s.base_dn,
        users: s.users.len(),
        disabled_users: s.users.iter().filter(|u| u.disabled).count(),
        containers: s.containers.len(),
        excluded: s.stats.excluded,
        disabled_left_out: s.stats.disabled_skipped,
        unresolved_members: s.unresolved.count,
        unresolved_sample: &s.unresolved.sample,
        unreadable_entries: s.stats.unreadable.count,
        unreadable_sample: &s.stats.unreadable.sample,
        entries_read: s.stats.entries,
        requests: s.stats.requests,
        seconds,
        groups: s
            .groups
            .iter()
            .map(|g| GroupSummary {
                name: &g.name,
                dn: &g.dn,
                users: g.users.len(),
                child_groups: g.groups.len(),
            })
            .collect(),
    }
}

/// What `browse -o json|yaml` prints: the part of a task's spec that picks what was browsed, to
/// paste into `spec` (and shorten the list of groups to the ones wanted).
#[derive(Debug, Serialize)]
pub struct Picked<'a> {
    pub directory: PickedDirectory<'a>,
}

#[derive(Debug, Serialize)]
pub struct PickedDirectory<'a> {
    #[serde(rename = "baseDN")]
    pub base_dn: &'a str,
    /// The DNs of the groups the tree shows, down to the depth asked for.
    pub groups: Vec<&'a str>,
}

pub fn picked(s: &Snapshot, depth: usize) -> Picked<'_> {
    // Level of each container below the base DN: 1 directly below it.
    let mut level = vec![0usize; s.containers.len()];
    for (i, c) in s.containers.iter().enumerate() {
        let mut n = 1;
        let mut parent = c.parent;
        while let Some(p) = parent {
            n += 1;
            parent = s.containers[p].parent;
        }
        level[i] = n;
    }
    let group_level = |container: Option<usize>| container.map_or(1, |c| level[c] + 1);
    Picked {
        directory: PickedDirectory {
            base_dn: &s.base_dn,
            groups: s
                .groups
                .iter()
                .filter(|g| group_level(g.container) <= depth)
                .map(|g| g.dn.as_str())
                .collect(),
        },
    }
}
