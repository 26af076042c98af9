//! Incremental reads on the real servers: after adds, modifications, renames, moves, deletions and
//! entries leaving the user filter, the snapshot built from the change feed equals a fresh full read,
//! entry for entry, and the feed returns far fewer entries than a full read. Samba follows
//! uSNChanged with Show Deleted; OpenLDAP follows syncrepl (both its session log and, once the log
//! has overflowed, its present list).

use std::collections::HashSet;
use std::time::Duration;

use ldap3::{Ldap, Mod};
use usersync::api::{DirectorySpec, TlsMode};
use usersync::directory::connect::connect;
use usersync::directory::read::{Feed, Read, ReadKind, ReadOptions, read, read_snapshot};
use usersync::directory::snapshot::Snapshot;
use usersync_testbed::env;

use crate::support::connector::bind_settings;
use crate::support::ldap::{
    Server, add, add_ou, delete, modify, quiet_directories, rename, subtree_on,
};

const FILLER_USERS: usize = 30;

fn spec(server: Server, base: &str) -> DirectorySpec {
    serde_json::from_value(serde_json::json!({
        "baseDN": base,
        "preset": server.preset(),
        "pageSize": 7,
        "userFilter": "(!(description=hidden))",
    }))
    .expect("directory spec")
}

async fn connection(server: Server) -> usersync::directory::connect::Connection {
    let (url, ca) = (server.ldaps_url(), server.ca_file());
    let (user, password) = server.credentials();
    connect(&bind_settings(
        &url,
        TlsMode::Ldaps,
        ca,
        &user,
        &password,
        Duration::from_secs(30),
    ))
    .await
    .expect("bind")
}

async fn read_following(server: Server, spec: &DirectorySpec, previous: Option<Read>) -> Read {
    let mut conn = connection(server).await;
    let kept = previous.and_then(|r| r.kept);
    read(&mut conn, spec, &ReadOptions::default(), Feed::Follow(kept))
        .await
        .expect("read")
}

async fn fresh(server: Server, spec: &DirectorySpec) -> Snapshot {
    let mut conn = connection(server).await;
    read_snapshot(&mut conn, spec, &ReadOptions::default())
        .await
        .expect("full read")
}

/// The incremental snapshot holds exactly what a fresh full read finds.
async fn assert_same_as_fresh(server: Server, spec: &DirectorySpec, read: &Read, step: &str) {
    let full = fresh(server, spec).await;
    let got = &read.snapshot;
    assert_eq!(got.users, full.users, "{server:?} {step}: users");
    assert_eq!(got.groups, full.groups, "{server:?} {step}: groups");
    assert_eq!(
        got.containers, full.containers,
        "{server:?} {step}: containers"
    );
    assert_eq!(
        got.unresolved, full.unresolved,
        "{server:?} {step}: unresolved"
    );
}

