//! Reading the 389 Directory Server's fixture with the FreeIPA / 389-DS preset: LDAPS and StartTLS,
//! nsUniqueId ids, nsAccountLock, nesting and the cycle, Unicode names and paging smaller than the
//! data.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use ldap3::controls::{MakeCritical, PagedResults};
use ldap3::{Ldap, Scope, SearchEntry};
use usersync::api::{DirectoryPreset, DirectorySpec, NestedGroups, TlsMode};
use usersync::directory::connect::{Connection, connect};
use usersync::directory::read::{ReadOptions, read_snapshot};
use usersync::directory::snapshot::Snapshot;
use usersync_testbed::env::{self, Ds389};
use usersync_testbed::fixture::{Fixture, generate, names};

use crate::support::connector::bind_settings;
use crate::support::ldap::ldap_connect;
use crate::support::logical::{expected_logical, logical};

const PAGED_RESULTS_OID: &str = "1.2.840.113556.1.4.319";

fn fixture() -> Fixture {
    generate(Ds389::FIXTURE)
}

fn corp() -> String {
    format!("ou=Corp,{}", env::ds389().base_dn)
}

fn directory(page_size: usize) -> DirectorySpec {
    serde_json::from_value(serde_json::json!({
        "baseDN": corp(),
        "preset": DirectoryPreset::FreeIpa,
        "pageSize": page_size,
    }))
    .expect("directory spec")
}

async fn ds389(tls_mode: TlsMode) -> Connection {
    let ds = env::ds389();
    let url = match tls_mode {
        TlsMode::Ldaps => ds.ldaps_url.clone(),
        _ => ds.url.clone(),
    };
    connect(&bind_settings(
        &url,
        tls_mode,
        &ds.ca_file,
        &ds.admin_dn,
        &ds.admin_password,
        Duration::from_secs(30),
    ))
    .await
    .expect("389-DS bind")
}

/// A plain client, to see what the server itself stores.
async fn admin() -> Ldap {
    let ds = env::ds389();
    let mut ldap = ldap_connect(&ds.ldaps_url, &ds.ca_file, false).await;
    ldap.simple_bind(&ds.admin_dn, &ds.admin_password)
        .await
        .and_then(|r| r.success())
        .expect("admin bind");
    ldap
}

async fn read(conn: &mut Connection, spec: &DirectorySpec) -> Snapshot {
    read_snapshot(conn, spec, &ReadOptions::default())
        .await
        .expect("389-DS read")
}

/// nsUniqueId as 389-DS shows it: four groups of eight lower-case hex digits.
fn is_ns_unique_id(id: &str) -> bool {
    let parts: Vec<&str> = id.split('-').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| p.len() == 8 && p.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')))
}

/// DN → nsUniqueId of every entry under ou=Corp, straight from the server. nsUniqueId is
/// operational: only returned when asked for by name.
async fn stored_ids() -> BTreeMap<String, String> {
    let mut ldap = admin().await;
    let (entries, _) = ldap
        .search(
            &corp(),
            Scope::Subtree,
            "(objectClass=*)",
            vec!["nsUniqueId"],
        )
        .await
        .and_then(|r| r.success())
        .expect("nsUniqueId search");
    entries
        .into_iter()
        .map(SearchEntry::construct)
        .map(|e| {
            let id = e
                .attrs
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("nsUniqueId"))
                .and_then(|(_, values)| values.first())
                .expect("nsUniqueId returned");
            (e.dn.to_lowercase(), id.clone())
        })
        .collect()
}

