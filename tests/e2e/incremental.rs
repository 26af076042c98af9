//! Incremental runs end to end, on Samba and OpenLDAP: after users and groups are added, changed,
//! renamed, moved and deleted in the directory, the UserGroups that incremental runs leave equal,
//! object for object, those a fresh task writes from a full read.

use std::collections::HashSet;

use kube::api::{Api, Patch, PatchParams};
use ldap3::Mod;
use usersync::api::UserSynchronization;

use crate::support::kube::{
    Scenario, assert_same_contents, contents, create_task_on, fresh_contents,
};
use crate::support::ldap::{Server, add_ou, delete, modify, rename};
use crate::support::operator::start_operator;
use crate::support::wait::wait_for_run;

/// Asks for a run with `token`, changing the spec by `spec` in the same patch.
async fn patch_and_run(tasks: &Api<UserSynchronization>, token: &str, spec: serde_json::Value) {
    let patch = serde_json::json!({
        "metadata": {"annotations": {"usersync.io/run-now": token}},
        "spec": spec,
    });
    tasks
        .patch("corp", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("run-now");
}

/// The run's kind of read, after checking it succeeded.
async fn run(tasks: &Api<UserSynchronization>, token: Option<&str>) -> String {
    let task = wait_for_run(tasks, token).await;
    let status = task.status.expect("status");
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
    assert_eq!(
        ready.map(|c| c.status.as_str()),
        Some("True"),
        "{:?}",
        status.conditions
    );
    status.last_run.expect("last run").directory_read
}

async fn incremental_runs_equal_a_fresh_full_sync(server: Server) {
    let Scenario {
        client,
        ns,
        mut ldap,
        base,
    } = Scenario::on(server, "e2e-incr").await;
    let tasks = create_task_on(server, &client, &ns.name, &base).await;
    let operator = start_operator(&client, &ns.name);
    assert_eq!(run(&tasks, None).await, "Full");
    // Deletions below are intended.
    patch_and_run(&tasks, "0", serde_json::json!({"maxDeletions": "100%"})).await;
    assert_eq!(run(&tasks, Some("0")).await, "Incremental");

    // A user added to a group, one renamed, one moved to a new OU, one changed; a group renamed, a
    // group deleted, a group added.
    let unique = |login: &str| match server {
        // sAMAccountName is unique in the whole domain.
        Server::Samba => format!("{}-{login}", ns.name),
        Server::OpenLdap => login.to_owned(),
    };
    let carol = server
        .add_user(&mut ldap, &base, &unique("carol"), &unique("carol"))
        .await;
    let ops = server.group_dn(&base, "Ops");
    modify(
        &mut ldap,
        &ops,
        vec![Mod::Add("member", HashSet::from([carol.as_str()]))],
    )
    .await;
    let bob = server.user_dn(&base, "bob");
    rename(&mut ldap, &bob, &server.user_rdn("robert"), None).await;
    let moved = add_ou(&mut ldap, &base, "Moved").await;
    let alice = server.user_dn(&base, "alice");
    rename(&mut ldap, &alice, &server.user_rdn("alice"), Some(&moved)).await;
    let alice = server.user_dn(&moved, "alice");
    modify(
        &mut ldap,
        &alice,
        vec![Mod::Replace(
            "displayName",
            HashSet::from(["Alice Changed"]),
        )],
    )
    .await;
    rename(&mut ldap, &ops, &server.group_rdn("Operations"), None).await;
    delete(&mut ldap, &server.group_dn(&base, "Devs")).await;
    server
        .add_group(&mut ldap, &base, "QA", &[&alice, &carol])
        .await;
    patch_and_run(&tasks, "1", serde_json::json!({})).await;
    assert_eq!(run(&tasks, Some("1")).await, "Incremental", "{server:?}");

    // A user deleted while still a member of a group.
    delete(&mut ldap, &server.user_dn(&base, "robert")).await;
    patch_and_run(&tasks, "2", serde_json::json!({})).await;
    assert_eq!(run(&tasks, Some("2")).await, "Incremental", "{server:?}");
    let incremental = contents(&Api::namespaced(client.clone(), &ns.name)).await;

    // The same task, new, in a namespace of its own: its first run reads everything.
    let fresh = fresh_contents(server, &client, &base).await;
    assert_same_contents(server, &incremental, &fresh);
    let operations = fresh
        .values()
        .find(|(spec, _)| spec.display_name == "Operations")
        .expect("Operations");
    let members: Vec<&str> = operations.0.users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(members, [unique("carol")], "{server:?}");
    operator.abort();
}

#[tokio::test]
async fn incremental_runs_equal_a_fresh_full_sync_on_samba() {
    incremental_runs_equal_a_fresh_full_sync(Server::Samba).await;
}

#[tokio::test]
async fn incremental_runs_equal_a_fresh_full_sync_on_openldap() {
    incremental_runs_equal_a_fresh_full_sync(Server::OpenLdap).await;
}
