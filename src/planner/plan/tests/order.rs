//! The order members are listed in, whatever the snapshot's order, kept users and overwritten ones
//! included.

use super::*;

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
