//! Placing groups in the tree and naming them: first sync, renames and moves, nesting.

use super::*;

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
