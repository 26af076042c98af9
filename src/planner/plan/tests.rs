use std::sync::Arc;

use super::*;
use crate::api::NestedGroups;
use crate::directory::snapshot::{Container, Group, Snapshot, User};
use crate::planner::desired::desired_groups;
use crate::planner::names::is_dns1123_label;

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
        collision: CollisionPolicy::Skip,
        user_extinction: ExtinctionPolicy::Remove,
        group_extinction: ExtinctionPolicy::Remove,
        max_deletions: MaxDeletions::Percent(100),
        deletions_approved: false,
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

#[test]
fn first_sync_builds_the_tree_below_the_target_group() {
    let p = plan(
        desired(&snapshot(), NestedGroups::Preserve),
        &[],
        &policies(),
    );
    assert_eq!(p.create.len(), 5, "target, OU Groups, Eng, Ops, Sales");
    assert!(p.update.is_empty() && p.remove.is_empty() && p.brake.is_none());
    let cluster = apply(&[], &p);
    assert!(cluster.iter().all(|g| is_dns1123_label(&g.name)));
    let target = by_display(&cluster, "all-users");
    assert!(target.spec.source.is_none() && target.spec.parent.is_none());
    assert_eq!(
        user_names(target),
        ["loner"],
        "users in no group are listed in the target group"
    );
    let ou = by_display(&cluster, "Groups");
    assert_eq!(ou.spec.parent.as_ref(), Some(&target.name));
    let eng = by_display(&cluster, "Eng");
    assert_eq!(
        eng.spec.parent.as_ref(),
        Some(&ou.name),
        "placed by containment"
    );
    assert_eq!(
        by_display(&cluster, "Ops").spec.parent.as_ref(),
        Some(&eng.name),
        "placed below its parent group"
    );
    assert_eq!(
        by_display(&cluster, "Sales").spec.parent.as_ref(),
        Some(&target.name)
    );
    assert_eq!(user_names(eng), ["a"]);
}

#[test]
fn an_unchanged_directory_plans_nothing() {
    let cluster = first_sync();
    let p = plan(
        desired(&snapshot(), NestedGroups::Preserve),
        &cluster,
        &policies(),
    );
    assert!(p.is_noop(), "{p:?}");
    assert_eq!(p.unchanged, cluster.len());
}

#[test]
fn a_renamed_or_moved_group_updates_the_same_object() {
    let cluster = first_sync();
    let eng_name = by_display(&cluster, "Eng").name.clone();
    let mut s = snapshot();
    s.groups[0].name = "Engineering".into();
    s.groups[0].dn = "CN=Engineering,DC=x".into();
    s.groups[0].container = None;
    let p = plan(desired(&s, NestedGroups::Preserve), &cluster, &policies());
    assert!(p.create.is_empty(), "{p:?}");
    // The OU held only Eng (Ops hangs below Eng): left empty, its group goes.
    assert_eq!(p.remove, [by_display(&cluster, "Groups").name.clone()]);
    let update = p
        .update
        .iter()
        .find(|w| w.name == eng_name)
        .expect("Eng is updated in place");
    assert_eq!(update.spec.display_name, "Engineering");
    assert_eq!(
        update.spec.parent.as_ref(),
        Some(&by_display(&cluster, "all-users").name)
    );
}

#[test]
fn vanished_groups_are_removed_or_marked() {
    let cluster = first_sync();
    let mut s = snapshot();
    s.groups.remove(2); // Sales
    let p = plan(desired(&s, NestedGroups::Preserve), &cluster, &policies());
    assert_eq!(p.remove, [by_display(&cluster, "Sales").name.clone()]);

    let keep = Policies {
        group_extinction: ExtinctionPolicy::Skip,
        ..policies()
    };
    let p = plan(desired(&s, NestedGroups::Preserve), &cluster, &keep);
    assert!(p.remove.is_empty());
    assert_eq!(p.mark_extinct, [by_display(&cluster, "Sales").name.clone()]);
    let marked = apply(&cluster, &p);
    let again = plan(desired(&s, NestedGroups::Preserve), &marked, &keep);
    assert!(again.is_noop(), "a marked group is marked once");
    let back = plan(desired(&snapshot(), NestedGroups::Preserve), &marked, &keep);
    let sales = by_display(&cluster, "Sales").name.clone();
    assert!(
        back.update.iter().any(|w| w.name == sales),
        "a group that comes back is rewritten without its mark"
    );
}

