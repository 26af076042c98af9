//! Names already taken: a group's by a foreign object, a user's by a listed user with another id.

use super::*;

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
        another_task: false,
        left_behind: false,
        created: None,
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

#[test]
fn copies_of_an_object_are_removed_and_the_same_one_stands_in_any_order() {
    let cluster = first_sync();
    let sales = cluster
        .iter()
        .find(|g| g.spec.display_name == "Sales")
        .expect("Sales")
        .clone();
    // Copies with the task's label and owner: same spec, names after and before the original's.
    let mut copies = Vec::new();
    for name in ["zz-copy-of-sales", "aa-copy-of-sales"] {
        let mut copy = sales.clone();
        copy.name = name.into();
        copies.push(copy);
    }
    let mut forward = cluster.clone();
    forward.extend(copies.iter().cloned());
    let mut backward = copies.clone();
    backward.extend(cluster.iter().rev().cloned());
    let a = plan(
        desired(&snapshot(), NestedGroups::Preserve),
        &forward,
        &policies(),
    );
    let b = plan(
        desired(&snapshot(), NestedGroups::Preserve),
        &backward,
        &policies(),
    );
    assert_eq!(a, b, "the order of the objects does not matter");
    let expected = ["aa-copy-of-sales", "zz-copy-of-sales"];
    assert_eq!(a.duplicates, expected, "the object usersync named stands");
    assert_eq!(a.remove, expected);
    assert!(a.create.is_empty(), "{:?}", a.create);
    let after = apply(&forward, &a);
    let again = plan(
        desired(&snapshot(), NestedGroups::Preserve),
        &after,
        &policies(),
    );
    assert!(again.is_noop() && again.duplicates.is_empty(), "{again:?}");
}
