use super::*;

/// The entries as a read returns them.
fn assemble(
    users: Vec<RawUser>,
    groups: Vec<RawGroup>,
    containers: Vec<RawContainer>,
    scope: &Scope,
    stats: ReadStats,
) -> Snapshot {
    super::assemble(&users, &groups, &containers, scope, stats).expect("within limits")
}

const BASE: &str = "DC=corp,DC=example,DC=com";

fn dn(s: &str) -> Dn {
    Dn::parse(s).expect("test DN parses")
}

fn user(name: &str, ou: &str) -> RawUser {
    let dn_text = format!("CN={name},{ou},{BASE}");
    RawUser {
        dn: DnKey::parse(&dn_text).expect("test DN parses"),
        user: User {
            id: format!("id-{name}"),
            dn: dn_text,
            name: name.into(),
            ..Default::default()
        }
        .into(),
        expires_on: None,
    }
}

fn disabled(mut u: RawUser) -> RawUser {
    Arc::make_mut(&mut u.user).disabled = true;
    u
}

fn group(name: &str, members: &[&str]) -> RawGroup {
    let dn_text = format!("CN={name},OU=Groups,{BASE}");
    RawGroup {
        dn: dn(&dn_text),
        group: Group {
            id: format!("id-{name}"),
            dn: dn_text,
            name: name.into(),
            ..Default::default()
        },
        members: members
            .iter()
            .map(|m| Member::new(m.to_string(), MemberFormat::Dn))
            .collect(),
    }
}

/// A group whose member values are user names (memberUid).
fn uid_group(name: &str, members: &[&str]) -> RawGroup {
    let mut g = group(name, &[]);
    g.members = members
        .iter()
        .map(|m| Member::new(m.to_string(), MemberFormat::UserName))
        .collect();
    g
}

fn user_dn(name: &str) -> String {
    format!("cn={name},ou=staff,{}", BASE.to_lowercase())
}

fn group_dn(name: &str) -> String {
    format!("CN={name},OU=Groups,{BASE}")
}

fn scope(nested: NestedGroups) -> Scope {
    Scope {
        max_memberships: usize::MAX,
        base: dn(BASE),
        groups: vec![],
        excludes: vec![],
        ignore_disabled_users: false,
        nested_groups: nested,
        member_format: MemberFormat::Dn,
    }
}

fn names(s: &Snapshot, group: &str) -> Vec<String> {
    let g = s
        .group_by_name(group)
        .unwrap_or_else(|| panic!("group {group} is in the snapshot"));
    s.user_names(g).into_iter().map(str::to_owned).collect()
}

fn child_names(s: &Snapshot, group: &str) -> Vec<String> {
    let g = s.group_by_name(group).expect("group exists");
    g.groups.iter().map(|&i| s.groups[i].name.clone()).collect()
}

/// A > B > C > A is a cycle; D is reachable from A twice (directly and through B).
fn cyclic() -> (Vec<RawUser>, Vec<RawGroup>) {
    let users = vec![
        user("a1", "OU=Staff"),
        user("b1", "OU=Staff"),
        user("c1", "OU=Staff"),
        user("d1", "OU=Staff"),
    ];
    let groups = vec![
        group("A", &[&user_dn("a1"), &group_dn("B"), &group_dn("D")]),
        group("B", &[&user_dn("b1"), &group_dn("C"), &group_dn("D")]),
        group("C", &[&user_dn("c1"), &group_dn("A")]),
        group("D", &[&user_dn("d1")]),
    ];
    (users, groups)
}

#[test]
fn members_resolve_by_normalized_dn() {
    let (users, groups) = cyclic();
    let s = assemble(
        users,
        groups,
        vec![],
        &scope(NestedGroups::Preserve),
        ReadStats::default(),
    );
    assert_eq!(names(&s, "A"), ["a1"]);
    assert_eq!(child_names(&s, "A"), ["B", "D"]);
    assert_eq!(
        child_names(&s, "C"),
        ["A"],
        "the cycle is kept as the directory has it"
    );
    assert_eq!(s.unresolved.count, 0);
}