#[test]
fn the_brake_stops_every_removal_until_approved() {
    let cluster = first_sync();
    let mut s = snapshot();
    s.groups.truncate(1); // Ops and Sales vanish, and so do their users b and c
    s.groups[0].groups.clear();
    s.users = vec![user("a"), user("loner")];
    s.groups[0].users = vec![0];
    let strict = Policies {
        max_deletions: MaxDeletions::Count(1),
        ..policies()
    };
    let p = plan(desired(&s, NestedGroups::Preserve), &cluster, &strict);
    assert_eq!(
        p.brake,
        Some(Brake {
            would_remove: 4,
            limit: 1
        }),
        "2 groups and users b and c"
    );
    assert!(p.remove.is_empty());
    assert_eq!(p.users_removed, 0);
    assert_eq!(p.users_kept, 2);

    let approved = Policies {
        deletions_approved: true,
        ..strict
    };
    let p = plan(desired(&s, NestedGroups::Preserve), &cluster, &approved);
    assert_eq!(p.brake, None);
    assert_eq!(p.remove.len(), 2);
    assert_eq!(p.users_removed, 2);

    // 5 groups + 4 users are managed; 10% of 9 rounds down to 0.
    let percent = Policies {
        max_deletions: MaxDeletions::Percent(10),
        ..policies()
    };
    assert!(
        plan(desired(&s, NestedGroups::Preserve), &cluster, &percent)
            .brake
            .is_some()
    );
}

#[test]
fn vanished_users_stay_listed_with_skip() {
    let cluster = first_sync();
    let mut s = snapshot();
    s.users.truncate(3); // loner vanishes
    let drop = plan(desired(&s, NestedGroups::Preserve), &cluster, &policies());
    assert_eq!(drop.users_removed, 1);
    let target = drop
        .update
        .iter()
        .find(|w| w.spec.source.is_none())
        .expect("target loses loner");
    assert!(target.spec.users.is_empty());

    let keep = keeping_vanished_users();
    let p = plan(desired(&s, NestedGroups::Preserve), &cluster, &keep);
    assert!(p.is_noop(), "loner stays where it was: {p:?}");
    assert_eq!(p.users_kept, 1);
}

#[test]
fn a_foreign_object_with_the_new_name_is_skipped_or_taken_over() {
    let planned = plan(
        desired(&snapshot(), NestedGroups::Preserve),
        &[],
        &policies(),
    );
    let eng = planned
        .create
        .iter()
        .find(|w| w.spec.display_name == "Eng")
        .expect("Eng")
        .name
        .clone();
    let foreign = CurrentGroup {
        name: eng.clone(),
        owned: false,
        spec: Cow::Owned(UserGroupSpec {
            display_name: "Hand-made".into(),
            ..Default::default()
        }),
        marked_extinct: false,
    };
    let p = plan(
        desired(&snapshot(), NestedGroups::Preserve),
        std::slice::from_ref(&foreign),
        &policies(),
    );
    assert_eq!(
        p.skipped,
        [Skipped {
            name: eng.clone(),
            reason: SkipReason::NameTaken
        }]
    );
    assert!(
        p.create.iter().chain(&p.update).all(|w| w.name != eng),
        "the foreign object is left alone"
    );
    let ops = p
        .create
        .iter()
        .find(|w| w.spec.display_name == "Ops")
        .expect("Ops is still created");
    assert_eq!(
        ops.spec.parent.as_ref(),
        Some(&eng),
        "children hang below the existing object"
    );

    let overwrite = Policies {
        collision: CollisionPolicy::Overwrite,
        ..policies()
    };
    let p = plan(
        desired(&snapshot(), NestedGroups::Preserve),
        &[foreign],
        &overwrite,
    );
    let taken = p.update.iter().find(|w| w.name == eng).expect("taken over");
    assert!(taken.take_over);
    assert_eq!(taken.spec.display_name, "Eng");
}

#[test]
fn a_user_with_the_same_name_but_another_id() {
    let cluster = first_sync();
    let mut s = snapshot();
    Arc::make_mut(&mut s.users[0]).id = "uid-a-recreated".into();
    let eng = by_display(&cluster, "Eng").name.clone();
    // The id of user a in Eng as the plan writes it; `None` when Eng is not written.
    let a_in_eng = |p: &Plan| {
        let eng = p.update.iter().find(|w| w.name == eng)?;
        eng.spec
            .users
            .iter()
            .find(|u| u.name == "a")
            .map(|u| u.id.clone())
    };

    // The listed user is kept (Skip for vanished users): its name is taken, Skip keeps it listed.
    let keep = keeping_vanished_users();
    let p = plan(desired(&s, NestedGroups::Preserve), &cluster, &keep);
    assert!(p.skipped.contains(&Skipped {
        name: eng.clone(),
        reason: SkipReason::UserIdConflict { user: "a".into() }
    }));
    assert_eq!(a_in_eng(&p), None, "Skip keeps the listed user");
    assert_eq!((p.users_kept, p.users_removed), (1, 0));

    // The listed user goes (Remove): the name is free, and the new user takes its place at once.
    let p = plan(desired(&s, NestedGroups::Preserve), &cluster, &policies());
    assert!(p.skipped.is_empty(), "{:?}", p.skipped);
    assert_eq!(a_in_eng(&p).as_deref(), Some("uid-a-recreated"));
    assert_eq!((p.users_kept, p.users_removed), (0, 1));

    // The brake holds the removal: the listed user stays, and so does its name.
    let braked = Policies {
        max_deletions: MaxDeletions::Count(0),
        ..policies()
    };
    let p = plan(desired(&s, NestedGroups::Preserve), &cluster, &braked);
    assert!(p.brake.is_some());
    assert_eq!(a_in_eng(&p), None);
    assert_eq!(p.skipped.len(), 1);

    let overwrite = Policies {
        collision: CollisionPolicy::Overwrite,
        ..policies()
    };
    let p = plan(desired(&s, NestedGroups::Preserve), &cluster, &overwrite);
    assert_eq!(a_in_eng(&p).as_deref(), Some("uid-a-recreated"));
}

