//! Users and groups gone from the directory: removed, kept or marked, and the deletion brake.

use super::*;

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
    let removed_groups: Vec<String> = ["Ops", "Sales"]
        .iter()
        .map(|d| by_display(&cluster, d).name.clone())
        .collect();
    assert_eq!(
        p.brake,
        Some(Brake {
            would_remove: 4,
            limit: 1,
            groups: removed_groups,
            users: vec!["b".into(), "c".into()],
        }),
        "2 groups and users b and c, held back by name"
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
        max_deletions: MaxDeletions::percent(10),
        ..policies()
    };
    assert!(
        plan(desired(&s, NestedGroups::Preserve), &cluster, &percent)
            .brake
            .is_some()
    );
    // With a floor the small task's four removals (two groups, two users) go through; a floor
    // below them still holds them.
    for (floor, braked) in [(4, false), (5, false), (3, true)] {
        let floored = Policies {
            max_deletions: MaxDeletions::percent(10).at_least(floor),
            ..policies()
        };
        let p = plan(desired(&s, NestedGroups::Preserve), &cluster, &floored);
        assert_eq!(p.brake.is_some(), braked, "floor {floor}");
    }
    // A count is used as it is: 0 holds every removal whatever the floor.
    assert_eq!(MaxDeletions::Count(0).at_least(5), MaxDeletions::Count(0));
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
        Some(MaxDeletions::percent(10))
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
            limit: 0,
            groups: Vec::new(),
            users: vec!["loner".into()],
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