/// Everything a read of the whole fixture must show, whichever transport brought it.
async fn check_snapshot_matches_the_fixture(tls_mode: TlsMode) {
    let mut conn = ds389(tls_mode).await;
    let spec = directory(100);
    let s = read(&mut conn, &spec).await;
    let f = fixture();
    assert_eq!(s.users.len(), f.users.len());
    assert_eq!(
        s.groups.len(),
        f.groups.len(),
        "groupOfNames only: the posixGroup twins are not groups of this preset"
    );
    assert_eq!(logical(&s), expected_logical(&fixture()));
    assert_eq!(s.unresolved.count, 0, "{:?}", s.unresolved.sample);

    let mut disabled: Vec<&str> = s
        .users
        .iter()
        .filter(|u| u.disabled)
        .map(|u| u.name.as_str())
        .collect();
    disabled.sort();
    let expected: Vec<&str> = f
        .users
        .iter()
        .filter(|u| u.disabled)
        .map(|u| u.login.as_str())
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(disabled, expected, "nsAccountLock: true marks them");

    // Ids are the entries' nsUniqueId, for users, groups and containers alike.
    let stored = stored_ids().await;
    let ids = s
        .users
        .iter()
        .map(|u| (&u.dn, &u.id))
        .chain(s.groups.iter().map(|g| (&g.dn, &g.id)))
        .chain(s.containers.iter().map(|c| (&c.dn, &c.id)));
    for (dn, id) in ids {
        assert!(is_ns_unique_id(id), "{dn}: {id}");
        assert_eq!(stored.get(&dn.to_lowercase()), Some(id), "{dn}");
    }
    let teams = s
        .group_by_name("Team 0001")
        .and_then(|g| g.container)
        .expect("teams sit in an OU");
    assert_eq!(s.containers[teams].name, "Teams");

    // Unicode display and group names, and names that need escaping, arrive intact.
    let user = s
        .users
        .iter()
        .find(|u| u.name == "user00002")
        .expect("user00002");
    assert!(
        !f.users[1].display_name.is_ascii(),
        "the check covers a Unicode name"
    );
    assert_eq!(
        user.display_name.as_deref(),
        Some(f.users[1].display_name.as_str())
    );
    assert_eq!(user.email.as_deref(), Some("user00002@example.com"));
    assert!(user.sid.is_none() && user.upn.is_none());
    for name in names::UNICODE
        .iter()
        .chain([&names::FILTER_INJECTION, &names::DN_SPECIALS])
    {
        assert!(
            s.group_by_name(name).is_some(),
            "{name} keeps its exact name"
        );
    }

    // A second read gives every entry the same id.
    let again = read(&mut conn, &spec).await;
    let by_name = |s: &Snapshot| -> BTreeMap<String, String> {
        s.users
            .iter()
            .map(|u| (u.name.clone(), u.id.clone()))
            .chain(
                s.groups
                    .iter()
                    .map(|g| (format!("group {}", g.name), g.id.clone())),
            )
            .chain(s.containers.iter().map(|c| (c.dn.clone(), c.id.clone())))
            .collect()
    };
    assert_eq!(by_name(&s), by_name(&again), "ids are stable between reads");
}

#[tokio::test]
async fn freeipa_preset_over_ldaps_matches_the_fixture() {
    check_snapshot_matches_the_fixture(TlsMode::Ldaps).await;
}

#[tokio::test]
async fn freeipa_preset_over_starttls_matches_the_fixture() {
    check_snapshot_matches_the_fixture(TlsMode::StartTls).await;
}

#[tokio::test]
async fn disabled_users_are_left_out_on_request() {
    let mut conn = ds389(TlsMode::Ldaps).await;
    let mut spec = directory(100);
    spec.ignore_disabled_users = true;
    let s = read(&mut conn, &spec).await;
    let f = fixture();
    let disabled = f.users.iter().filter(|u| u.disabled).count();
    assert!(s.users.iter().all(|u| !u.disabled));
    assert_eq!(s.users.len(), f.users.len() - disabled);
    assert_eq!(s.stats.disabled_skipped, disabled);
    assert_eq!(
        s.unresolved.count, 0,
        "disabled members are left out, not unresolved"
    );
    let all_staff = s.group_by_name(names::ALL_STAFF).expect("All Staff");
    let mut expected: Vec<&str> = f
        .users
        .iter()
        .filter(|u| !u.disabled)
        .map(|u| u.login.as_str())
        .collect();
    expected.sort();
    let mut members = s.user_names(all_staff);
    members.sort();
    assert_eq!(members, expected);
}

