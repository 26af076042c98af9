//! A run removes only what is its task's (labelled with the task and owned by it), and fences each
//! removal with the uid and resourceVersion it planned from: hand-made, label-only,
//! owner-reference-only and other tasks' UserGroups survive an emptied directory with deletions
//! approved.

use std::time::Duration;

use kube::api::{Api, PostParams};
use kube::{Resource, ResourceExt};
use usersync::api::{UserGroup, UserSynchronization};

use crate::support::kube::{Scenario, approve_deletions, create_task, run_now, user_groups};
use crate::support::ldap::{Server, delete};
use crate::support::operator::start_operator;
use crate::support::wait::{assert_synced, eventually, wait_for_run};

/// A UserGroup named `name` with these labels and owners.
fn foreign(name: &str, task: Option<&str>, owner: Option<&UserSynchronization>) -> UserGroup {
    let mut group: UserGroup = serde_json::from_value(serde_json::json!({
        "apiVersion": "usersync.io/v1alpha1", "kind": "UserGroup",
        "metadata": {"name": name},
        "spec": {"displayName": name},
    }))
    .expect("UserGroup");
    if let Some(task) = task {
        group.metadata.labels =
            Some([("usersync.io/synchronization".to_owned(), task.to_owned())].into());
    }
    if let Some(owner) = owner {
        group.metadata.owner_references = owner.controller_owner_ref(&()).map(|r| vec![r]);
    }
    group
}

#[tokio::test]
async fn only_the_tasks_own_user_groups_are_removed_and_each_removal_is_fenced() {
    let Scenario {
        client,
        ns,
        mut ldap,
        base,
    } = Scenario::new("e2e-not-ours").await;
    let tasks = create_task(&client, &ns.name, &base).await;
    let other: UserSynchronization = serde_json::from_value(serde_json::json!({
        "apiVersion": "usersync.io/v1alpha1", "kind": "UserSynchronization",
        "metadata": {"name": "other"},
        "spec": {"suspend": true, "targetGroup": "others",
                 "server": {"urls": ["ldaps://127.0.0.1:1"]}, "directory": {"baseDN": "dc=x"}},
    }))
    .expect("task");
    let other = tasks
        .create(&PostParams::default(), &other)
        .await
        .expect("other task");
    let operator = start_operator(&client, &ns.name);
    assert_synced(&wait_for_run(&tasks, None).await);
    let corp = tasks.get("corp").await.expect("task");

    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);
    let foreigners = [
        foreign("hand-made", None, None),
        foreign("label-only", Some("corp"), None),
        foreign("owner-only", None, Some(&corp)),
        foreign("other-task", Some("other"), Some(&other)),
    ];
    for group in &foreigners {
        groups
            .create(&PostParams::default(), group)
            .await
            .expect("foreign UserGroup");
    }
    let own: Vec<String> = user_groups(&groups)
        .await
        .iter()
        .filter(|g| {
            g.labels()
                .get("usersync.io/synchronization")
                .map(String::as_str)
                == Some("corp")
        })
        .filter(|g| {
            g.owner_references()
                .iter()
                .any(|o| Some(&o.uid) == corp.uid().as_ref())
        })
        .map(|g| g.name_any())
        .collect();

    let server = Server::Samba;
    for user in ["alice", "bob"] {
        delete(&mut ldap, &server.user_dn(&base, user)).await;
    }
    for group in ["Devs", "Ops"] {
        delete(&mut ldap, &server.group_dn(&base, group)).await;
    }
    approve_deletions(&tasks, "once").await;
    run_now(&tasks, "emptied").await;
    let task = wait_for_run(&tasks, Some("emptied")).await;
    assert_synced(&task);
    let removed = task
        .status
        .and_then(|s| s.last_run)
        .expect("summary")
        .removed;
    assert!(removed >= 2, "Devs and Ops were removed: {removed}");

    let left: Vec<String> = user_groups(&groups)
        .await
        .iter()
        .map(|g| g.name_any())
        .collect();
    for group in &foreigners {
        assert!(
            left.contains(&group.name_any()),
            "{} was removed: {left:?}",
            group.name_any()
        );
    }
    assert!(
        own.iter().any(|name| !left.contains(name)),
        "nothing of the task's own went"
    );

    // Every removal named the object it was planned from.
    let deletes = fenced_deletes(&ns.name);
    assert!(deletes.len() >= 2, "{deletes:?}");
    for (name, fenced) in &deletes {
        assert!(
            fenced,
            "the removal of {name} carried no uid and resourceVersion preconditions"
        );
    }
    operator.abort();
}

/// The UserGroup deletes in `ns` and whether each carried uid and resourceVersion preconditions.
fn fenced_deletes(ns: &str) -> Vec<(String, bool)> {
    let log = std::fs::read_to_string(usersync_testbed::env::kube().audit_log).unwrap_or_default();
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|e| {
            e["verb"] == "delete"
                && e["stage"] == "ResponseComplete"
                && e["objectRef"]["resource"] == "usergroups"
                && e["objectRef"]["namespace"] == ns
        })
        .map(|e| {
            let preconditions = &e["requestObject"]["preconditions"];
            let fenced =
                preconditions["uid"].is_string() && preconditions["resourceVersion"].is_string();
            (
                e["objectRef"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                fenced,
            )
        })
        .collect()
}

/// A copy of one of the task's objects (its label, its owner, the same directory id) is a duplicate:
/// the object usersync named stays, the copy is removed, and the run's report counts it.
#[tokio::test]
async fn a_copy_of_an_owned_object_is_removed_and_counted() {
    let Scenario {
        client, ns, base, ..
    } = Scenario::new("e2e-duplicate").await;
    let tasks = create_task(&client, &ns.name, &base).await;
    let operator = start_operator(&client, &ns.name);
    assert_synced(&wait_for_run(&tasks, None).await);
    let corp = tasks.get("corp").await.expect("task");
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);
    let all = user_groups(&groups).await;
    let devs = all
        .iter()
        .find(|g| g.spec.display_name == "Devs")
        .expect("Devs");
    let mut copy = foreign("devs-copy", Some("corp"), Some(&corp));
    copy.spec = devs.spec.clone();
    groups
        .create(&PostParams::default(), &copy)
        .await
        .expect("copy");

    // A new object with the task's label is noticed at once: the run it starts removes the copy
    // and says so on status.
    eventually(
        Duration::from_secs(30),
        "the copy is removed and counted",
        || async {
            let task = tasks.get("corp").await.expect("task");
            let counted = task
                .status
                .and_then(|s| s.last_run)
                .is_some_and(|r| r.duplicates_removed == 1);
            counted && groups.get_opt("devs-copy").await.expect("get").is_none()
        },
    )
    .await;
    let stays = groups.get(&devs.name_any()).await.expect("Devs stays");
    assert_eq!(stays.metadata.uid, devs.metadata.uid);
    operator.abort();
}