async fn incremental_equals_full(server: Server) {
    let mut ldap = server.admin().await;
    let name = format!(
        "incr-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
    );
    let base = subtree_on(server, &mut ldap, &name).await;
    let prefix = |login: &str| match server {
        // sAMAccountName is unique in the whole domain.
        Server::Samba => format!("{name}-{login}"),
        Server::OpenLdap => login.to_owned(),
    };
    for i in 0..FILLER_USERS {
        let filler = prefix(&format!("filler{i:02}"));
        server.add_user(&mut ldap, &base, &filler, &filler).await;
    }
    let spec = spec(server, &base);
    let alice = server.user_dn(&base, "alice");
    let bob = server.user_dn(&base, "bob");
    let ops = server.group_dn(&base, "Ops");
    let devs = server.group_dn(&base, "Devs");
    // From the first read on, the feed must name this test's changes only.
    let _quiet = quiet_directories().await;

    let mut first = read_following(server, &spec, None).await;
    assert_eq!(first.kind, ReadKind::Full, "{server:?}: nothing kept yet");
    let method = first
        .kept
        .as_ref()
        .expect("the server has a change feed")
        .mark
        .method();
    let expected_method = match server {
        Server::Samba => "USNChanged",
        Server::OpenLdap => "Syncrepl",
    };
    assert_eq!(method, expected_method);
    let full_entries = first.snapshot.stats.entries;
    assert!(full_entries > FILLER_USERS, "{server:?}: {full_entries}");

    // Marked, to tell the kept snapshot from one assembled again.
    if let Some(kept) = first.kept.as_mut() {
        kept.snapshot.base_dn = "kept".into();
    }
    let unchanged = read_following(server, &spec, Some(first)).await;
    assert_eq!(unchanged.kind, ReadKind::Incremental);
    assert_eq!(
        unchanged.snapshot.stats.entries, 0,
        "{server:?}: nothing changed, nothing read"
    );
    assert_eq!(
        unchanged.snapshot.base_dn, "kept",
        "{server:?}: nothing changed, the kept snapshot serves as it is"
    );
    assert_same_as_fresh(server, &spec, &unchanged, "no change").await;

    // Adds, a modification, a user renamed, a user moved to a new OU, a group renamed.
    let carol = server
        .add_user(&mut ldap, &base, &prefix("carol"), &prefix("carol"))
        .await;
    modify(
        &mut ldap,
        &ops,
        vec![Mod::Add("member", HashSet::from([carol.as_str()]))],
    )
    .await;
    server.add_group(&mut ldap, &base, "QA", &[&carol]).await;
    modify(
        &mut ldap,
        &alice,
        vec![Mod::Replace(
            "displayName",
            HashSet::from(["Alice Changed"]),
        )],
    )
    .await;
    rename(&mut ldap, &bob, &server.user_rdn("robert"), None).await;
    let robert = server.user_dn(&base, "robert");
    let moved = add_ou(&mut ldap, &base, "Moved").await;
    rename(&mut ldap, &alice, &server.user_rdn("alice"), Some(&moved)).await;
    let empty = add_ou(&mut ldap, &base, "Empty").await;
    rename(&mut ldap, &ops, &server.group_rdn("Operations"), None).await;
    let operations = server.group_dn(&base, "Operations");

    let changed = read_following(server, &spec, Some(unchanged)).await;
    assert_eq!(changed.kind, ReadKind::Incremental, "{server:?}");
    assert!(
        changed.snapshot.stats.entries < full_entries / 2,
        "{server:?}: {} entries for a few changes, {full_entries} for everything",
        changed.snapshot.stats.entries
    );
    assert_same_as_fresh(server, &spec, &changed, "adds, renames, moves").await;
    let operations_group = changed
        .snapshot
        .group_by_name("Operations")
        .expect("renamed group");
    let mut members = changed.snapshot.user_names(operations_group);
    members.sort();
    assert_eq!(members.len(), 2, "{members:?}: robert and carol");

    // Deletions, a member leaving a group, and a user leaving the user filter.
    delete(&mut ldap, &devs).await;
    modify(
        &mut ldap,
        &operations,
        vec![Mod::Delete("member", HashSet::from([robert.as_str()]))],
    )
    .await;
    delete(&mut ldap, &robert).await;
    modify(
        &mut ldap,
        &carol,
        vec![Mod::Replace("description", HashSet::from(["hidden"]))],
    )
    .await;
    let removed = read_following(server, &spec, Some(changed)).await;
    assert_eq!(removed.kind, ReadKind::Incremental, "{server:?}");
    assert_eq!(
        removed.snapshot.stats.present_lists, 0,
        "from the session log"
    );
    assert_same_as_fresh(server, &spec, &removed, "deletions").await;
    assert!(removed.snapshot.group_by_name("Devs").is_none());
    assert!(
        !removed
            .snapshot
            .users
            .iter()
            .any(|u| u.name == prefix("carol") || u.name == "robert"),
        "{server:?}: carol left the filter, robert was deleted"
    );

    let removed = if server == Server::OpenLdap {
        // More changes than the session log holds: the server answers with a present list.
        let filler = server.user_dn(&base, &prefix("filler00"));
        for i in 0..210 {
            modify(
                &mut ldap,
                &filler,
                vec![Mod::Replace(
                    "title",
                    HashSet::from([format!("t{i}").as_str()]),
                )],
            )
            .await;
        }
        delete(&mut ldap, &server.user_dn(&base, &prefix("filler01"))).await;
        let present = read_following(server, &spec, Some(removed)).await;
        assert_eq!(present.kind, ReadKind::Incremental);
        assert!(present.snapshot.stats.present_lists > 0, "a present list");
        assert_same_as_fresh(server, &spec, &present, "present list").await;
        assert_eq!(
            present.snapshot.users.len(),
            FILLER_USERS - 1 + 1,
            "fillers but one, and alice"
        );
        present
    } else {
        removed
    };

    // A renamed OU moves everything below it without the feed naming those entries. (OpenLDAP's
    // mdb renames leaf entries only, so there the OU is an empty one.)
    let ou = match server {
        Server::Samba => &moved,
        Server::OpenLdap => &empty,
    };
    rename(&mut ldap, ou, "ou=Renamed", None).await;
    let after_ou_rename = read_following(server, &spec, Some(removed)).await;
    assert_eq!(
        after_ou_rename.kind,
        ReadKind::Full,
        "{server:?}: an OU rename falls back to a full read"
    );
    assert_same_as_fresh(server, &spec, &after_ou_rename, "OU renamed").await;
}

