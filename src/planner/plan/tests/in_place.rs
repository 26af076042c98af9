//! The in-place plan against the whole plan: after any run whose plan says it is exact, users
//! changed in place plan the same from the objects alone as from the whole directory.

use proptest::prelude::*;

use super::properties::{nesting, snapshots};
use super::*;
use crate::planner::in_place::{plan_in_place, touched};

fn extinction() -> impl Strategy<Value = ExtinctionPolicy> {
    prop_oneof![Just(ExtinctionPolicy::Remove), Just(ExtinctionPolicy::Skip)]
}

fn collision() -> impl Strategy<Value = CollisionPolicy> {
    prop_oneof![
        Just(CollisionPolicy::Skip),
        Just(CollisionPolicy::Overwrite)
    ]
}

/// New records for some users: another e-mail, another display name, or an equal copy.
fn in_place_changes(s: &Snapshot, changes: &[(prop::sample::Index, u8)]) -> (Snapshot, Vec<usize>) {
    let mut later = s.clone();
    let records = changes
        .iter()
        .map(|(i, what)| {
            let mut u = (**i.get(&s.users)).clone();
            match what {
                0 => u.email = Some(format!("{}@new.example", u.name)),
                1 => u.display_name = Some(format!("{} (moved desks)", u.name)),
                _ => {}
            }
            Arc::new(u)
        })
        .collect();
    let changed = later.replace_users(records);
    (later, changed)
}

/// A foreign object under one of the names a first sync of `s` gives, and one hand-made object.
fn foreign_objects(
    s: &Snapshot,
    nested: NestedGroups,
    taken: Option<prop::sample::Index>,
) -> Vec<CurrentGroup<'static>> {
    let names: Vec<String> = plan(desired(s, nested), &[], &policies())
        .create
        .into_iter()
        .map(|w| w.name)
        .collect();
    let mut foreign: Vec<String> = taken.map(|i| i.get(&names).clone()).into_iter().collect();
    foreign.push("hand-made".into());
    foreign
        .into_iter()
        .map(|name| CurrentGroup {
            spec: Cow::Owned(UserGroupSpec {
                display_name: name.clone(),
                ..Default::default()
            }),
            name,
            owned: false,
            another_task: false,
            left_behind: false,
            created: None,
            marked_extinct: false,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn users_changed_in_place_plan_the_same_from_the_objects_alone(
        s in snapshots(),
        later in snapshots(),
        nested in nesting(),
        (user_extinction, group_extinction) in (extinction(), extinction()),
        collision in collision(),
        taken in proptest::option::of(any::<prop::sample::Index>()),
        approved in any::<bool>(),
        changes in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3), 0..4),
    ) {
        let policies = Policies {
            user_extinction,
            group_extinction,
            collision,
            deletions_approved: approved,
            max_deletions: MaxDeletions::Count(1),
            ..policies()
        };
        let foreign = foreign_objects(&later, nested, taken);
        let first = apply(&foreign, &plan(desired(&s, nested), &foreign, &policies));
        let second = plan(desired(&later, nested), &first, &policies);
        prop_assume!(second.exact);
        let cluster = apply(&first, &second);
        let (changed_snapshot, changed) = in_place_changes(&later, &changes);

        let whole = plan(desired(&changed_snapshot, nested), &cluster, &policies);
        let touched = touched(&changed_snapshot, &changed);
        let current: Vec<CurrentGroup<'_>> = cluster
            .iter()
            .filter(|c| c.owned && touched.of(&c.spec).is_some())
            .cloned()
            .collect();
        let owned = cluster.iter().filter(|c| c.owned).count();
        let alone = plan_in_place(&current, &changed_snapshot, &touched, owned);

        let mut expected = whole.update.clone();
        expected.sort_by(|a, b| a.name.cmp(&b.name));
        prop_assert!(whole.create.is_empty() && whole.remove.is_empty() && whole.mark_extinct.is_empty(), "{:?}", whole);
        prop_assert!(whole.exact);
        prop_assert_eq!(&alone.update, &expected);
        prop_assert_eq!(alone.unchanged, whole.unchanged);
    }
}
