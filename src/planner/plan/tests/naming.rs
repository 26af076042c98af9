//! Names people can predict: the root under `targetGroup`, groups under their directory names,
//! suffixes only where a name is taken, chosen names, and a root shared with other tasks.

use super::*;

fn names_of(cluster: &[CurrentGroup<'_>]) -> Vec<(String, String, Option<String>)> {
    let mut out: Vec<_> = cluster
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                c.spec.display_name.clone(),
                c.spec.parent.clone(),
            )
        })
        .collect();
    out.sort();
    out
}

fn row(name: &str, display: &str, parent: Option<&str>) -> (String, String, Option<String>) {
    (name.into(), display.into(), parent.map(str::to_owned))
}

/// The objects of `cluster` as another task (or nobody) sees them: not theirs.
fn as_seen_by_others(
    cluster: &[CurrentGroup<'static>],
    another_task: bool,
) -> Vec<CurrentGroup<'static>> {
    cluster
        .iter()
        .map(|c| CurrentGroup {
            owned: false,
            another_task,
            ..c.clone()
        })
        .collect()
}

fn hand_made(name: &str) -> CurrentGroup<'static> {
    CurrentGroup {
        name: name.into(),
        owned: false,
        another_task: false,
        left_behind: false,
        created: None,
        spec: Cow::Owned(UserGroupSpec {
            display_name: "Hand-made".into(),
            ..Default::default()
        }),
        marked_extinct: false,
    }
}

fn with_root(root: &str) -> Policies {
    Policies {
        naming: Naming {
            root: root.into(),
            ..Naming::default()
        },
        ..policies()
    }
}

#[test]
fn groups_are_named_after_the_directory_and_the_root_after_target_group() {
    assert_eq!(
        names_of(&first_sync()),
        [
            row("all-users", "all-users", None),
            row("eng", "Eng", Some("groups")),
            row("groups", "Groups", Some("all-users")),
            row("ops", "Ops", Some("eng")),
            row("sales", "Sales", Some("all-users")),
        ]
    );
}

#[test]
fn a_name_taken_gets_a_suffix_and_a_later_collision_never_renames() {
    let mut s = snapshot();
    // A second "Eng" in another place: the first in the desired order keeps the plain name.
    s.groups.push(group("ENG", None, &[2], &[]));
    s.groups[3].id = "gid-Eng-2".into();
    let cluster = first_sync_of(&s);
    let second = by_display(&cluster, "ENG");
    assert_eq!(by_display(&cluster, "Eng").name, "eng");
    assert!(second.name.starts_with("eng-"), "{}", second.name);
    assert!(is_dns1123_label(&second.name));

    // Later: a third group called "Sales" appears; the existing sales stays as it is.
    let mut later = s.clone();
    later.groups.push(group("Sales", None, &[0], &[]));
    later.groups[4].id = "gid-Sales-2".into();
    let p = plan(
        desired(&later, NestedGroups::Preserve),
        &cluster,
        &policies(),
    );
    assert_eq!(p.create.len(), 1, "{p:?}");
    assert!(p.create[0].name.starts_with("sales-"));
    assert!(p.remove.is_empty() && p.update.is_empty(), "{p:?}");

    // The first Eng renamed: it keeps its name; a group later renamed to "Eng" is not moved to it.
    let mut renamed = s.clone();
    renamed.groups[0].name = "Engineering".into();
    let p = plan(
        desired(&renamed, NestedGroups::Preserve),
        &cluster,
        &policies(),
    );
    assert!(p.create.is_empty() && p.remove.is_empty(), "{p:?}");
    assert_eq!(p.update.len(), 1);
    assert_eq!(p.update[0].name, "eng");
}