#[tokio::test]
async fn incremental_reads_equal_full_reads_on_samba() {
    incremental_equals_full(Server::Samba).await;
}

#[tokio::test]
async fn incremental_reads_equal_full_reads_on_openldap() {
    incremental_equals_full(Server::OpenLdap).await;
}

/// An account whose shadowExpire day comes between two reads changes no entry, so no change feed
/// reports it: the incremental read disables the kept user all the same, as a full read would.
#[tokio::test]
async fn accounts_that_expire_between_reads_are_disabled_as_a_full_read_would() {
    let server = Server::OpenLdap;
    let mut ldap = server.admin().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let base = subtree_on(server, &mut ldap, &format!("expiry-{}", now.as_millis())).await;
    let today = (now.as_secs() / 86_400).to_string();
    add(
        &mut ldap,
        &server.user_dn(&base, "expiring"),
        vec![
            ("objectClass", vec!["inetOrgPerson", "shadowAccount"]),
            ("uid", vec!["expiring"]),
            ("cn", vec!["expiring"]),
            ("sn", vec!["expiring"]),
            ("shadowExpire", vec![&today]),
        ],
    )
    .await;
    let spec = spec(server, &base);
    // Nothing may change between the two reads: no feed may report anything.
    let _quiet = quiet_directories().await;

    let mut first = read_following(server, &spec, None).await;
    let kept = first.kept.as_mut().expect("the server has a change feed");
    let raw = kept
        .entries
        .users
        .values_mut()
        .find(|u| u.user.name == "expiring")
        .expect("the expiring user is read");
    assert!(raw.user.disabled, "the account expires today");
    // As a read made yesterday kept it: enabled, expiring today.
    std::sync::Arc::make_mut(&mut raw.user).disabled = false;
    raw.expires_on = today.parse().ok();

    let next = read_following(server, &spec, Some(first)).await;
    assert_eq!(next.kind, ReadKind::Incremental);
    assert_eq!(
        next.snapshot.stats.entries, 0,
        "nothing changed in the directory"
    );
    assert_same_as_fresh(server, &spec, &next, "account expired").await;
}

/// A Samba user that is not an administrator, with a password of its own.
async fn plain_user(ldap: &mut Ldap, base: &str, login: &str, password: &str) {
    let dn = format!("CN={login},{base}");
    add(
        ldap,
        &dn,
        vec![
            ("objectClass", vec!["user"]),
            ("sAMAccountName", vec![login]),
        ],
    )
    .await;
    // unicodePwd is the quoted password in UTF-16LE, settable over TLS only.
    let quoted: Vec<u8> = format!("\"{password}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    modify(
        ldap,
        &dn,
        vec![
            Mod::Replace(b"unicodePwd".to_vec(), HashSet::from([quoted])),
            Mod::Replace(
                b"userAccountControl".to_vec(),
                HashSet::from([b"512".to_vec()]),
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn active_directory_reads_everything_when_the_feed_would_be_incomplete() {
    let server = Server::Samba;
    let mut ldap = server.admin().await;
    let name = format!(
        "nofeed-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
            % 1_000_000
    );
    let base = subtree_on(server, &mut ldap, &name).await;

    // Users chosen through group membership: memberOf changes no user's uSNChanged.
    let mut chosen = spec(server, &base);
    chosen.groups = vec![server.group_dn(&base, "Ops")];
    let first = read_following(server, &chosen, None).await;
    assert!(first.kept.is_none(), "no feed with chosen groups");
    assert_eq!(first.snapshot.users.len(), 1, "bob, Ops' only member");

    // A plain user cannot see deleted objects, so deletions would go unnoticed.
    let login = format!("{name}-r");
    let password = "Plain-Reader-1!";
    plain_user(&mut ldap, &base, &login, password).await;
    let samba = env::samba();
    let mut conn = connect(&bind_settings(
        &samba.ldaps_url,
        TlsMode::Ldaps,
        &samba.ca_file,
        &format!("{}\\{login}", samba.domain),
        password,
        Duration::from_secs(30),
    ))
    .await
    .expect("plain user bind");
    let plain = read(
        &mut conn,
        &spec(server, &base),
        &ReadOptions::default(),
        Feed::Follow(None),
    )
    .await
    .expect("a plain user reads the subtree");
    assert!(
        plain.snapshot.users.len() >= 2,
        "{:?}",
        plain.snapshot.users
    );
    assert!(plain.kept.is_none(), "no feed without the deleted objects");
}
