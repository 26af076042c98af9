//! Push end to end, on OpenLDAP (syncrepl refreshAndPersist) and Samba (change notifications): with
//! an hourly interval and no run asked for, a changed user, a user added to a group, a rename, a
//! move, a deletion and a renamed group each reach the UserGroups within seconds; a feed cut in the
//! middle, a server away and back, and a connection that hangs lose nothing; and what the pushed runs
//! leave equals, object for object, what a fresh task writes from a full read.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use kube::api::{Api, Patch, PatchParams};
use ldap3::Mod;
use usersync::api::{UserGroup, UserSynchronization};

use crate::support::kube::{
    Scenario, allow_servers, assert_same_contents, contents, create_task_on, fresh_contents,
    patch_spec, user_groups,
};
use crate::support::ldap::{Server, add_ou, delete, modify, rename};
use crate::support::operator::InProcess;
use crate::support::proxy;
use crate::support::wait::{eventually, wait_for_run};

/// The operator watching `ns`, with push feeds.
fn pushing(ns: &str) -> InProcess {
    InProcess {
        max_push_feeds: 100,
        ..InProcess::watching(ns)
    }
}

/// Far longer than any wait below: a run within it was started by the directory.
const NO_SCHEDULE: &str = "1h";
/// How long a change may take to land here (the targets are measured by `cargo xtask bench`).
const LANDS_WITHIN: Duration = Duration::from_secs(20);

/// Waits until the task's push feed is connected, and returns its kind.
async fn connected(tasks: &Api<UserSynchronization>) -> String {
    let push = || async {
        let task = tasks.get("corp").await.expect("task");
        task.status.and_then(|s| s.push)
    };
    eventually(LANDS_WITHIN, "the push feed connected", || async {
        push()
            .await
            .is_some_and(|p| p.reason == "Connected" && p.connected_since.is_some())
    })
    .await;
    push().await.map(|p| p.feed).unwrap_or_default()
}

/// Waits until some member of some UserGroup passes `check`, or none does (`present: false`).
async fn lands(groups: &Api<UserGroup>, what: &str, present: bool, check: impl Fn(&str) -> bool) {
    let started = Instant::now();
    eventually(LANDS_WITHIN, what, || async {
        let found = user_groups(groups).await.iter().any(|g| {
            g.spec.users.iter().any(|u| {
                let display = u.display_name.clone().unwrap_or_default();
                check(&format!("{}|{}|{}", u.dn, u.name, display))
            })
        });
        found == present
    })
    .await;
    eprintln!("{what}: {:.2} s", started.elapsed().as_secs_f64());
}

/// Whether the group shown as `name` lists `members` users.
async fn group_has(groups: &Api<UserGroup>, name: &str, members: usize) -> bool {
    user_groups(groups)
        .await
        .iter()
        .any(|g| g.spec.display_name == name && g.spec.users.len() == members)
}

async fn pushed_changes_land_and_equal_a_full_read(server: Server, expected_feed: &str) {
    let Scenario {
        client,
        ns,
        mut ldap,
        base,
    } = Scenario::on(server, "e2e-push").await;
    let tasks = create_task_on(server, &client, &ns.name, &base).await;
    // Deletions below are intended.
    patch_spec(
        &tasks,
        serde_json::json!({"interval": NO_SCHEDULE, "maxDeletions": "100%"}),
    )
    .await;
    let operator = pushing(&ns.name).start(&client);
    wait_for_run(&tasks, None).await;
    assert_eq!(connected(&tasks).await, expected_feed);
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);

    let alice = server.user_dn(&base, "alice");
    let pushed = Mod::Replace("displayName", HashSet::from(["Alice Pushed"]));
    modify(&mut ldap, &alice, vec![pushed]).await;
    lands(&groups, "a modified user", true, |u| {
        u.contains("Alice Pushed")
    })
    .await;

    let carol_login = match server {
        // sAMAccountName is unique in the whole domain.
        Server::Samba => format!("{}-carol", ns.name),
        Server::OpenLdap => "carol".to_owned(),
    };
    let carol = server
        .add_user(&mut ldap, &base, &carol_login, &carol_login)
        .await;
    let ops = server.group_dn(&base, "Ops");
    let added = Mod::Add("member", HashSet::from([carol.as_str()]));
    modify(&mut ldap, &ops, vec![added]).await;
    eventually(LANDS_WITHIN, "a user added to a group", || {
        group_has(&groups, "Ops", 2)
    })
    .await;

    let bob = server.user_dn(&base, "bob");
    rename(&mut ldap, &bob, &server.user_rdn("robert"), None).await;
    lands(&groups, "a renamed user", true, |u| {
        u.to_lowercase().contains("=robert,")
    })
    .await;

    let moved = add_ou(&mut ldap, &base, "Moved").await;
    rename(&mut ldap, &alice, &server.user_rdn("alice"), Some(&moved)).await;
    lands(&groups, "a moved user", true, |u| {
        u.to_lowercase().contains("ou=moved,")
    })
    .await;

    delete(&mut ldap, &server.user_dn(&base, "robert")).await;
    lands(&groups, "a deleted user", false, |u| {
        u.to_lowercase().contains("=robert,")
    })
    .await;

    rename(&mut ldap, &ops, &server.group_rdn("Operations"), None).await;
    eventually(LANDS_WITHIN, "a renamed group", || {
        group_has(&groups, "Operations", 1)
    })
    .await;
    let task = tasks.get("corp").await.expect("task");
    let push = task.status.and_then(|s| s.push).expect("push status");
    assert_eq!(push.reason, "Connected", "{push:?}");
    let pushed = contents(&groups).await;
    operator.abort();

    // The same task, new, in a namespace of its own: its first run reads everything.
    let fresh = fresh_contents(server, &client, &base).await;
    assert_same_contents(server, &pushed, &fresh);
}

