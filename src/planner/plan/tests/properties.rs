//! Properties of the planner over generated directories (nesting with cycles and self-loops
//! included): a plan applied leaves nothing to do, objects that are not the task's are never
//! removed or written under Skip, and removals stay within maxDeletions unless approved.

use proptest::prelude::*;

use super::*;

/// Up to 8 users and 6 groups; each group lists some users and some groups (itself included at
/// times), directly below the base DN or in its one container.
pub(super) fn snapshots() -> impl Strategy<Value = Snapshot> {
    (1usize..8, 1usize..6)
        .prop_flat_map(|(users, groups)| {
            let group = (
                prop::collection::vec(0..users, 0..users + 1),
                prop::collection::vec(0..groups, 0..3),
                any::<bool>(),
            );
            (Just(users), prop::collection::vec(group, groups))
        })
        .prop_map(|(users, groups)| {
            let mut s = snapshot();
            s.users = (0..users).map(|i| user(&format!("u{i}"))).collect();
            s.groups = groups
                .into_iter()
                .enumerate()
                .map(|(i, (mut members, mut children, contained))| {
                    members.sort_unstable();
                    members.dedup();
                    children.sort_unstable();
                    children.dedup();
                    group(
                        &format!("g{i}"),
                        contained.then_some(0),
                        &members,
                        &children,
                    )
                })
                .collect();
            s
        })
}

pub(super) fn nesting() -> impl Strategy<Value = NestedGroups> {
    prop_oneof![
        Just(NestedGroups::Preserve),
        Just(NestedGroups::Flatten),
        Just(NestedGroups::Ignore),
    ]
}

/// The names a plan writes to.
fn written(p: &Plan) -> Vec<&str> {
    p.create
        .iter()
        .chain(&p.update)
        .map(|w| w.name.as_str())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn a_plan_applied_leaves_nothing_to_do(s in snapshots(), later in snapshots(), nested in nesting()) {
        let first = plan(desired(&s, nested), &[], &policies());
        let cluster = apply(&[], &first);
        let again = plan(desired(&s, nested), &cluster, &policies());
        prop_assert!(again.is_noop(), "{:?}", again);
        // And after a change of the directory too.
        let approved = Policies { deletions_approved: true, ..policies() };
        let changed = apply(&cluster, &plan(desired(&later, nested), &cluster, &approved));
        let settled = plan(desired(&later, nested), &changed, &approved);
        prop_assert!(settled.is_noop(), "{:?}", settled);
    }

    #[test]
    fn objects_that_are_not_the_tasks_are_never_removed_or_written(
        s in snapshots(),
        later in snapshots(),
        taken in prop::collection::vec(any::<prop::sample::Index>(), 0..3),
    ) {
        // Foreign objects under names the task would choose, and one under a name of its own.
        let names: Vec<String> = plan(desired(&s, NestedGroups::Preserve), &[], &policies())
            .create
            .into_iter()
            .map(|w| w.name)
            .collect();
        let mut foreign: Vec<String> = taken.iter().map(|i| i.get(&names).clone()).collect();
        foreign.push("hand-made".into());
        foreign.sort();
        foreign.dedup();
        let cluster: Vec<CurrentGroup<'static>> = foreign
            .iter()
            .map(|name| CurrentGroup {
                name: name.clone(),
                owned: false,
                another_task: false,
                left_behind: false,
                created: None,
                spec: Cow::Owned(UserGroupSpec { display_name: name.clone(), ..Default::default() }),
                marked_extinct: false,
            })
            .collect();
        let approved = Policies { deletions_approved: true, ..policies() };
        let first = plan(desired(&s, NestedGroups::Preserve), &cluster, &approved);
        let synced = apply(&cluster, &first);
        let second = plan(desired(&later, NestedGroups::Preserve), &synced, &approved);
        for p in [&first, &second] {
            for name in &foreign {
                prop_assert!(!p.remove.contains(name), "{} removed: {:?}", name, p);
                prop_assert!(!written(p).contains(&name.as_str()), "{} written: {:?}", name, p);
            }
        }
    }

    #[test]
    fn removals_stay_within_max_deletions_unless_approved(
        s in snapshots(),
        later in snapshots(),
        limit in 0u64..4,
    ) {
        let cluster = apply(&[], &plan(desired(&s, NestedGroups::Preserve), &[], &policies()));
        let strict = Policies { max_deletions: MaxDeletions::Count(limit), ..policies() };
        let p = plan(desired(&later, NestedGroups::Preserve), &cluster, &strict);
        let removals = (p.remove.len() + p.users_removed) as u64;
        match &p.brake {
            Some(brake) => {
                prop_assert_eq!(removals, 0, "the brake holds every removal: {:?}", p);
                prop_assert!(brake.would_remove > limit);
            }
            None => prop_assert!(removals <= limit, "{} removals over {}: {:?}", removals, limit, p),
        }
        let approved = Policies { deletions_approved: true, ..strict };
        prop_assert!(plan(desired(&later, NestedGroups::Preserve), &cluster, &approved).brake.is_none());
    }
}
