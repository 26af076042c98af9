//! Entries a read could not use are held: what stands for them is neither removed nor changed.

use super::*;

/// The snapshot with user b and group Sales gone, as a read that could not use their entries
/// sees it.
fn without_b_and_sales() -> Snapshot {
    let mut s = snapshot();
    s.groups.remove(2); // Sales
    s.users.remove(1); // b: Ops listed b (index 1); loner moves down
    s.groups[1].users.clear();
    s.groups[0].users = vec![0];
    s
}

#[test]
fn a_user_and_a_group_that_became_unreadable_stay_as_they_were() {
    let cluster = first_sync();
    let s = without_b_and_sales();
    let b = user("b");
    let sales = by_display(&cluster, "Sales");
    let source = sales.spec.source.clone().expect("synced");
    let by_id = Policies {
        held: Held::new([b.id.clone(), source.id.clone()], [], false),
        ..policies()
    };
    let p = plan(desired(&s, NestedGroups::Preserve), &cluster, &by_id);
    assert!(p.remove.is_empty(), "{:?}", p.remove);
    assert!(p.mark_extinct.is_empty());
    assert_eq!((p.users_removed, p.users_kept, p.held), (0, 0, 2));
    assert!(p.brake.is_none());
    let after = apply(&cluster, &p);
    assert_eq!(
        user_names(by_display(&after, "Ops")),
        ["b"],
        "b stays listed"
    );
    assert_eq!(
        by_display(&after, "Ops").spec.users[0],
        by_display(&cluster, "Ops").spec.users[0],
        "as it was"
    );
    assert_eq!(by_display(&after, "Sales"), sales);

    // Named by DN alone, in another case, the same.
    let by_dn = Policies {
        held: Held::new([], [b.dn.to_uppercase(), source.dn.to_lowercase()], false),
        ..policies()
    };
    let p = plan(desired(&s, NestedGroups::Preserve), &cluster, &by_dn);
    assert!(p.remove.is_empty());
    assert_eq!((p.users_removed, p.held), (0, 2));
}

#[test]
fn an_entry_that_names_nothing_holds_every_removal() {
    let cluster = first_sync();
    let s = without_b_and_sales();
    let unnamed = Policies {
        held: Held::new([], [], true),
        ..policies()
    };
    let p = plan(desired(&s, NestedGroups::Preserve), &cluster, &unnamed);
    assert!(p.remove.is_empty() && p.mark_extinct.is_empty());
    assert_eq!((p.users_removed, p.held), (0, 2));
    let after = apply(&cluster, &p);
    assert_eq!(user_names(by_display(&after, "Ops")), ["b"]);

    // Others are not held: without the unreadable entry, both go.
    let p = plan(desired(&s, NestedGroups::Preserve), &cluster, &policies());
    assert_eq!(p.remove, [by_display(&cluster, "Sales").name.clone()]);
    assert_eq!((p.users_removed, p.held), (1, 0));
}

#[test]
fn holding_one_entry_does_not_hold_another() {
    let cluster = first_sync();
    let s = without_b_and_sales();
    let only_b = Policies {
        held: Held::new([user("b").id.clone()], [], false),
        ..policies()
    };
    let p = plan(desired(&s, NestedGroups::Preserve), &cluster, &only_b);
    assert_eq!(p.remove, [by_display(&cluster, "Sales").name.clone()]);
    assert_eq!((p.users_removed, p.held), (0, 1));
}