#[tokio::test]
async fn nesting_modes_on_a_cycle() {
    let mut conn = ds389(TlsMode::StartTls).await;
    let f = fixture();
    let logins = |range: std::ops::Range<usize>| -> Vec<String> {
        range.map(|i| f.users[i].login.clone()).collect()
    };
    let sorted_users = |s: &Snapshot, name: &str| -> Vec<String> {
        let mut users: Vec<String> = s
            .user_names(s.group_by_name(name).expect(name))
            .into_iter()
            .map(str::to_owned)
            .collect();
        users.sort();
        users
    };

    // Preserve: the cycle as the directory has it, each group a child of the other.
    let mut spec = directory(100);
    let preserved = read(&mut conn, &spec).await;
    let child_names = |name: &str| -> Vec<&str> {
        let g = preserved.group_by_name(name).expect(name);
        g.groups
            .iter()
            .map(|&c| preserved.groups[c].name.as_str())
            .collect()
    };
    assert_eq!(child_names(names::CYCLE_A), [names::CYCLE_B]);
    assert_eq!(child_names(names::CYCLE_B), [names::CYCLE_A]);
    assert_eq!(child_names(names::SRE), [names::ON_CALL]);

    spec.nested_groups = NestedGroups::Flatten;
    let flat = read(&mut conn, &spec).await;
    assert_eq!(
        sorted_users(&flat, names::CYCLE_A),
        logins(15..21),
        "A and B share their users through the cycle"
    );
    assert_eq!(sorted_users(&flat, names::CYCLE_B), logins(15..21));
    let engineering = sorted_users(&flat, names::ENGINEERING);
    for login in logins(0..15) {
        assert!(
            engineering.contains(&login),
            "{login} reaches Engineering through three levels"
        );
    }
    assert!(flat.groups.iter().all(|g| g.groups.is_empty()));

    spec.nested_groups = NestedGroups::Ignore;
    let ignore = read(&mut conn, &spec).await;
    assert_eq!(sorted_users(&ignore, names::CYCLE_A), logins(15..18));
    assert!(ignore.groups.iter().all(|g| g.groups.is_empty()));
}

#[tokio::test]
async fn pages_smaller_than_the_data_bring_everything() {
    const PAGE: usize = 7;
    let f = fixture();
    assert!(f.users.len() > 3 * PAGE && f.groups.len() > PAGE);

    // The server itself pages: no page is larger than asked, and it takes several.
    let mut ldap = admin().await;
    let (mut cookie, mut pages, mut seen) = (Vec::new(), 0, HashSet::new());
    loop {
        let control = PagedResults {
            size: PAGE as i32,
            cookie: cookie.clone(),
        };
        let (entries, result) = ldap
            .with_controls(control.critical())
            .search(
                &corp(),
                Scope::Subtree,
                "(objectClass=inetOrgPerson)",
                vec!["uid"],
            )
            .await
            .and_then(|r| r.success())
            .expect("paged search page");
        pages += 1;
        assert!(entries.len() <= PAGE, "a page never exceeds the page size");
        seen.extend(entries.into_iter().map(|e| SearchEntry::construct(e).dn));
        let returned = result
            .ctrls
            .iter()
            .find(|c| c.1.ctype == PAGED_RESULTS_OID)
            .expect("389-DS returns the paged control");
        cookie = returned.1.parse::<PagedResults>().cookie;
        if cookie.is_empty() {
            break;
        }
    }
    assert_eq!(seen.len(), f.users.len(), "every user exactly once");
    assert!(pages >= f.users.len().div_ceil(PAGE), "{pages} pages");

    // And the engine reads the same snapshot in small pages as in large ones.
    let mut conn = ds389(TlsMode::Ldaps).await;
    let small = read(&mut conn, &directory(PAGE)).await;
    let large = read(&mut conn, &directory(1000)).await;
    assert_eq!(logical(&small), expected_logical(&fixture()));
    assert_eq!(small.users, large.users);
    assert_eq!(small.groups, large.groups);
    assert_eq!(small.containers, large.containers);
    assert!(small.stats.requests > large.stats.requests);
}
