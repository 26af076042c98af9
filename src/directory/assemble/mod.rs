//! Turns what the searches returned into a [`Snapshot`]: scope (chosen groups, excludes, disabled
//! users), member resolution, nesting and containment. Pure: no I/O, so every rule is unit-tested.

use hashbrown::{HashMap, HashSet};
use std::borrow::Cow;
use std::sync::Arc;

use super::dn::{Dn, DnKey, into_key};
use super::preset::MemberFormat;
use super::snapshot::{Container, Group, ReadStats, Snapshot, Unresolved, User};
use crate::api::NestedGroups;

/// A user entry as read, before scoping.
#[derive(Clone, Debug)]
pub struct RawUser {
    pub dn: DnKey,
    pub user: Arc<User>,
    /// The day (since 1970) an enabled account expires on: it passes without a change to the
    /// entry, so a kept entry is disabled when that day comes.
    pub expires_on: Option<i64>,
}

/// A group entry as read: its member values are DNs or user names, as the schema says.
#[derive(Clone, Debug)]
pub struct RawGroup {
    pub dn: Dn,
    pub group: Group,
    pub members: Vec<Member>,
}

/// A member value, kept as the key it is looked up by: a DN's normalized form (empty for the empty
/// DN), or a lower-case user name. Keys are made once, when the entry is read, not on every
/// assembly; a value that is not a DN is kept as the server sent it, to be reported. Every
/// membership of every group is one of these, so the value's own buffer becomes its key where it
/// can.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Member {
    Key(Box<str>),
    NotADn(Box<str>),
}

impl Member {
    pub fn new(value: String, format: MemberFormat) -> Member {
        match format {
            MemberFormat::UserName if value.is_ascii() => {
                let mut value = value;
                value.make_ascii_lowercase();
                Member::Key(value.into_boxed_str())
            }
            MemberFormat::UserName => Member::Key(value.to_lowercase().into_boxed_str()),
            MemberFormat::Dn => match into_key(value) {
                Ok(key) => Member::Key(key.into_boxed_str()),
                Err(value) => Member::NotADn(value.into_boxed_str()),
            },
        }
    }

    /// The key; `None` for a value that is not a DN.
    pub fn key(&self) -> Option<&str> {
        match self {
            Member::Key(key) => Some(key),
            Member::NotADn(_) => None,
        }
    }

    /// What a report names the member by: its key, or the value that is not a DN.
    pub fn text(&self) -> &str {
        match self {
            Member::Key(text) | Member::NotADn(text) => text,
        }
    }
}

#[derive(Clone, Debug)]
pub struct RawContainer {
    pub dn: Dn,
    /// The DN as the server wrote it.
    pub text: String,
    pub name: String,
    pub id: String,
}

/// The part of the task that decides what is in the snapshot.
pub struct Scope {
    pub base: Dn,
    /// Chosen groups; empty means every group under the base DN.
    pub groups: Vec<Dn>,
    pub excludes: Vec<Dn>,
    pub ignore_disabled_users: bool,
    pub nested_groups: NestedGroups,
    pub member_format: MemberFormat,
    /// The most memberships Flatten may produce, all groups together.
    pub max_memberships: usize,
}

/// Flatten would produce more memberships than the scope allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooManyMemberships {
    pub limit: usize,
    /// The group whose flattened members went past the limit.
    pub group: String,
}

