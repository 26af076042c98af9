//! A task that follows the directory's changes keeps its connection bound between runs (Samba AD,
//! through a proxy that counts connections): runs after the first open none, a change still lands,
//! a connection the server closed is replaced without the run failing, and a rotated password is
//! used at once, not the connection bound with the old one.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use ldap3::Mod;
use usersync::api::{UserGroup, UserSynchronization};

use crate::support::kube::{
    Scenario, allow_servers, create_task_on, patch_spec, run_now, user_groups,
};
use crate::support::ldap::{Server, modify};
use crate::support::operator::start_operator;
use crate::support::proxy;
use crate::support::wait::{assert_synced, condition, wait_for_run};

/// The run's kind of read, after checking it succeeded.
async fn synced_run(tasks: &Api<UserSynchronization>, token: &str) -> String {
    run_now(tasks, token).await;
    let task = wait_for_run(tasks, Some(token)).await;
    assert_synced(&task);
    let last_run = task.status.and_then(|s| s.last_run).expect("last run");
    last_run.directory_read
}

async fn set_password(client: &kube::Client, ns: &str, password: &str) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let patch = serde_json::json!({"stringData": {"password": password}});
    secrets
        .patch("bind", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("password");
}

#[tokio::test]
async fn incremental_runs_keep_their_connection_bound() {
    let server = Server::Samba;
    let Scenario {
        client,
        ns,
        mut ldap,
        base,
    } = Scenario::on(server, "e2e-kept-conn").await;
    let (proxy, proxied) = proxy::in_front_of(&server.ldaps_url()).await;
    let tasks = create_task_on(server, &client, &ns.name, &base).await;
    allow_servers(&client, &ns.name, "bind", std::slice::from_ref(&proxied)).await;
    // No push feed: its connection would be counted too.
    let through_proxy = serde_json::json!({
        "server": {"urls": [proxied]},
        "push": {"mode": "Disabled"},
    });
    patch_spec(&tasks, through_proxy).await;
    let operator = start_operator(&client, &ns.name);
    assert_synced(&wait_for_run(&tasks, None).await);
    assert_eq!(synced_run(&tasks, "warm").await, "Incremental");
    let opened = proxy.connections();

    assert_eq!(synced_run(&tasks, "again").await, "Incremental");
    let alice = server.user_dn(&base, "alice");
    let display = Mod::Replace("displayName", HashSet::from(["Alice Kept"]));
    modify(&mut ldap, &alice, vec![display]).await;
    assert_eq!(synced_run(&tasks, "changed").await, "Incremental");
    assert_eq!(proxy.connections(), opened, "runs opened connections");
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);
    let listed = user_groups(&groups).await;
    assert!(
        listed
            .iter()
            .flat_map(|g| &g.spec.users)
            .any(|u| { u.display_name.as_deref() == Some("Alice Kept") }),
        "the change landed"
    );

    // The server closes the idle connection: the next run makes a new one and succeeds.
    proxy.cut_open();
    assert_eq!(synced_run(&tasks, "after-cut").await, "Incremental");
    assert_eq!(proxy.connections(), opened + 1);

    // A rotated password that the directory refuses: the run binds with it, and fails.
    set_password(&client, &ns.name, "not-the-password").await;
    run_now(&tasks, "rotated").await;
    let refused = wait_for_run(&tasks, Some("rotated")).await;
    let ready = condition(&refused, "Ready").expect("Ready");
    assert_eq!(
        (ready.0.as_str(), ready.1.as_str()),
        ("False", "InvalidCredentials"),
        "{:?}",
        refused.status
    );
    set_password(&client, &ns.name, &server.credentials().1).await;
    synced_run(&tasks, "restored").await;
    drop(operator);
}
