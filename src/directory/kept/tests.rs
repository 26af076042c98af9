use super::*;
use crate::directory::assemble::Member;
use crate::directory::dn::{Dn, DnKey};
use crate::directory::preset::MemberFormat;
use crate::directory::snapshot::{Group, User};

fn user(id: &str, dn: &str) -> RawUser {
    RawUser {
        dn: DnKey::parse(dn).expect("dn"),
        user: User {
            id: id.into(),
            dn: dn.into(),
            name: id.into(),
            ..Default::default()
        }
        .into(),
        expires_on: None,
    }
}

fn group(id: &str, dn: &str, members: &[&str]) -> RawGroup {
    RawGroup {
        dn: Dn::parse(dn).expect("dn"),
        group: Group {
            id: id.into(),
            dn: dn.into(),
            name: id.into(),
            ..Default::default()
        },
        members: members
            .iter()
            .map(|m| Member::new(m.to_string(), MemberFormat::Dn))
            .collect(),
    }
}

fn container(id: &str, dn: &str) -> RawContainer {
    RawContainer {
        dn: Dn::parse(dn).expect("dn"),
        text: dn.into(),
        name: id.into(),
        id: id.into(),
    }
}

fn kept() -> Entries {
    Entries::from_read(
        vec![
            user("u1", "CN=One,OU=A,DC=x"),
            user("u2", "CN=Two,OU=A,DC=x"),
        ],
        vec![group(
            "g1",
            "CN=G,OU=A,DC=x",
            &["CN=One,OU=A,DC=x", "CN=Two,OU=A,DC=x"],
        )],
        vec![container("a", "OU=A,DC=x")],
    )
}

fn ids<T: Keyed>(map: &ById<T>) -> Vec<&str> {
    let mut ids: Vec<&str> = map.ids().collect();
    ids.sort();
    ids
}

#[test]
fn upserts_replace_and_add_removals_drop() {
    let mut entries = kept();
    let users = Changes {
        upserts: vec![
            user("u3", "CN=Three,OU=A,DC=x"),
            user("u1", "CN=One,OU=A,DC=x"),
        ],
        removed: HashSet::from(["u2".to_owned(), "never-seen".to_owned()]),
        present: None,
    };
    entries
        .apply(users, Changes::default(), Changes::default(), true)
        .expect("applies");
    assert_eq!(ids(&entries.users), ["u1", "u3"]);
    assert_eq!(ids(&entries.groups), ["g1"]);
}

#[test]
fn a_present_list_removes_everything_it_does_not_name() {
    let mut entries = kept();
    let users = Changes {
        upserts: vec![user("u3", "CN=Three,OU=A,DC=x")],
        removed: HashSet::new(),
        present: Some(HashSet::from(["u1".to_owned()])),
    };
    entries
        .apply(users, Changes::default(), Changes::default(), false)
        .expect("applies");
    assert_eq!(ids(&entries.users), ["u1", "u3"], "u3 is new, u1 present");

    let groups = Changes {
        present: Some(HashSet::new()),
        ..Changes::default()
    };
    entries
        .apply(Changes::default(), groups, Changes::default(), false)
        .expect("applies");
    assert!(
        entries.groups.is_empty(),
        "an empty present list means all gone"
    );
}

#[test]
fn member_values_follow_renamed_entries_with_member_links() {
    for links in [true, false] {
        let mut entries = kept();
        let users = Changes {
            upserts: vec![user("u1", "CN=Uno,OU=A,DC=x")],
            ..Changes::default()
        };
        entries
            .apply(users, Changes::default(), Changes::default(), links)
            .expect("applies");
        let members: Vec<&str> = entries.groups["g1"]
            .members
            .iter()
            .map(|m| m.key().expect("a DN"))
            .collect();
        if links {
            assert_eq!(members, ["cn=uno,ou=a,dc=x", "cn=two,ou=a,dc=x"]);
        } else {
            assert_eq!(
                members,
                ["cn=one,ou=a,dc=x", "cn=two,ou=a,dc=x"],
                "member values that are names stay as the directory holds them"
            );
        }
    }
}

#[test]
fn a_moved_or_deleted_container_needs_a_full_read() {
    let moved = Changes {
        upserts: vec![container("a", "OU=A2,DC=x")],
        ..Changes::default()
    };
    let mut entries = kept();
    assert_eq!(
        entries.apply(Changes::default(), Changes::default(), moved, true),
        Err(Unusable::ContainerMoved)
    );
    let deleted = Changes {
        removed: HashSet::from(["a".to_owned()]),
        ..Changes::default()
    };
    assert_eq!(
        entries.apply(Changes::default(), Changes::default(), deleted, true),
        Err(Unusable::ContainerMoved)
    );
    let added = Changes {
        upserts: vec![container("b", "OU=B,DC=x"), container("a", "OU=A,DC=x")],
        ..Changes::default()
    };
    entries
        .apply(Changes::default(), Changes::default(), added, true)
        .expect("a new OU and an unchanged one are fine");
    assert_eq!(ids(&entries.containers), ["a", "b"]);
}

