//! Push searches on the real servers: each offers its own (OpenLDAP syncrepl refreshAndPersist,
//! Samba change notifications, 389-DS persistent search), stays silent while nothing below its base
//! changes, and reports a modification, a rename and a deletion below it within a second or two.

use std::time::Duration;

use ldap3::{Ldap, Mod};
use usersync::api::TlsMode;
use usersync::directory::connect::{Connection, connect};
use usersync::directory::push::{PushKind, Pushed, Subscription, offered, subscribe};
use usersync_testbed::env;

use crate::support::connector::bind_settings;
use crate::support::ldap::{Server, add_ou, delete, ldap_connect, modify, rename, subtree_on};

async fn connection(url: &str, ca: &str, user: &str, password: &str) -> Connection {
    let settings = bind_settings(
        url,
        TlsMode::Ldaps,
        ca,
        user,
        password,
        Duration::from_secs(10),
    );
    connect(&settings).await.expect("bind")
}

/// The next change the subscription reports, skipping messages that report none; `None` when
/// nothing comes within `within`.
async fn change_within(subscription: &mut Subscription, within: Duration) -> Option<Pushed> {
    tokio::time::timeout(within, async {
        loop {
            match subscription.next().await.expect("push search") {
                Pushed::Changed => return Pushed::Changed,
                Pushed::Nothing => continue,
            }
        }
    })
    .await
    .ok()
}

/// A name no earlier run of the test bed used.
fn fresh(name: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    format!("{name}-{}", now.map(|d| d.as_millis()).unwrap_or_default())
}

const QUIET: Duration = Duration::from_millis(700);
const PUSHED: Duration = Duration::from_secs(3);

/// Subscribes below `base`; checks that nothing is pushed while nothing changes.
async fn subscribed(conn: &mut Connection, base: &str, kind: PushKind) -> Subscription {
    let mut subscription = subscribe(conn, base, kind).await.expect("subscribe");
    assert_eq!(subscription.kind, kind);
    assert_eq!(
        change_within(&mut subscription, QUIET).await,
        None,
        "nothing changed yet"
    );
    subscription
        .keep_alive()
        .await
        .expect("keep-alive answered");
    subscription
}

async fn edits_are_pushed(server: Server, name: &str, kind: PushKind) {
    let mut admin = server.admin().await;
    let base = subtree_on(server, &mut admin, &fresh(name)).await;
    let (user, password) = server.credentials();
    let mut conn = connection(&server.ldaps_url(), &server.ca_file(), &user, &password).await;
    let active_directory = server == Server::Samba;
    let offer = offered(&mut conn, active_directory)
        .await
        .expect("root DSE");
    assert_eq!(offer, Some(kind));
    let mut subscription = subscribed(&mut conn, &base, kind).await;

    let alice = server.user_dn(&base, "alice");
    let changed = Mod::Replace("description", ["pushed"].into());
    modify(&mut admin, &alice, vec![changed]).await;
    assert_eq!(
        change_within(&mut subscription, PUSHED).await,
        Some(Pushed::Changed),
        "a modification is pushed"
    );
    let bob = server.user_dn(&base, "bob");
    rename(&mut admin, &bob, &server.user_rdn("robert"), None).await;
    assert_eq!(
        change_within(&mut subscription, PUSHED).await,
        Some(Pushed::Changed),
        "a rename is pushed"
    );
    // Drain what the rename pushed (a notification per object it touched), then delete.
    while change_within(&mut subscription, QUIET).await.is_some() {}
    delete(&mut admin, &server.user_dn(&base, "robert")).await;
    assert_eq!(
        change_within(&mut subscription, PUSHED).await,
        Some(Pushed::Changed),
        "a deletion is pushed"
    );
    subscription.close().await;
}

#[tokio::test]
async fn openldap_pushes_by_syncrepl() {
    edits_are_pushed(Server::OpenLdap, "push-openldap", PushKind::Syncrepl).await;
}

#[tokio::test]
async fn samba_pushes_change_notifications() {
    edits_are_pushed(Server::Samba, "push-samba", PushKind::ChangeNotification).await;
}

#[tokio::test]
async fn ds389_pushes_by_persistent_search() {
    let ds = env::ds389();
    let mut admin: Ldap = ldap_connect(&ds.ldaps_url, &ds.ca_file, false).await;
    admin
        .simple_bind(&ds.admin_dn, &ds.admin_password)
        .await
        .and_then(|r| r.success())
        .expect("admin bind");
    let base = add_ou(&mut admin, &ds.base_dn, &fresh("push-389ds")).await;
    let mut conn = connection(&ds.ldaps_url, &ds.ca_file, &ds.admin_dn, &ds.admin_password).await;
    let offer = offered(&mut conn, false).await.expect("root DSE");
    assert_eq!(offer, Some(PushKind::PersistentSearch));
    let mut subscription = subscribed(&mut conn, &base, PushKind::PersistentSearch).await;
    let child = add_ou(&mut admin, &base, "child").await;
    assert_eq!(
        change_within(&mut subscription, PUSHED).await,
        Some(Pushed::Changed),
        "an addition is pushed"
    );
    let described = Mod::Replace("description", ["pushed"].into());
    modify(&mut admin, &child, vec![described]).await;
    assert_eq!(
        change_within(&mut subscription, PUSHED).await,
        Some(Pushed::Changed),
        "a modification is pushed"
    );
    delete(&mut admin, &child).await;
    assert_eq!(
        change_within(&mut subscription, PUSHED).await,
        Some(Pushed::Changed),
        "a deletion is pushed"
    );
    subscription.close().await;
}