#[test]
fn nesting_cycles_become_a_tree() {
    let mut s = snapshot();
    // Eng > Ops > Eng: a cycle no root reaches.
    s.groups[1].groups = vec![0];
    let p = plan(desired(&s, NestedGroups::Preserve), &[], &policies());
    let cluster = apply(&[], &p);
    let parent_of = |name: &str| by_display(&cluster, name).spec.parent.clone();
    let eng = by_display(&cluster, "Eng").name.clone();
    let ops = by_display(&cluster, "Ops").name.clone();
    assert_eq!(parent_of("Ops"), Some(eng.clone()));
    assert_ne!(
        parent_of("Eng"),
        Some(ops),
        "the cycle is broken at its first group"
    );
    // Walking up from every group reaches the target without a loop.
    for g in &cluster {
        let mut seen = HashSet::new();
        let mut at = g.clone();
        while let Some(parent) = at.spec.parent.clone() {
            assert!(seen.insert(parent.clone()), "loop through {parent}");
            at = cluster
                .iter()
                .find(|c| c.name == parent)
                .expect("parent exists")
                .clone();
        }
        assert!(
            at.spec.source.is_none(),
            "every chain ends at the target group"
        );
    }
}

#[test]
fn flatten_places_groups_by_containment_only() {
    let mut s = snapshot();
    s.groups[0].users = vec![0, 1];
    s.groups[0].groups.clear();
    let p = plan(desired(&s, NestedGroups::Flatten), &[], &policies());
    let cluster = apply(&[], &p);
    let ou = by_display(&cluster, "Groups").name.clone();
    assert_eq!(by_display(&cluster, "Ops").spec.parent.as_ref(), Some(&ou));
    assert_eq!(user_names(by_display(&cluster, "Eng")), ["a", "b"]);
}

#[test]
fn max_deletions_parses_counts_and_percentages() {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    assert_eq!(
        MaxDeletions::parse(&IntOrString::Int(5)),
        Some(MaxDeletions::Count(5))
    );
    assert_eq!(
        MaxDeletions::parse(&IntOrString::String("7".into())),
        Some(MaxDeletions::Count(7))
    );
    assert_eq!(
        MaxDeletions::parse(&IntOrString::String("10%".into())),
        Some(MaxDeletions::Percent(10))
    );
    assert_eq!(
        MaxDeletions::parse(&IntOrString::String("101%".into())),
        None
    );
    assert_eq!(MaxDeletions::parse(&IntOrString::Int(-1)), None);
}

#[test]
fn shared_records_are_matched_by_address_and_vanished_ones_by_id() {
    let s = snapshot();
    let cluster = first_sync_of(&s);
    // The next run's snapshot shares the records the cluster lists (as the user pool arranges).
    let same = plan(desired(&s, NestedGroups::Preserve), &cluster, &policies());
    assert!(same.is_noop(), "{same:?}");
    assert_eq!((same.users_removed, same.users_kept), (0, 0));

    let mut fewer = s.clone();
    fewer.users.truncate(3); // loner vanishes; a, b and c are the same records
    let p = plan(
        desired(&fewer, NestedGroups::Preserve),
        &cluster,
        &policies(),
    );
    assert_eq!(p.users_removed, 1);
    let none = Policies {
        max_deletions: MaxDeletions::Count(0),
        ..policies()
    };
    let braked = plan(desired(&fewer, NestedGroups::Preserve), &cluster, &none);
    assert_eq!(
        braked.brake,
        Some(Brake {
            would_remove: 1,
            limit: 0
        })
    );

    // An equal record that is not shared is the same user, not a vanished one.
    let mut copies = s.clone();
    copies.users = s.users.iter().map(|u| Arc::new((**u).clone())).collect();
    let p = plan(
        desired(&copies, NestedGroups::Preserve),
        &cluster,
        &policies(),
    );
    assert!(p.is_noop(), "{p:?}");
    assert_eq!(p.users_removed, 0);
}