#[test]
fn kept_users_are_disabled_when_their_accounts_expire() {
    use std::time::{Duration, UNIX_EPOCH};
    let day = |d: u64| UNIX_EPOCH + Duration::from_secs(d * 86_400 + 3_600);
    let expiring = |id: &str, on: i64| RawUser {
        expires_on: Some(on),
        ..user(id, &format!("cn={id},ou=people,dc=example,dc=org"))
    };
    let mut entries = Entries::from_read(
        vec![
            expiring("soon", 20_000),
            expiring("later", 20_010),
            user("never", "cn=never,ou=people,dc=example,dc=org"),
        ],
        vec![],
        vec![],
    );
    // A record shared elsewhere (the planner's view of the cluster) stays as it was.
    let shared = Arc::clone(&entries.users["soon"].user);

    assert_eq!(entries.disable_expired(day(19_999)), 0);
    assert_eq!(entries.disable_expired(day(20_000)), 1);
    let disabled: Vec<&str> = entries
        .users
        .values()
        .filter(|u| u.user.disabled)
        .map(|u| u.user.id.as_str())
        .collect();
    assert_eq!(disabled, ["soon"]);
    assert!(!shared.disabled);
    // Once disabled, the entry is not counted again.
    assert_eq!(entries.disable_expired(day(20_000)), 0);
    assert_eq!(entries.disable_expired(day(30_000)), 1);
    assert!(
        entries
            .users
            .values()
            .all(|u| u.user.disabled || u.user.id == "never")
    );
}

/// One user of the in-place property: `ou` 0 is excluded by the scope.
fn scoped_user(i: usize, ou: usize, disabled: bool, display: &str) -> RawUser {
    let mut u = user(&format!("u{i}"), &format!("CN=U{i},OU=O{ou},DC=x"));
    let record = Arc::make_mut(&mut u.user);
    record.disabled = disabled;
    record.display_name = Some(display.to_owned());
    u
}

proptest::proptest! {
    /// Random users (some disabled, some in an excluded OU) in random groups, then random edits:
    /// when `changed_in_place` vouches for them, the snapshot from before with the new records put
    /// in equals the snapshot assembled from the changed entries; and edits of attributes alone are
    /// always vouched for.
    #[test]
    fn users_changed_in_place_patch_the_snapshot_as_assembly_would(
        users in proptest::collection::vec((0usize..3, proptest::bool::ANY), 1..12),
        memberships in proptest::collection::vec((0usize..4, 0usize..12), 0..30),
        edits in proptest::collection::vec((0usize..12, 0usize..5), 0..6),
        ignore_disabled in proptest::bool::ANY,
    ) {
        use crate::api::NestedGroups;
        use crate::directory::assemble::{Scope, assemble};
        use crate::directory::snapshot::ReadStats;
        let raw: Vec<RawUser> = users
            .iter()
            .enumerate()
            .map(|(i, &(ou, disabled))| scoped_user(i, ou, disabled, "before"))
            .collect();
        let groups: Vec<RawGroup> = (0..4)
            .map(|g| {
                let members: Vec<String> = memberships
                    .iter()
                    .filter(|(from, to)| *from == g && *to < raw.len())
                    .map(|(_, to)| raw[*to].user.dn.clone())
                    .collect();
                let refs: Vec<&str> = members.iter().map(String::as_str).collect();
                group(&format!("g{g}"), &format!("CN=G{g},OU=O1,DC=x"), &refs)
            })
            .collect();
        let scope = Scope {
            base: Dn::parse("DC=x").expect("dn"),
            groups: vec![],
            excludes: vec![Dn::parse("OU=O0,DC=x").expect("dn")],
            ignore_disabled_users: ignore_disabled,
            nested_groups: NestedGroups::Flatten,
            member_format: MemberFormat::Dn,
            max_memberships: usize::MAX,
        };
        let assembled = |entries: &Entries| {
            assemble(
                entries.users.values(),
                entries.groups.values(),
                entries.containers.values(),
                &scope,
                ReadStats::default(),
            )
            .expect("within limits")
        };
        let mut entries = Entries::from_read(raw.clone(), groups, vec![]);
        let before = assembled(&entries);
        // Edit 0-2: attributes only; 3: another login name; 4: enabled or disabled.
        let mut upserts = Vec::new();
        let mut attributes_only = true;
        for &(i, kind) in &edits {
            let Some(old) = raw.get(i) else { continue };
            if upserts.iter().any(|u: &RawUser| u.user.id == old.user.id) {
                continue;
            }
            let mut new = old.clone();
            let record = Arc::make_mut(&mut new.user);
            match kind {
                0..=2 => record.display_name = Some(format!("after {kind}")),
                3 => record.name = format!("renamed{i}"),
                _ => record.disabled = !record.disabled,
            }
            attributes_only &= kind <= 2;
            upserts.push(new);
        }
        let users = Changes { upserts, ..Changes::default() };
        let in_place = entries.changed_in_place(&users, &Changes::default(), &Changes::default());
        proptest::prop_assert!(!attributes_only || in_place.is_some());
        entries
            .apply(users, Changes::default(), Changes::default(), true)
            .expect("applies");
        let after = assembled(&entries);
        if let Some(records) = in_place {
            let mut patched = before;
            patched.replace_users(records);
            proptest::prop_assert_eq!(patched, after);
        }
    }
}
