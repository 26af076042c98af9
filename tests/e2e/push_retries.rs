//! How a push feed tries again, on OpenLDAP behind a proxy that counts connections: a bind the
//! server refuses is not tried again (directories lock accounts out), and a server that ends every
//! session soon after it opens is asked again after growing pauses, not every second.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use ldap3::Mod;
use usersync::api::UserSynchronization;

use crate::support::kube::{Scenario, allow_servers, create_task_on};
use crate::support::ldap::{Server, add, modify};
use crate::support::operator::{InProcess, free_local_addr, metric};
use crate::support::proxy::{self, CutProxy};
use crate::support::wait::{eventually, wait_for_run};

const CONNECTS: &str = "usersync_push_connects_total";

/// The task's push reason on its status.
async fn push_reason(tasks: &Api<UserSynchronization>) -> Option<String> {
    let task = tasks.get("corp").await.expect("task");
    task.status.and_then(|s| s.push).map(|p| p.reason)
}

async fn reason_becomes(tasks: &Api<UserSynchronization>, reason: &str) {
    eventually(Duration::from_secs(30), reason, || async {
        push_reason(tasks).await.as_deref() == Some(reason)
    })
    .await;
}

/// The task `corp` on OpenLDAP through a proxy, binding with `credentials` (a Secret of that
/// name), with an hourly interval; the operator with one push feed and its metrics at the
/// returned address.
async fn task_behind_a_proxy(
    scenario: &Scenario,
    credentials: &str,
) -> (
    CutProxy,
    Api<UserSynchronization>,
    std::net::SocketAddr,
    tokio::task::JoinHandle<()>,
) {
    let (client, ns) = (&scenario.client, &scenario.ns.name);
    let (proxy, url) = proxy::in_front_of(&Server::OpenLdap.ldaps_url()).await;
    allow_servers(client, ns, credentials, std::slice::from_ref(&url)).await;
    let tasks = create_task_on(Server::OpenLdap, client, ns, &scenario.base).await;
    let spec = serde_json::json!({"spec": {
        "interval": "1h",
        "server": {"urls": [url], "credentialsSecretRef": {"name": credentials}},
    }});
    tasks
        .patch("corp", &PatchParams::default(), &Patch::Merge(&spec))
        .await
        .expect("task patched");
    let addr = free_local_addr();
    let operator = InProcess {
        max_push_feeds: 1,
        listen: Some(addr),
        ..InProcess::watching(ns)
    }
    .start(client);
    wait_for_run(&tasks, None).await;
    reason_becomes(&tasks, "Connected").await;
    (proxy, tasks, addr, operator)
}

#[tokio::test]
async fn a_refused_bind_is_not_tried_again() {
    let mut scenario = Scenario::on(Server::OpenLdap, "e2e-push-refused").await;
    // A bind account of the test's own, whose password changes under the open feed.
    let binder = format!("uid=binder,{}", scenario.base);
    let attrs = vec![
        ("objectClass", vec!["inetOrgPerson"]),
        ("uid", vec!["binder"]),
        ("cn", vec!["binder"]),
        ("sn", vec!["binder"]),
        ("userPassword", vec!["first-password"]),
    ];
    add(&mut scenario.ldap, &binder, attrs).await;
    let secrets: Api<Secret> = Api::namespaced(scenario.client.clone(), &scenario.ns.name);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("binder".into()),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([
            ("username".to_owned(), binder.clone()),
            ("password".to_owned(), "first-password".to_owned()),
        ])),
        ..Default::default()
    };
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("Secret");
    let (proxy, tasks, addr, operator) = task_behind_a_proxy(&scenario, "binder").await;

    // The password changes in the directory, then the feed's connection breaks: its next bind is
    // refused.
    let password = Mod::Replace("userPassword", HashSet::from(["second-password"]));
    modify(&mut scenario.ldap, &binder, vec![password]).await;
    proxy.cut_open();
    reason_becomes(&tasks, "Refused").await;
    let (connections, connects) = (proxy.connections(), metric(addr, CONNECTS).await);
    // A lost connection is tried again after 1–2 s, then 2–4 s: a refused bind never is.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        proxy.connections(),
        connections,
        "no connection after the refused bind"
    );
    assert_eq!(metric(addr, CONNECTS).await, connects);
    assert_eq!(push_reason(&tasks).await.as_deref(), Some("Refused"));
    operator.abort();
}

#[tokio::test]
async fn a_server_that_ends_every_session_is_asked_after_growing_pauses() {
    let scenario = Scenario::on(Server::OpenLdap, "e2e-push-short").await;
    let (proxy, _tasks, addr, operator) = task_behind_a_proxy(&scenario, "bind").await;
    let before = metric(addr, CONNECTS).await;
    // Every session ends 1.5 s after it opens, from the one open now on.
    proxy.close_after(Duration::from_millis(1500));
    proxy.cut_open();
    tokio::time::sleep(Duration::from_secs(24)).await;
    let sessions = metric(addr, CONNECTS).await - before;
    // Pauses of 1–2, 2–4, 4–8 and 8–16 s put at most 4 sessions in 24 s; a back-off started
    // afresh by each short session (1–2 s pauses) would put 6 or more.
    assert!(
        (2.0..=4.0).contains(&sessions),
        "{sessions} sessions in 24 s"
    );
    operator.abort();
}