#[test]
fn another_tasks_object_is_never_taken_over_even_with_overwrite() {
    let other = as_seen_by_others(&first_sync(), true);
    let overwrite = Policies {
        collision: CollisionPolicy::Overwrite,
        naming: Naming {
            root: "mine".into(),
            ..Naming::default()
        },
        ..policies()
    };
    let p = plan(
        desired(&snapshot(), NestedGroups::Preserve),
        &other,
        &overwrite,
    );
    assert!(p.update.is_empty() && p.skipped.is_empty(), "{p:?}");
    let created: Vec<&str> = p.create.iter().map(|w| w.name.as_str()).collect();
    assert!(created.contains(&"mine"));
    for name in ["eng", "groups", "ops", "sales"] {
        assert!(!created.contains(&name), "{name} is the other task's");
        assert!(
            created.iter().any(|c| c.starts_with(&format!("{name}-"))),
            "{created:?}"
        );
    }
}

#[test]
fn an_existing_root_is_never_written_and_the_task_hangs_its_own_group_below_it() {
    for another_task in [false, true] {
        let root = CurrentGroup {
            another_task,
            ..hand_made("all-users")
        };
        for collision in [CollisionPolicy::Skip, CollisionPolicy::Overwrite] {
            let policies = Policies {
                collision,
                ..policies()
            };
            let current = [root.clone()];
            let p = plan(
                desired(&snapshot(), NestedGroups::Preserve),
                &current,
                &policies,
            );
            assert_eq!(p.attached_to.as_deref(), Some("all-users"));
            assert!(p.update.is_empty() && p.skipped.is_empty(), "{p:?}");
            let cluster = apply(&current, &p);
            assert_eq!(
                names_of(&cluster),
                [
                    row("all-users", "Hand-made", None),
                    row("corp-ad", "corp-ad", Some("all-users")),
                    row("eng", "Eng", Some("groups")),
                    row("groups", "Groups", Some("corp-ad")),
                    row("ops", "Ops", Some("eng")),
                    row("sales", "Sales", Some("corp-ad")),
                ]
            );
            assert_eq!(user_names(by_display(&cluster, "corp-ad")), ["loner"]);
            let again = plan(
                desired(&snapshot(), NestedGroups::Preserve),
                &cluster,
                &policies,
            );
            assert!(again.is_noop(), "{again:?}");
        }
    }
}

#[test]
fn two_tasks_share_one_root_and_each_keeps_to_its_own_objects() {
    let first = first_sync();
    let second_task = Policies {
        task: "partner".into(),
        ..policies()
    };
    // The second task sees the first one's objects as another task's.
    let seen = as_seen_by_others(&first, true);
    let p = plan(
        desired(&snapshot(), NestedGroups::Preserve),
        &seen,
        &second_task,
    );
    assert_eq!(p.attached_to.as_deref(), Some("all-users"));
    assert!(p.update.is_empty() && p.remove.is_empty(), "{p:?}");
    let partner = p
        .create
        .iter()
        .find(|w| w.name == "partner")
        .expect("own group");
    assert_eq!(partner.spec.parent.as_deref(), Some("all-users"));
    let first_names: Vec<&str> = first.iter().map(|c| c.name.as_str()).collect();
    for w in &p.create {
        assert!(
            !first_names.contains(&w.name.as_str()),
            "{} is the first task's",
            w.name
        );
    }
    // The first task, looking again with the second's objects around, writes nothing.
    let mut both = first.clone();
    both.extend(as_seen_by_others(&apply(&[], &p), true));
    let again = plan(
        desired(&snapshot(), NestedGroups::Preserve),
        &both,
        &policies(),
    );
    assert!(again.is_noop(), "{again:?}");
}