#[tokio::test]
async fn pushed_changes_land_and_equal_a_full_read_openldap() {
    pushed_changes_land_and_equal_a_full_read(Server::OpenLdap, "Syncrepl").await;
}

#[tokio::test]
async fn pushed_changes_land_and_equal_a_full_read_samba() {
    pushed_changes_land_and_equal_a_full_read(Server::Samba, "ChangeNotification").await;
}

/// Changes made while the feed is cut, while the server is away, and while the connection hangs
/// each land once the feed is back, without a run being asked for.
async fn nothing_is_lost_while_the_feed_is_down(server: Server) {
    let Scenario {
        client,
        ns,
        mut ldap,
        base,
    } = Scenario::on(server, "e2e-push-cut").await;
    let (mut cut, url) = proxy::in_front_of(&server.ldaps_url()).await;
    let port = cut.port;
    allow_servers(&client, &ns.name, "bind", std::slice::from_ref(&url)).await;
    let tasks = create_task_on(server, &client, &ns.name, &base).await;
    patch_spec(
        &tasks,
        serde_json::json!({"interval": NO_SCHEDULE, "server": {"urls": [url], "timeoutSeconds": 3}}),
    )
    .await;
    let operator = InProcess {
        push_keep_alive: Duration::from_secs(2),
        ..pushing(&ns.name)
    }
    .start(&client);
    wait_for_run(&tasks, None).await;
    connected(&tasks).await;
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);
    let alice = server.user_dn(&base, "alice");
    let describe = |name: &'static str| Mod::Replace("displayName", HashSet::from([name]));

    // Cut mid-stream: the change is made before the feed reconnects.
    cut.cut_open();
    modify(&mut ldap, &alice, vec![describe("Alice Cut")]).await;
    lands(&groups, "a change made while the feed was cut", true, |u| {
        u.contains("Alice Cut")
    })
    .await;

    // The server away (every connection refused), a change, the server back on the same address.
    cut.cut_open();
    drop(cut);
    modify(&mut ldap, &alice, vec![describe("Alice Away")]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    cut = proxy::start_at(proxy::address_of(&server.ldaps_url()), port).await;
    lands(
        &groups,
        "a change made while the server was away",
        true,
        |u| u.contains("Alice Away"),
    )
    .await;
    connected(&tasks).await;

    // A connection that hangs: the keep-alive notices, the feed reconnects and the run reads it.
    cut.stall_open();
    modify(&mut ldap, &alice, vec![describe("Alice Hung")]).await;
    lands(&groups, "a change made while the feed hung", true, |u| {
        u.contains("Alice Hung")
    })
    .await;
    operator.abort();
    drop(cut);
}

#[tokio::test]
async fn nothing_is_lost_while_the_feed_is_down_openldap() {
    nothing_is_lost_while_the_feed_is_down(Server::OpenLdap).await;
}

#[tokio::test]
async fn nothing_is_lost_while_the_feed_is_down_samba() {
    nothing_is_lost_while_the_feed_is_down(Server::Samba).await;
}

/// With room for one feed, the second task is polled and says why; `push.mode: Disabled` holds
/// none, which frees the room for the other.
#[tokio::test]
async fn feeds_are_bounded_and_can_be_turned_off() {
    let server = Server::OpenLdap;
    let Scenario {
        client, ns, base, ..
    } = Scenario::on(server, "e2e-push-limit").await;
    let tasks = create_task_on(server, &client, &ns.name, &base).await;
    patch_spec(&tasks, serde_json::json!({"interval": NO_SCHEDULE})).await;
    let mut second = tasks.get("corp").await.expect("task");
    second.metadata = kube::api::ObjectMeta {
        name: Some("second".to_owned()),
        ..Default::default()
    };
    second.spec.target_group = "second-users".to_owned();
    second.status = None;
    tasks
        .create(&Default::default(), &second)
        .await
        .expect("second task");
    let operator = InProcess {
        max_push_feeds: 1,
        ..InProcess::watching(&ns.name)
    }
    .start(&client);
    let reasons = || async {
        let mut reasons = Vec::new();
        for name in ["corp", "second"] {
            let task = tasks.get(name).await.expect("task");
            let push = task.status.and_then(|s| s.push);
            reasons.push(push.map(|p| p.reason).unwrap_or_default());
        }
        reasons.sort();
        reasons
    };
    eventually(
        LANDS_WITHIN,
        "one feed connected, one over the limit",
        || async { reasons().await == ["Connected", "FeedLimit"] },
    )
    .await;
    let limited = tasks.get("corp").await.expect("task");
    let limited_is_corp =
        limited.status.and_then(|s| s.push).map(|p| p.reason) == Some("FeedLimit".into());
    let (holder, waiting) = if limited_is_corp {
        ("second", "corp")
    } else {
        ("corp", "second")
    };
    let off = serde_json::json!({"spec": {"push": {"mode": "Disabled"}}});
    tasks
        .patch(holder, &PatchParams::default(), &Patch::Merge(&off))
        .await
        .expect("push off");
    eventually(
        LANDS_WITHIN,
        "the room passed to the other task",
        || async {
            let holder = tasks.get(holder).await.expect("task");
            let waiting = tasks.get(waiting).await.expect("task");
            let reason = |t: UserSynchronization| t.status.and_then(|s| s.push).map(|p| p.reason);
            reason(holder).as_deref() == Some("Disabled")
                && reason(waiting).as_deref() == Some("Connected")
        },
    )
    .await;
    operator.abort();
}