/// Builds the snapshot from borrowed entries (kept between runs, so they are copied, not moved).
pub fn assemble<'a>(
    users: impl IntoIterator<Item = &'a RawUser>,
    groups: impl IntoIterator<Item = &'a RawGroup>,
    containers: impl IntoIterator<Item = &'a RawContainer>,
    scope: &Scope,
    mut stats: ReadStats,
) -> Result<Snapshot, TooManyMemberships> {
    let excluded = |dn: &Dn| scope.excludes.iter().any(|e| dn.is_within(e));
    // Entries left out on purpose: members naming them are not "unresolved".
    let mut left_out: HashSet<String> = HashSet::new();
    let mut left_out_names: HashSet<String> = HashSet::new();

    let mut users_in_scope: Vec<&RawUser> = Vec::new();
    for raw in users {
        let drop_excluded = scope.excludes.iter().any(|e| raw.dn.is_within(e));
        let drop_disabled = scope.ignore_disabled_users && raw.user.disabled;
        if drop_excluded || drop_disabled {
            stats.excluded += usize::from(drop_excluded);
            stats.disabled_skipped += usize::from(!drop_excluded && drop_disabled);
            left_out.insert(raw.dn.key().to_owned());
            left_out_names.insert(raw.user.name.to_lowercase());
        } else {
            users_in_scope.push(raw);
        }
    }
    // Most names are lower-case already: those are borrowed, not copied. The names lie scattered
    // in memory; their first bytes, packed in an integer, settle most comparisons without them.
    users_in_scope.sort_by_cached_key(|u: &&'a RawUser| {
        let name = lower_case(&u.user.name);
        (head(&name), name, u.dn.key())
    });

    let mut groups_in_scope: Vec<&RawGroup> = Vec::new();
    for raw in groups {
        if excluded(&raw.dn) {
            stats.excluded += 1;
            left_out.insert(raw.dn.key().to_owned());
        } else {
            groups_in_scope.push(raw);
        }
    }
    groups_in_scope.sort_by(|a, b| a.dn.cmp(&b.dn));

    let (mut members, unresolved_of) = resolve_members(
        &users_in_scope,
        &groups_in_scope,
        scope.member_format,
        &left_out,
        &left_out_names,
    );
    apply_nesting(&mut members, scope.nested_groups, scope.max_memberships).map_err(|g| {
        TooManyMemberships {
            limit: scope.max_memberships,
            group: groups_in_scope[g].group.dn.clone(),
        }
    })?;
    let mut unresolved = Unresolved::default();
    let selected = selected_groups(&groups_in_scope, &members, scope, &mut unresolved);
    // Only the groups the task synchronizes count: with chosen groups, the others' members were
    // never meant to be read.
    for (values, _) in unresolved_of.iter().zip(&selected).filter(|(_, s)| **s) {
        values.iter().for_each(|v| unresolved.record(v));
    }
    let (containers, container_by_dn) = build_containers(containers, &scope.base);
    let (users, groups) = listed(
        users_in_scope,
        groups_in_scope,
        members,
        selected,
        scope.groups.is_empty(),
        &container_by_dn,
    );

    Ok(Snapshot {
        base_dn: scope.base.to_string(),
        users,
        groups,
        containers,
        unresolved,
        stats,
    })
}

/// A group's members: indices into the users and into the groups.
type Members = (Vec<usize>, Vec<usize>);

