//! Reading the standard fixture from the real Samba AD DC and OpenLDAP into snapshots: every preset,
//! paging smaller than the data, forced member ranges, nesting modes, scope and the same logical
//! result from both servers.

use std::time::Duration;

use usersync::api::{DirectoryPreset, DirectorySpec, NestedGroups, TlsMode};
use usersync::directory::connect::{Connection, ServerSettings, connect};
use usersync::directory::read::{ReadOptions, read_snapshot};
use usersync::directory::snapshot::Snapshot;
use usersync_testbed::env;
use usersync_testbed::fixture::{FixtureSpec, Member, generate, names};

use crate::support::connector::bind_settings;
use crate::support::logical::{Logical, expected_logical, logical};

fn directory(preset: DirectoryPreset, base_dn: &str) -> DirectorySpec {
    serde_json::from_value(
        serde_json::json!({"baseDN": base_dn, "preset": preset, "pageSize": 100}),
    )
    .expect("directory spec")
}

async fn samba() -> Connection {
    let samba = env::samba();
    connect(&bind_settings(
        &samba.ldaps_url,
        TlsMode::Ldaps,
        &samba.ca_file,
        &format!("{}\\Administrator", samba.domain),
        &samba.admin_password,
        Duration::from_secs(30),
    ))
    .await
    .expect("Samba bind")
}

async fn slapd() -> Connection {
    let slapd = env::slapd();
    connect(&bind_settings(
        &slapd.url,
        TlsMode::StartTls,
        &slapd.ca_file,
        &slapd.admin_dn,
        &slapd.admin_password,
        Duration::from_secs(30),
    ))
    .await
    .expect("slapd bind")
}

fn ad_corp() -> String {
    format!("OU=Corp,{}", env::samba().base_dn)
}

fn ldap_corp() -> String {
    format!("ou=Corp,{}", env::slapd().base_dn)
}

#[tokio::test]
async fn active_directory_snapshot_matches_the_fixture() {
    let mut conn = samba().await;
    let spec = directory(DirectoryPreset::ActiveDirectory, &ad_corp());
    let s = read_snapshot(&mut conn, &spec, &ReadOptions::default())
        .await
        .expect("read");
    let fixture = generate(FixtureSpec::STANDARD);
    assert_eq!(s.users.len(), fixture.users.len());
    assert_eq!(
        s.users.iter().filter(|u| u.disabled).count(),
        fixture.users.iter().filter(|u| u.disabled).count()
    );
    assert_eq!(
        logical(&s),
        expected_logical(&generate(FixtureSpec::STANDARD))
    );
    assert_eq!(s.unresolved.count, 0, "{:?}", s.unresolved.sample);
    assert!(
        s.stats.requests > s.users.len() / 100,
        "users came in pages of 100"
    );

    let user = s
        .users
        .iter()
        .find(|u| u.name == "user00002")
        .expect("user00002");
    let guid = regex_like_guid(&user.id);
    assert!(guid, "objectGUID is a GUID string: {}", user.id);
    assert!(
        user.sid
            .as_deref()
            .is_some_and(|sid| sid.starts_with("S-1-5-21-")),
        "{:?}",
        user.sid
    );
    assert_eq!(user.upn.as_deref(), Some("user00002@corp.example.com"));
    assert_eq!(
        user.display_name.as_deref(),
        Some(fixture.users[1].display_name.as_str())
    );
    assert!(
        !fixture.users[1].display_name.is_ascii(),
        "the check covers a Unicode name"
    );
    for name in names::UNICODE
        .iter()
        .chain([&names::FILTER_INJECTION, &names::DN_SPECIALS])
    {
        assert!(
            s.group_by_name(name).is_some(),
            "{name} keeps its exact name"
        );
    }
    let teams = s
        .group_by_name("Team 0001")
        .and_then(|g| g.container)
        .expect("teams sit in an OU");
    assert_eq!(s.containers[teams].name, "Teams");
}