#[test]
fn flatten_follows_cycles_and_diamonds_once() {
    let (users, groups) = cyclic();
    let s = assemble(
        users,
        groups,
        vec![],
        &scope(NestedGroups::Flatten),
        ReadStats::default(),
    );
    assert_eq!(names(&s, "A"), ["a1", "b1", "c1", "d1"]);
    assert_eq!(
        names(&s, "C"),
        ["a1", "b1", "c1", "d1"],
        "every group in a cycle sees the whole cycle"
    );
    assert_eq!(names(&s, "D"), ["d1"]);
    assert!(s.groups.iter().all(|g| g.groups.is_empty()));
}

#[test]
fn flatten_stops_at_the_memberships_limit_and_names_the_group() {
    let (users, groups) = cyclic();
    let flattened = assemble(
        users.clone(),
        groups.clone(),
        vec![],
        &scope(NestedGroups::Flatten),
        ReadStats::default(),
    );
    let total: usize = flattened.groups.iter().map(|g| g.users.len()).sum();
    let mut sc = scope(NestedGroups::Flatten);
    sc.max_memberships = total;
    assert!(super::assemble(&users, &groups, &[], &sc, ReadStats::default()).is_ok());
    sc.max_memberships = total - 1;
    let err = super::assemble(&users, &groups, &[], &sc, ReadStats::default())
        .expect_err("one membership too many");
    assert_eq!(err.limit, total - 1);
    assert!(
        groups.iter().any(|g| g.group.dn == err.group),
        "{err:?} names a group"
    );
    // Preserve holds each membership once, whatever the limit.
    sc.nested_groups = NestedGroups::Preserve;
    sc.max_memberships = 1;
    assert!(super::assemble(&users, &groups, &[], &sc, ReadStats::default()).is_ok());
}

#[test]
fn ignore_keeps_direct_users_only() {
    let (users, groups) = cyclic();
    let s = assemble(
        users,
        groups,
        vec![],
        &scope(NestedGroups::Ignore),
        ReadStats::default(),
    );
    assert_eq!(names(&s, "A"), ["a1"]);
    assert!(s.groups.iter().all(|g| g.groups.is_empty()));
    assert_eq!(
        s.groups.len(),
        4,
        "child groups are still groups of their own"
    );
}

#[test]
fn chosen_groups_bring_their_subtree_and_only_their_users() {
    let (mut users, mut groups) = cyclic();
    users.push(user("loner", "OU=Staff"));
    groups.push(group("Other", &[&user_dn("loner")]));
    let mut sc = scope(NestedGroups::Preserve);
    sc.groups = vec![dn(&group_dn("B").to_uppercase())];
    let s = assemble(users, groups, vec![], &sc, ReadStats::default());
    let mut kept: Vec<_> = s.groups.iter().map(|g| g.name.clone()).collect();
    kept.sort();
    assert_eq!(
        kept,
        ["A", "B", "C", "D"],
        "B reaches C, C reaches A, A reaches D"
    );
    assert!(s.users.iter().all(|u| u.name != "loner"));

    let (users, groups) = cyclic();
    let mut sc = scope(NestedGroups::Flatten);
    sc.groups = vec![dn(&group_dn("D"))];
    let s = assemble(users, groups, vec![], &sc, ReadStats::default());
    assert_eq!(s.groups.len(), 1);
    assert_eq!(s.users.len(), 1);
    assert_eq!(names(&s, "D"), ["d1"]);
}