#[test]
fn chosen_names_apply_to_new_and_existing_groups() {
    let chosen = |name: &str| Policies {
        naming: Naming {
            root: "all-users".into(),
            chosen: [(Identity::Directory("gid-Eng".into()), name.to_owned())]
                .into_iter()
                .collect(),
        },
        ..policies()
    };
    let p = plan(
        desired(&snapshot(), NestedGroups::Preserve),
        &[],
        &chosen("engineers"),
    );
    let cluster = apply(&[], &p);
    assert_eq!(by_display(&cluster, "Eng").name, "engineers");
    assert_eq!(
        by_display(&cluster, "Ops").spec.parent.as_deref(),
        Some("engineers")
    );

    // Chosen later for a group synced before: the group moves to the name, its children follow,
    // the old object goes without counting against maxDeletions.
    let braking = Policies {
        max_deletions: MaxDeletions::Count(0),
        ..chosen("platform")
    };
    let p = plan(
        desired(&snapshot(), NestedGroups::Preserve),
        &cluster,
        &braking,
    );
    assert_eq!(p.replaced, ["engineers"]);
    assert_eq!(p.remove, ["engineers"]);
    assert!(p.brake.is_none());
    let moved = apply(&cluster, &p);
    assert_eq!(by_display(&moved, "Eng").name, "platform");
    assert_eq!(
        by_display(&moved, "Ops").spec.parent.as_deref(),
        Some("platform")
    );

    // A chosen name a hand-made object holds: Skip keeps the group where it is, and says so.
    let current: Vec<_> = moved.iter().cloned().chain([hand_made("taken")]).collect();
    let p = plan(
        desired(&snapshot(), NestedGroups::Preserve),
        &current,
        &chosen("taken"),
    );
    assert!(p.is_noop(), "{p:?}");
    assert_eq!(
        p.skipped,
        [Skipped {
            name: "taken".into(),
            reason: SkipReason::NameTaken
        }]
    );
}

#[test]
fn a_new_target_group_moves_the_root_and_its_children_follow() {
    let cluster = first_sync();
    let p = plan(
        desired(&snapshot(), NestedGroups::Preserve),
        &cluster,
        &with_root("staff"),
    );
    assert_eq!(p.replaced, ["all-users"]);
    let moved = apply(&cluster, &p);
    assert!(moved.iter().all(|c| c.name != "all-users"));
    assert_eq!(
        by_display(&moved, "Sales").spec.parent.as_deref(),
        Some("staff")
    );
    let root = moved
        .iter()
        .find(|c| c.name == "staff")
        .expect("the new root");
    assert_eq!(user_names(root), ["loner"]);
}

#[test]
fn of_two_copies_the_older_stands_when_neither_holds_a_given_name() {
    let cluster = first_sync();
    let eng = by_display(&cluster, "Eng").clone();
    let time = |s: &str| Some(Time(s.parse().expect("time")));
    let original = CurrentGroup {
        name: "eng".into(),
        created: time("2026-01-01T00:00:00Z"),
        ..eng.clone()
    };
    let copy = CurrentGroup {
        name: "a-copy".into(),
        created: time("2026-06-01T00:00:00Z"),
        ..eng
    };
    let mut current: Vec<_> = cluster
        .iter()
        .filter(|c| c.name != "eng")
        .cloned()
        .collect();
    current.extend([copy, original]);
    // Renamed in the directory since: "eng" is no longer the group's plain name.
    let mut s = snapshot();
    s.groups[0].name = "Engineering".into();
    let p = plan(desired(&s, NestedGroups::Preserve), &current, &policies());
    assert_eq!(p.duplicates, ["a-copy"]);
    assert!(p.update.iter().any(|w| w.name == "eng"));
}

#[test]
fn overwrite_takes_back_what_a_namesake_left_behind_root_included() {
    let left: Vec<_> = first_sync()
        .into_iter()
        .map(|c| CurrentGroup {
            owned: false,
            left_behind: true,
            ..c
        })
        .collect();
    let overwrite = Policies {
        collision: CollisionPolicy::Overwrite,
        ..policies()
    };
    let p = plan(
        desired(&snapshot(), NestedGroups::Preserve),
        &left,
        &overwrite,
    );
    assert_eq!(p.attached_to, None);
    assert!(p.create.is_empty(), "{p:?}");
    assert_eq!(p.update.len(), left.len());
    assert!(p.update.iter().all(|w| w.take_over));
    // Skip leaves the root as it is, and hangs below it.
    let p = plan(
        desired(&snapshot(), NestedGroups::Preserve),
        &left,
        &policies(),
    );
    assert_eq!(p.attached_to.as_deref(), Some("all-users"));
}