#[test]
fn members_are_listed_by_name_then_id_whatever_order_the_snapshot_has() {
    let mut s = snapshot();
    // Neither the snapshot's order nor a group's member indices follow the list order.
    s.users = vec![
        user("b"),
        user("A"),
        user_a("uid-a-2"),
        user_a("uid-a-1"),
        user("ab"),
    ];
    s.groups = vec![group("Eng", None, &[0, 1, 2, 3, 4], &[])];
    s.containers.clear();
    let in_order = [
        ("A", "uid-A"),
        ("a", "uid-a-1"),
        ("a", "uid-a-2"),
        ("ab", "uid-ab"),
        ("b", "uid-b"),
    ];
    let desired = desired(&s, NestedGroups::Preserve);
    let eng = desired
        .iter()
        .find(|d| d.display_name == "Eng")
        .expect("Eng");
    assert_eq!(listed(&eng.users), in_order);
    let p = plan(desired, &[], &policies());
    let eng = p.create.iter().find(|w| w.spec.display_name == "Eng");
    assert_eq!(listed(&eng.expect("Eng").spec.users), in_order);
}

#[test]
fn kept_and_overwritten_members_take_their_place_in_the_list() {
    let mut s = snapshot();
    s.users = vec![user("b"), user("A"), user("ab"), user("a")];
    s.groups = vec![group("Eng", None, &[0, 1, 2, 3], &[])];
    s.containers.clear();
    let cluster = first_sync_of(&s);

    // A user that vanished but stays listed (Skip) keeps its place.
    s.users.remove(2);
    s.groups[0].users = vec![0, 1, 2];
    let keep = keeping_vanished_users();
    let p = plan(desired(&s, NestedGroups::Preserve), &cluster, &keep);
    assert!(p.is_noop(), "ab stays where it was: {p:?}");
    assert_eq!(p.users_kept, 1);

    // A user recreated under the same name (ab gone for good): Overwrite lists the new id in the
    // same place.
    Arc::make_mut(&mut s.users[1]).id = "uid-A-recreated".into();
    let overwrite = Policies {
        collision: CollisionPolicy::Overwrite,
        ..policies()
    };
    let p = plan(desired(&s, NestedGroups::Preserve), &cluster, &overwrite);
    let eng = p.update.iter().find(|w| w.spec.display_name == "Eng");
    assert_eq!(
        listed(&eng.expect("Eng takes the new id").spec.users),
        [("A", "uid-A-recreated"), ("a", "uid-a"), ("b", "uid-b"),]
    );
}

#[test]
fn users_sharing_a_name_are_no_conflict_and_nobody_is_listed_twice() {
    let with_users = |users: Vec<Arc<User>>| {
        let mut s = snapshot();
        s.groups = vec![group(
            "Eng",
            None,
            &(0..users.len()).collect::<Vec<_>>(),
            &[],
        )];
        s.users = users;
        s.containers.clear();
        s
    };
    let eng_of = |cluster: &[CurrentGroup<'static>]| by_display(cluster, "Eng").name.clone();
    let keep = keeping_vanished_users();

    // Two directory users named alike, both listed: an unchanged directory plans nothing.
    let both = with_users(vec![user_a("uid-a-1"), user_a("uid-a-2")]);
    let cluster = first_sync_of(&both);
    let p = plan(
        desired(&both, NestedGroups::Preserve),
        &cluster,
        &policies(),
    );
    assert!(p.is_noop() && p.skipped.is_empty(), "{p:?}");

    // A second user takes a listed name: Skip keeps the listed entry, once.
    let one = with_users(vec![user_a("uid-a-1")]);
    let cluster = first_sync_of(&one);
    let p = plan(
        desired(&both, NestedGroups::Preserve),
        &cluster,
        &policies(),
    );
    assert!(p.is_noop(), "{p:?}");
    assert_eq!(
        p.skipped,
        [Skipped {
            name: eng_of(&cluster),
            reason: SkipReason::UserIdConflict { user: "a".into() }
        }]
    );

    // The listed user is recreated under its name and the old one is kept as vanished (Skip
    // twice): it stands in for the new one and is not listed again.
    let recreated = with_users(vec![user_a("uid-a-9")]);
    let p = plan(desired(&recreated, NestedGroups::Preserve), &cluster, &keep);
    assert!(p.is_noop(), "{p:?}");
    assert_eq!(p.skipped.len(), 1);
}

fn listed(users: &[Arc<GroupUser>]) -> Vec<(&str, &str)> {
    users
        .iter()
        .map(|u| (u.name.as_str(), u.id.as_str()))
        .collect()
}