/// With chosen groups (Active Directory reads only their users), the members of the groups left
/// out name users that were never read: not unresolved. A member of a synced group that names
/// nothing is, with every nesting mode.
#[test]
fn only_members_of_synced_groups_count_as_unresolved() {
    for nested in [
        NestedGroups::Preserve,
        NestedGroups::Flatten,
        NestedGroups::Ignore,
    ] {
        let (users, mut groups) = cyclic();
        let stranger = format!("CN=stranger,OU=Elsewhere,{BASE}");
        let never_read = format!("CN=outsider,OU=Staff,{BASE}");
        groups.push(group(
            "Other",
            &[&never_read, &never_read.replace("outsider", "x2")],
        ));
        groups[3]
            .members
            .push(Member::new(stranger.clone(), MemberFormat::Dn));
        let mut sc = scope(nested);
        sc.groups = vec![dn(&group_dn("D"))];
        let s = assemble(users, groups, vec![], &sc, ReadStats::default());
        assert_eq!(s.unresolved.count, 1, "{nested:?}: D's stranger only");
        // Named by its key: member values are kept as keys alone.
        assert_eq!(
            s.unresolved.sample,
            [stranger.to_ascii_lowercase()],
            "{nested:?}"
        );
    }
    // Without chosen groups every group is synced, and every unknown member counts.
    let (users, mut groups) = cyclic();
    groups.push(group("Other", &[&format!("CN=outsider,OU=Staff,{BASE}")]));
    let s = assemble(
        users,
        groups,
        vec![],
        &scope(NestedGroups::Flatten),
        ReadStats::default(),
    );
    assert_eq!(s.unresolved.count, 1);
}

#[test]
fn a_chosen_group_that_does_not_exist_is_reported() {
    let (users, groups) = cyclic();
    let mut sc = scope(NestedGroups::Preserve);
    sc.groups = vec![dn(&group_dn("Nope"))];
    let s = assemble(users, groups, vec![], &sc, ReadStats::default());
    assert!(s.groups.is_empty());
    assert_eq!(s.unresolved.count, 1);
}

#[test]
fn excludes_remove_subtrees_and_groups_without_unresolved_noise() {
    let (mut users, groups) = cyclic();
    users.push(user("contractor", "OU=Contractors"));
    let mut groups = groups;
    groups.push(group(
        "Mixed",
        &[
            &user_dn("a1"),
            &format!("CN=contractor,OU=Contractors,{BASE}"),
        ],
    ));
    let mut sc = scope(NestedGroups::Preserve);
    sc.excludes = vec![dn(&format!("ou=contractors,{BASE}")), dn(&group_dn("D"))];
    let s = assemble(users, groups, vec![], &sc, ReadStats::default());
    assert!(s.users.iter().all(|u| u.name != "contractor"));
    assert!(s.group_by_name("D").is_none());
    assert_eq!(child_names(&s, "A"), ["B"]);
    assert_eq!(names(&s, "Mixed"), ["a1"]);
    assert_eq!(s.stats.excluded, 2);
    assert_eq!(s.unresolved.count, 0, "excluded members are not unresolved");
}

#[test]
fn disabled_users_are_marked_or_left_out() {
    let users = vec![user("on", "OU=Staff"), disabled(user("off", "OU=Staff"))];
    let groups = vec![group("G", &[&user_dn("on"), &user_dn("off")])];
    let s = assemble(
        users,
        groups,
        vec![],
        &scope(NestedGroups::Preserve),
        ReadStats::default(),
    );
    assert_eq!(names(&s, "G"), ["off", "on"]);
    assert!(
        s.users
            .iter()
            .find(|u| u.name == "off")
            .is_some_and(|u| u.disabled)
    );

    let users = vec![user("on", "OU=Staff"), disabled(user("off", "OU=Staff"))];
    let groups = vec![group("G", &[&user_dn("on"), &user_dn("off")])];
    let mut sc = scope(NestedGroups::Preserve);
    sc.ignore_disabled_users = true;
    let s = assemble(users, groups, vec![], &sc, ReadStats::default());
    assert_eq!(names(&s, "G"), ["on"]);
    assert_eq!(s.stats.disabled_skipped, 1);
    assert_eq!(s.unresolved.count, 0);
}