fn regex_like_guid(id: &str) -> bool {
    let parts: Vec<&str> = id.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && id
            .chars()
            .all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

#[tokio::test]
async fn forced_small_member_ranges_still_bring_every_member() {
    let mut conn = samba().await;
    let spec = directory(DirectoryPreset::ActiveDirectory, &ad_corp());
    let options = ReadOptions {
        member_range: Some(250),
        ..Default::default()
    };
    let s = read_snapshot(&mut conn, &spec, &options)
        .await
        .expect("read with ranges");
    let all_staff = s.group_by_name(names::ALL_STAFF).expect("All Staff");
    assert!(all_staff.users.len() > 3000);
    assert_eq!(
        logical(&s),
        expected_logical(&generate(FixtureSpec::STANDARD)),
        "ranged reads give the same snapshot"
    );
    let plain = read_snapshot(&mut conn, &spec, &ReadOptions::default())
        .await
        .expect("plain read");
    assert!(
        s.stats.requests >= plain.stats.requests + 3000 / 250,
        "the big group took range continuations"
    );
}

#[tokio::test]
async fn openldap_and_rfc2307_give_the_same_logical_directory() {
    let mut conn = slapd().await;
    let spec = directory(DirectoryPreset::OpenLdap, &ldap_corp());
    let s = read_snapshot(&mut conn, &spec, &ReadOptions::default())
        .await
        .expect("OpenLDAP read");
    assert_eq!(
        logical(&s),
        expected_logical(&generate(FixtureSpec::STANDARD))
    );
    assert_eq!(s.unresolved.count, 0, "{:?}", s.unresolved.sample);
    let fixture = generate(FixtureSpec::STANDARD);
    assert_eq!(
        s.users.iter().filter(|u| u.disabled).count(),
        fixture.users.iter().filter(|u| u.disabled).count()
    );
    assert!(
        s.users.iter().all(|u| u.id.len() == 36 && u.sid.is_none()),
        "entryUUID ids"
    );

    let rfc = read_snapshot(
        &mut conn,
        &directory(DirectoryPreset::Rfc2307, &ldap_corp()),
        &ReadOptions::default(),
    )
    .await
    .expect("RFC2307 read");
    // posixGroup cannot nest: each group holds its direct users only.
    let direct: Logical = expected_logical(&generate(FixtureSpec::STANDARD))
        .into_iter()
        .map(|(k, (users, _))| (k, (users, vec![])))
        .collect();
    assert_eq!(logical(&rfc), direct);
}

#[tokio::test]
async fn both_servers_agree_user_by_user() {
    let mut ad = samba().await;
    let mut ol = slapd().await;
    let (ad_spec, ol_spec) = (
        directory(DirectoryPreset::ActiveDirectory, &ad_corp()),
        directory(DirectoryPreset::OpenLdap, &ldap_corp()),
    );
    let options = ReadOptions::default();
    let (a, o) = tokio::join!(
        read_snapshot(&mut ad, &ad_spec, &options),
        read_snapshot(&mut ol, &ol_spec, &options)
    );
    let (a, o) = (a.expect("AD read"), o.expect("OpenLDAP read"));
    let strip = |s: &Snapshot| -> Vec<_> {
        s.users
            .iter()
            .map(|u| {
                (
                    u.name.clone(),
                    u.display_name.clone(),
                    u.email.clone(),
                    u.phone.clone(),
                    u.description.clone(),
                    u.disabled,
                )
            })
            .collect()
    };
    assert_eq!(strip(&a), strip(&o));
    assert_eq!(logical(&a), logical(&o));
}

#[tokio::test]
async fn nesting_modes_on_a_cycle() {
    let mut conn = samba().await;
    let mut spec = directory(DirectoryPreset::ActiveDirectory, &ad_corp());
    spec.nested_groups = NestedGroups::Flatten;
    let flat = read_snapshot(&mut conn, &spec, &ReadOptions::default())
        .await
        .expect("flatten");
    let fixture = generate(FixtureSpec::STANDARD);
    let logins = |range: std::ops::Range<usize>| -> Vec<String> {
        range.map(|i| fixture.users[i].login.clone()).collect()
    };
    let mut cycle: Vec<String> = flat
        .user_names(flat.group_by_name(names::CYCLE_A).expect("A"))
        .into_iter()
        .map(str::to_owned)
        .collect();
    cycle.sort();
    assert_eq!(
        cycle,
        logins(15..21),
        "A and B share their users through the cycle"
    );
    let engineering = flat.group_by_name(names::ENGINEERING).expect("Engineering");
    let eng: Vec<&str> = flat.user_names(engineering);
    for login in logins(0..15) {
        assert!(
            eng.contains(&login.as_str()),
            "{login} reaches Engineering through three levels"
        );
    }
    assert!(flat.groups.iter().all(|g| g.groups.is_empty()));

    spec.nested_groups = NestedGroups::Ignore;
    let ignore = read_snapshot(&mut conn, &spec, &ReadOptions::default())
        .await
        .expect("ignore");
    let mut direct: Vec<String> = ignore
        .user_names(ignore.group_by_name(names::CYCLE_A).expect("A"))
        .into_iter()
        .map(str::to_owned)
        .collect();
    direct.sort();
    assert_eq!(direct, logins(15..18));
}

#[tokio::test]
async fn chosen_groups_excludes_and_disabled_users() {
    let mut conn = slapd().await;
    let base = ldap_corp();
    let mut spec = directory(DirectoryPreset::OpenLdap, &base);
    spec.groups = vec![format!("CN={},OU=Groups,{base}", names::ENGINEERING)];
    let chosen = read_snapshot(&mut conn, &spec, &ReadOptions::default())
        .await
        .expect("chosen");
    let mut kept: Vec<&str> = chosen.groups.iter().map(|g| g.name.as_str()).collect();
    kept.sort();
    assert_eq!(
        kept,
        [
            names::ENGINEERING,
            names::ON_CALL,
            names::PLATFORM,
            names::SRE,
            "Team 0002"
        ]
    );

    // The group whose name is a filter injection is chosen by DN and brings exactly itself.
    spec.groups = vec![format!(
        "cn={},ou=Groups,{base}",
        usersync::directory::dn::escape_value(names::FILTER_INJECTION)
    )];
    let tricky = read_snapshot(&mut conn, &spec, &ReadOptions::default())
        .await
        .expect("tricky");
    assert_eq!(tricky.groups.len(), 1);
    assert_eq!(tricky.users.len(), 1);

    spec.groups = vec![];
    spec.excludes = vec![
        format!("ou=Nested,ou=Groups,{base}"),
        format!("ou=Platform,ou=Engineering,ou=Staff,{base}"),
    ];
    spec.ignore_disabled_users = true;
    let scoped = read_snapshot(&mut conn, &spec, &ReadOptions::default())
        .await
        .expect("scoped");
    assert!(scoped.group_by_name(names::PLATFORM).is_none());
    assert!(
        scoped
            .users
            .iter()
            .all(|u| !u.disabled && !u.dn.contains("ou=Platform"))
    );
    assert_eq!(
        scoped.unresolved.count, 0,
        "excluded and disabled members are not unresolved"
    );
    assert!(scoped.stats.excluded > 0 && scoped.stats.disabled_skipped > 0);
}

#[tokio::test]
async fn bad_base_dn_and_bad_filter_are_clear_errors() {
    let mut conn = samba().await;
    let spec = directory(
        DirectoryPreset::ActiveDirectory,
        &format!("OU=Nowhere,{}", env::samba().base_dn),
    );
    let err = read_snapshot(&mut conn, &spec, &ReadOptions::default())
        .await
        .expect_err("missing base");
    assert_eq!(err.reason(), "BaseDNNotFound");
    assert!(err.to_string().contains("OU=Nowhere"), "{err}");

    let mut spec = directory(DirectoryPreset::ActiveDirectory, &ad_corp());
    spec.user_filter = Some("(department=IT".into());
    let err = read_snapshot(&mut conn, &spec, &ReadOptions::default())
        .await
        .expect_err("bad filter");
    assert_eq!(err.reason(), "InvalidSettings");
}

#[tokio::test]
async fn members_outside_the_scope_are_reported_not_dropped_silently() {
    let mut conn = samba().await;
    // Only the nested groups' OU: their users live elsewhere.
    let base = format!("OU=Nested,OU=Groups,{}", ad_corp());
    let s = read_snapshot(
        &mut conn,
        &directory(DirectoryPreset::ActiveDirectory, &base),
        &ReadOptions::default(),
    )
    .await
    .expect("read");
    assert!(s.users.is_empty());
    assert_eq!(
        s.groups.len(),
        5,
        "On-Call, SRE, Platform, Cycle A, Cycle B"
    );
    // On-Call, SRE and Platform hold users 1-10, the cycle users 16-21: all outside the base DN.
    // Member values are kept as keys, so the sample names them in lower case.
    assert_eq!(s.unresolved.count, 16);
    assert!(
        s.unresolved.sample.iter().all(|dn| dn.contains("ou=staff")),
        "{:?}",
        s.unresolved.sample
    );
}

#[tokio::test]
async fn anonymous_reads_on_active_directory_are_insufficient_access() {
    let samba = env::samba();
    let mut conn = connect(&ServerSettings {
        credentials: None,
        ..bind_settings(
            &samba.ldaps_url,
            TlsMode::Ldaps,
            &samba.ca_file,
            "",
            "",
            Duration::from_secs(10),
        )
    })
    .await
    .expect("an anonymous bind itself succeeds");
    let err = read_snapshot(
        &mut conn,
        &directory(DirectoryPreset::ActiveDirectory, &ad_corp()),
        &ReadOptions::default(),
    )
    .await
    .expect_err("anonymous read");
    assert_eq!(err.reason(), "InsufficientAccess", "{err}");
}

#[tokio::test]
async fn chosen_groups_on_active_directory_read_only_their_members() {
    let mut conn = samba().await;
    let base = ad_corp();
    let mut spec = directory(DirectoryPreset::ActiveDirectory, &base);
    // The DN as Samba stores it: `=` in the name is escaped as \3D.
    spec.groups = vec![format!(r"CN=Tricky *)(uid\3D*,OU=Groups,{base}")];
    let tricky = read_snapshot(&mut conn, &spec, &ReadOptions::default())
        .await
        .expect("tricky");
    assert_eq!(tricky.groups.len(), 1);
    assert_eq!(
        tricky.users.len(),
        1,
        "the filter injection in the name brings nothing extra"
    );
    assert!(
        tricky.stats.entries < 200,
        "only the group's members were read: {:?}",
        tricky.stats
    );

    spec.groups = vec![format!("CN={},OU=Groups,{base}", names::ENGINEERING)];
    spec.nested_groups = NestedGroups::Flatten;
    let eng = read_snapshot(&mut conn, &spec, &ReadOptions::default())
        .await
        .expect("engineering");
    let group = eng.group_by_name(names::ENGINEERING).expect("Engineering");
    assert_eq!(
        group.users.len(),
        eng.users.len(),
        "transitive members, and nobody else"
    );
    let fixture = generate(FixtureSpec::STANDARD);
    let team2 = fixture
        .groups
        .iter()
        .find(|g| g.name == "Team 0002")
        .expect("Team 0002");
    assert_eq!(
        eng.users.len(),
        15 + team2
            .members
            .iter()
            .filter(|m| matches!(m, Member::User(u) if *u >= 15))
            .count()
    );
}

/// Samba's provisioned domain holds its own accounts and groups (krbtgt, Administrator, Guest,
/// Schema Admins, the Builtin groups), marked isCriticalSystemObject: left out unless asked for.
#[tokio::test]
async fn active_directory_leaves_out_the_domain_s_system_objects_unless_asked() {
    let mut conn = samba().await;
    let domain = env::samba().base_dn;
    let system_users = ["krbtgt", "Administrator", "Guest"];
    let system_groups = ["Schema Admins", "Domain Admins", "Administrators", "Users"];
    let mut spec = directory(DirectoryPreset::ActiveDirectory, &domain);
    spec.page_size = 1000;
    let s = read_snapshot(&mut conn, &spec, &ReadOptions::default())
        .await
        .expect("read");
    let has_user = |s: &Snapshot, name: &str| s.users.iter().any(|u| u.name == name);
    let has_group = |s: &Snapshot, name: &str| s.groups.iter().any(|g| g.name == name);
    for name in system_users {
        assert!(!has_user(&s, name), "{name} is left out");
    }
    for name in system_groups {
        assert!(!has_group(&s, name), "{name} is left out");
    }
    let fixture = generate(FixtureSpec::STANDARD);
    assert!(
        s.users.len() >= fixture.users.len(),
        "the organisation's users stay"
    );
    assert!(has_group(&s, names::ALL_STAFF));

    spec.include_system_objects = true;
    let all = read_snapshot(&mut conn, &spec, &ReadOptions::default())
        .await
        .expect("read");
    for name in system_users {
        assert!(has_user(&all, name), "{name} is read when asked for");
    }
    for name in system_groups {
        assert!(has_group(&all, name), "{name} is read when asked for");
    }
}

/// Active Directory reads only the chosen groups' users (the in-chain rule), while every group
/// under the base is read: the other groups' members were never meant to be read and are not
/// unresolved, nested or flattened.
#[tokio::test]
async fn chosen_groups_on_active_directory_report_no_unresolved_members() {
    let mut conn = samba().await;
    let base = ad_corp();
    for nested in [NestedGroups::Preserve, NestedGroups::Flatten] {
        let mut spec = directory(DirectoryPreset::ActiveDirectory, &base);
        spec.nested_groups = nested;
        spec.groups = vec![format!("CN={},OU=Groups,{base}", names::ENGINEERING)];
        let s = read_snapshot(&mut conn, &spec, &ReadOptions::default())
            .await
            .expect("read");
        assert!(s.group_by_name(names::ENGINEERING).is_some());
        assert!(!s.users.is_empty());
        assert_eq!(
            s.unresolved.count, 0,
            "{nested:?}: {:?}",
            s.unresolved.sample
        );
    }
}