/// Each group's members as indices into `users` and into `groups`, and each group's unresolved
/// member values: those that name neither, nor an entry left out on purpose (`left_out`: DN keys
/// and lower-case user names).
fn resolve_members<'a>(
    users: &[&RawUser],
    groups: &[&'a RawGroup],
    format: MemberFormat,
    left_out: &HashSet<String>,
    left_out_names: &HashSet<String>,
) -> (Vec<Members>, Vec<Vec<&'a str>>) {
    let user_by_dn: HashMap<&str, usize> = users
        .iter()
        .enumerate()
        .map(|(i, u)| (u.dn.key(), i))
        .collect();
    // Only member values that are names need the name index.
    let user_by_name: HashMap<String, usize> = match format {
        MemberFormat::UserName => users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.user.name.to_lowercase(), i))
            .collect(),
        MemberFormat::Dn => HashMap::new(),
    };
    let group_by_dn: HashMap<&str, usize> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.dn.key(), i))
        .collect();

    let mut members: Vec<Members> = Vec::with_capacity(groups.len());
    let mut unresolved_of: Vec<Vec<&'a str>> = Vec::with_capacity(groups.len());
    for raw in groups.iter().copied() {
        let (mut member_users, mut member_groups) = (Vec::new(), Vec::new());
        let mut unresolved = Vec::new();
        for member in &raw.members {
            let Some(key) = member.key() else {
                unresolved.push(member.text());
                continue;
            };
            match format {
                MemberFormat::UserName => match user_by_name.get(key) {
                    Some(&u) => member_users.push(u),
                    None if left_out_names.contains(key) => {}
                    None => unresolved.push(member.text()),
                },
                MemberFormat::Dn => {
                    if key.is_empty() {
                        continue; // the placeholder member of an empty groupOfNames
                    }
                    if let Some(&u) = user_by_dn.get(key) {
                        member_users.push(u);
                    } else if let Some(&g) = group_by_dn.get(key) {
                        member_groups.push(g);
                    } else if !left_out.contains(key) {
                        unresolved.push(member.text());
                    }
                }
            }
        }
        members.push((member_users, member_groups));
        unresolved_of.push(unresolved);
    }
    (members, unresolved_of)
}

/// The snapshot's users and groups: of the groups in scope the selected ones, each in its
/// container, and the users they list (every user in scope when `every_user`, as when no groups are
/// chosen), members re-indexed to match.
fn listed(
    users: Vec<&RawUser>,
    groups: Vec<&RawGroup>,
    members: Vec<(Vec<usize>, Vec<usize>)>,
    selected: Vec<bool>,
    every_user: bool,
    container_by_dn: &HashMap<String, usize>,
) -> (Vec<Arc<User>>, Vec<Group>) {
    let mut user_used = vec![false; users.len()];
    for (g, (us, _)) in members.iter().enumerate() {
        if selected[g] {
            us.iter().for_each(|&u| user_used[u] = true);
        }
    }
    if every_user {
        user_used.iter_mut().for_each(|u| *u = true);
    }
    let mut new_user = vec![usize::MAX; users.len()];
    let mut out_users = Vec::new();
    for (i, raw) in users.into_iter().enumerate() {
        if user_used[i] {
            new_user[i] = out_users.len();
            out_users.push(Arc::clone(&raw.user));
        }
    }
    let mut new_group = vec![usize::MAX; groups.len()];
    let mut next = 0;
    for (g, &is_listed) in selected.iter().enumerate() {
        if is_listed {
            new_group[g] = next;
            next += 1;
        }
    }
    let mut out_groups = Vec::with_capacity(next);
    for ((raw, (us, gs)), is_listed) in groups.into_iter().zip(members).zip(selected) {
        if !is_listed {
            continue;
        }
        let mut group = raw.group.clone();
        group.container = raw
            .dn
            .parent()
            .and_then(|p| container_by_dn.get(p.key()).copied());
        group.users = sorted_unique(us.iter().map(|&u| new_user[u]));
        group.groups = sorted_unique(
            gs.iter()
                .map(|&g| new_group[g])
                .filter(|&g| g != usize::MAX),
        );
        out_groups.push(group);
    }
    (out_users, out_groups)
}

/// `text.to_lowercase()`, borrowed when that changes nothing.
fn lower_case(text: &str) -> Cow<'_, str> {
    if text.is_ascii() && !text.bytes().any(|b| b.is_ascii_uppercase()) {
        return Cow::Borrowed(text);
    }
    match text.to_lowercase() {
        lower if lower == text => Cow::Borrowed(text),
        lower => Cow::Owned(lower),
    }
}

/// The first 16 bytes of `text`, zero-padded: integers in the order of the texts they begin (a
/// tie says nothing).
fn head(text: &str) -> u128 {
    let mut bytes = [0; 16];
    let n = text.len().min(16);
    bytes[..n].copy_from_slice(&text.as_bytes()[..n]);
    u128::from_be_bytes(bytes)
}