#[test]
fn unknown_and_malformed_members_are_counted_with_a_sample() {
    let users = vec![user("u", "OU=Staff")];
    let mut many: Vec<String> = (0..15)
        .map(|i| format!("CN=ghost{i},OU=Gone,{BASE}"))
        .collect();
    many.push("not a dn".into());
    many.push(String::new());
    many.push(user_dn("u"));
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let s = assemble(
        users,
        vec![group("G", &refs)],
        vec![],
        &scope(NestedGroups::Preserve),
        ReadStats::default(),
    );
    assert_eq!(names(&s, "G"), ["u"]);
    assert_eq!(
        s.unresolved.count, 16,
        "15 ghosts and one malformed value; the empty DN is a placeholder"
    );
    assert_eq!(
        s.unresolved.sample.len(),
        super::super::snapshot::UNRESOLVED_SAMPLE
    );
}

#[test]
fn member_uids_resolve_case_insensitively() {
    let users = vec![user("jdoe", "OU=Staff"), user("asmith", "OU=Staff")];
    let mut sc = scope(NestedGroups::Preserve);
    sc.member_format = MemberFormat::UserName;
    let s = assemble(
        users,
        vec![uid_group("P", &["JDoe", "asmith", "nobody"])],
        vec![],
        &sc,
        ReadStats::default(),
    );
    assert_eq!(names(&s, "P"), ["asmith", "jdoe"]);
    assert_eq!(s.unresolved.sample, ["nobody"]);
}

#[test]
fn containers_form_a_tree_and_hold_their_groups() {
    let containers = [
        "OU=Corp",
        "OU=Groups,OU=Corp",
        "OU=Teams,OU=Groups,OU=Corp",
        "OU=Elsewhere,DC=other",
    ]
    .iter()
    .map(|c| {
        let full = if c.contains("DC=") {
            c.to_string()
        } else {
            format!("{c},{BASE}")
        };
        RawContainer {
            dn: dn(&full),
            name: dn(&full).name().unwrap_or_default().to_owned(),
            id: format!("id-{full}"),
            text: full,
        }
    })
    .collect();
    let dn_text = format!("CN=Team,OU=Teams,OU=Groups,OU=Corp,{BASE}");
    let team = RawGroup {
        dn: dn(&dn_text),
        group: Group {
            id: "t".into(),
            dn: dn_text,
            name: "Team".into(),
            ..Default::default()
        },
        members: vec![],
    };
    let s = assemble(
        vec![],
        vec![team],
        containers,
        &scope(NestedGroups::Preserve),
        ReadStats::default(),
    );
    assert_eq!(
        s.containers.len(),
        3,
        "containers outside the base are dropped"
    );
    let teams = s.groups[0].container.expect("the group sits in an OU");
    assert_eq!(s.containers[teams].name, "Teams");
    let groups_ou = s.containers[teams].parent.expect("Teams has a parent");
    assert_eq!(s.containers[groups_ou].name, "Groups");
    let corp = s.containers[groups_ou].parent.expect("Groups has a parent");
    assert_eq!(s.containers[corp].parent, None);
}

#[test]
fn users_are_ordered_by_lower_case_name_then_dn() {
    let users = vec![
        user("bob", "OU=A"),
        user("Ǆemal", "OU=A"),
        user("Élise", "OU=A"),
        user("alice", "OU=B"),
        user("Alice", "OU=A"),
        user("dave", "OU=A"),
    ];
    let s = assemble(
        users,
        vec![],
        vec![],
        &scope(NestedGroups::Preserve),
        ReadStats::default(),
    );
    let order: Vec<&str> = s.users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(order, ["Alice", "alice", "bob", "dave", "Élise", "Ǆemal"]);
}

#[test]
fn lower_case_borrows_only_what_lowercasing_leaves_alone() {
    assert!(matches!(lower_case("user0001"), Cow::Borrowed(_)));
    assert!(matches!(lower_case("zoë"), Cow::Borrowed(_)));
    assert_eq!(lower_case("Zoë"), "zoë");
    // A title-case letter is not upper case, yet lowercasing changes it.
    assert_eq!(lower_case("ǅemal"), "ǆemal");
    assert_eq!(lower_case("ΟΔΟΣ"), "οδος");
}

#[test]
fn heads_order_names_as_the_names_do() {
    let names = [
        "user00002",
        "user00001",
        "user0000",
        "a-very-long-name-beyond-16-bytes-b",
        "a-very-long-name-beyond-16-bytes-a",
        "a-very-long-name",
        "a-very-long-nam",
        "ab\0",
        "ab",
        "",
        "zoë",
        "zo",
        "ǆemal",
    ];
    let mut by_head: Vec<&str> = names.to_vec();
    by_head.sort_by_key(|n| (head(n), *n));
    let mut by_text: Vec<&str> = names.to_vec();
    by_text.sort();
    assert_eq!(by_head, by_text);
}

proptest::proptest! {
    /// Random groups and users, with member groups forming cycles and self-loops: Flatten gives
    /// each group exactly the users of every group it reaches, each once; Preserve keeps each
    /// group's direct users and member groups; Ignore keeps direct users only.
    #[test]
    fn nesting_on_random_graphs(
        user_count in 0usize..6,
        edges in proptest::collection::vec((0usize..7, 0usize..13), 0..40),
        group_count in 1usize..7,
    ) {
        let users: Vec<RawUser> = (0..user_count).map(|u| user(&format!("u{u}"), "OU=Staff")).collect();
        // Targets below `group_count` are groups, the others users (when there are that many).
        let mut direct_users = vec![std::collections::BTreeSet::new(); group_count];
        let mut direct_groups = vec![std::collections::BTreeSet::new(); group_count];
        let mut members = vec![Vec::new(); group_count];
        for &(from, to) in &edges {
            let from = from % group_count;
            if to < group_count {
                direct_groups[from].insert(to);
                members[from].push(group_dn(&format!("g{to}")));
            } else if to - group_count < user_count {
                direct_users[from].insert(to - group_count);
                members[from].push(format!("CN=u{},OU=Staff,{BASE}", to - group_count));
            }
        }
        let groups: Vec<RawGroup> = (0..group_count)
            .map(|g| {
                let refs: Vec<&str> = members[g].iter().map(String::as_str).collect();
                group(&format!("g{g}"), &refs)
            })
            .collect();
        let reach = |start: usize| {
            let mut seen = std::collections::BTreeSet::from([start]);
            let mut stack = vec![start];
            while let Some(g) = stack.pop() {
                for &c in &direct_groups[g] {
                    if seen.insert(c) {
                        stack.push(c);
                    }
                }
            }
            seen
        };
        let user_names = |set: &std::collections::BTreeSet<usize>| -> Vec<String> {
            let mut names: Vec<String> = set.iter().map(|u| format!("u{u}")).collect();
            names.sort();
            names
        };
        for nested in [NestedGroups::Flatten, NestedGroups::Preserve, NestedGroups::Ignore] {
            let s = assemble(users.clone(), groups.clone(), vec![], &scope(nested), ReadStats::default());
            proptest::prop_assert_eq!(s.unresolved.count, 0);
            for g in 0..group_count {
                let name = format!("g{g}");
                let mut listed = names(&s, &name);
                listed.sort();
                let expected = match nested {
                    NestedGroups::Flatten => user_names(
                        &reach(g).iter().flat_map(|r| direct_users[*r].iter().copied()).collect(),
                    ),
                    _ => user_names(&direct_users[g]),
                };
                proptest::prop_assert_eq!(&listed, &expected, "{:?} {}", nested, name);
                let mut children = child_names(&s, &name);
                children.sort();
                let expected_children: Vec<String> = match nested {
                    NestedGroups::Preserve => {
                        let mut c: Vec<String> = direct_groups[g].iter().map(|c| format!("g{c}")).collect();
                        c.sort();
                        c
                    }
                    _ => Vec::new(),
                };
                proptest::prop_assert_eq!(children, expected_children, "{:?} {}", nested, name);
            }
        }
    }
}