fn sorted_unique(items: impl Iterator<Item = usize>) -> Vec<usize> {
    let mut v: Vec<usize> = items.collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Preserve keeps the graph; Flatten gives each group the users of every group below it (cycles and
/// diamonds visited once), and stops at the group (`Err` with its index) where all groups'
/// memberships together would pass `max_memberships`; Ignore drops member groups.
fn apply_nesting(
    members: &mut [(Vec<usize>, Vec<usize>)],
    mode: NestedGroups,
    max_memberships: usize,
) -> Result<(), usize> {
    match mode {
        NestedGroups::Preserve => {}
        NestedGroups::Ignore => members.iter_mut().for_each(|(_, gs)| gs.clear()),
        NestedGroups::Flatten => {
            let mut total = 0usize;
            let mut flattened: Vec<Vec<usize>> = Vec::with_capacity(members.len());
            for g in 0..members.len() {
                let mut users: Vec<usize> = Vec::new();
                for reached in reachable(members, g) {
                    let direct = &members[reached].0;
                    // Counted before it is copied: the bound is on memory, not on the result.
                    total = total.saturating_add(direct.len());
                    if total > max_memberships {
                        return Err(g);
                    }
                    users.extend_from_slice(direct);
                }
                flattened.push(users);
            }
            for ((us, gs), flat) in members.iter_mut().zip(flattened) {
                *us = flat;
                gs.clear();
            }
        }
    }
    Ok(())
}

/// Every group reachable from `start` through member groups, `start` included, each once.
fn reachable(members: &[(Vec<usize>, Vec<usize>)], start: usize) -> Vec<usize> {
    let mut seen = vec![false; members.len()];
    let mut stack = vec![start];
    let mut order = Vec::new();
    seen[start] = true;
    while let Some(g) = stack.pop() {
        order.push(g);
        for &child in &members[g].1 {
            if !seen[child] {
                seen[child] = true;
                stack.push(child);
            }
        }
    }
    order
}

/// With chosen groups: those groups and, when nesting is preserved, every group below them.
fn selected_groups(
    groups: &[&RawGroup],
    members: &[(Vec<usize>, Vec<usize>)],
    scope: &Scope,
    unresolved: &mut Unresolved,
) -> Vec<bool> {
    if scope.groups.is_empty() {
        return vec![true; groups.len()];
    }
    let mut selected = vec![false; groups.len()];
    for chosen in &scope.groups {
        match groups.iter().position(|g| &g.dn == chosen) {
            Some(g) => {
                for reached in reachable(members, g) {
                    selected[reached] = true;
                }
            }
            None => unresolved.record(&chosen.to_string()),
        }
    }
    selected
}

type ContainerIndex = (Vec<Container>, HashMap<String, usize>);

fn build_containers<'a>(
    raw: impl IntoIterator<Item = &'a RawContainer>,
    base: &Dn,
) -> ContainerIndex {
    // Parents before children, so each parent index is known when its children are placed.
    let mut raw: Vec<&RawContainer> = raw
        .into_iter()
        .filter(|c| c.dn.is_within(base) && c.dn != *base)
        .collect();
    raw.sort_by(|a, b| a.dn.len().cmp(&b.dn.len()).then_with(|| a.dn.cmp(&b.dn)));
    let mut by_dn: HashMap<String, usize> = HashMap::with_capacity(raw.len());
    let mut out = Vec::with_capacity(raw.len());
    for c in raw {
        let parent = c.dn.parent().and_then(|p| by_dn.get(p.key()).copied());
        by_dn.insert(c.dn.key().to_owned(), out.len());
        out.push(Container {
            id: c.id.clone(),
            dn: c.text.clone(),
            name: c.name.clone(),
            parent,
        });
    }
    (out, by_dn)
}

#[cfg(test)]
mod tests;
