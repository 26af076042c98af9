//! End to end on the real apiserver with Samba AD DC and OpenLDAP: the operator (in-process, as `usersync run`
//! runs it) synchronizes a subtree of the directory into UserGroups, writes nothing when nothing
//! changed, follows a rename to the same object, removes a vanished group, and reports a wrong
//! password without touching what was synced. Each test works in its own OU and namespace.

use std::collections::HashSet;
use std::time::Duration;

use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use ldap3::Mod;
use usersync::api::UserGroup;
use usersync_testbed::env;

use crate::support::audit::audit_writes;
use crate::support::kube::{
    Scenario, approve_deletions, by_display, create_task, create_task_on, printed, run_now,
    secrets_for, user_groups,
};
use crate::support::ldap::{Server, delete, modify, quiet_directories, rename};
use crate::support::operator::{http_get, start_operator, start_operator_with};
use crate::support::wait::{
    assert_synced, condition, eventually, wait_for_condition, wait_for_run,
};

async fn sync_no_op_rename_and_removal(server: Server) {
    let Scenario {
        client,
        ns,
        mut ldap,
        base,
    } = Scenario::on(server, "e2e").await;
    // Until the rename is read, the feed must name this test's changes only: its counts are checked.
    let quiet = quiet_directories().await;
    let tasks = create_task_on(server, &client, &ns.name, &base).await;
    let operator = start_operator(&client, &ns.name);
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);

    let task = wait_for_run(&tasks, None).await;
    assert_synced(&task);
    let synced = user_groups(&groups).await;
    assert_eq!(
        synced.len(),
        3,
        "target group, Devs and Ops: {:?}",
        synced
            .iter()
            .map(|g| &g.spec.display_name)
            .collect::<Vec<_>>()
    );
    let target = by_display(&synced, "all-users");
    let devs = by_display(&synced, "Devs");
    assert_eq!(
        devs.spec.parent.as_deref(),
        Some(target.name_any().as_str())
    );
    let members: Vec<&str> = devs
        .spec
        .users
        .iter()
        .map(|u| u.display_name.as_deref().unwrap_or_default())
        .collect();
    assert_eq!(members, ["alice", "bob"]);
    let source = devs.spec.source.as_ref().expect("source");
    match server {
        Server::Samba => assert!(
            source
                .sid
                .as_deref()
                .is_some_and(|sid| sid.starts_with("S-1-5-21-")),
            "{source:?}"
        ),
        Server::OpenLdap => assert_eq!(source.id.len(), 36, "entryUUID: {source:?}"),
    }
    assert_eq!(devs.status.as_ref().map(|s| s.user_count), Some(2));
    assert_eq!(
        devs.labels()
            .get("usersync.io/synchronization")
            .map(String::as_str),
        Some("corp")
    );
    assert!(
        devs.owner_references()
            .iter()
            .any(|o| o.kind == "UserSynchronization" && o.controller == Some(true))
    );
    let status = task.status.as_ref().expect("status");
    assert_eq!(status.observed_generation, task.metadata.generation);
    assert_eq!(
        status
            .last_run
            .as_ref()
            .map(|r| (r.users, r.groups, r.created)),
        Some((2, 2, 3))
    );

    // Nothing changed in the directory: a run writes no UserGroup.
    let writes = audit_writes(&ns.name);
    run_now(&tasks, "1").await;
    let task = wait_for_run(&tasks, Some("1")).await;
    assert_eq!(
        audit_writes(&ns.name),
        writes,
        "a no-op run writes no UserGroup"
    );
    assert_eq!(
        task.status
            .as_ref()
            .and_then(|s| s.last_handled_run_now.as_deref()),
        Some("1")
    );
    let status = task.status.as_ref().expect("status");
    let incremental = status.incremental.as_ref().expect("a change feed position");
    let expected_method = match server {
        Server::Samba => "USNChanged",
        Server::OpenLdap => "Syncrepl",
    };
    assert_eq!(incremental.method, expected_method, "{incremental:?}");
    let last_run = status.last_run.as_ref().expect("last run");
    assert_eq!(
        (last_run.directory_read.as_str(), last_run.entries_read),
        ("Incremental", 0),
        "nothing changed, nothing read"
    );

    // A rename in the directory updates the same object.
    let devs_uid = devs.uid();
    rename(
        &mut ldap,
        &server.group_dn(&base, "Devs"),
        &server.group_rdn("Developers"),
        None,
    )
    .await;
    modify(
        &mut ldap,
        &server.group_dn(&base, "Developers"),
        vec![Mod::Replace("description", HashSet::from(["renamed"]))],
    )
    .await;
    run_now(&tasks, "2").await;
    let task = wait_for_run(&tasks, Some("2")).await;
    drop(quiet);
    let last_run = task.status.and_then(|s| s.last_run).expect("last run");
    // Active Directory also lists the id of every changed object, to notice what left the scope.
    let entries = match server {
        Server::Samba => 2,
        Server::OpenLdap => 1,
    };
    assert_eq!(
        (last_run.directory_read.as_str(), last_run.entries_read),
        ("Incremental", entries),
        "only the renamed group is read"
    );
    let synced = user_groups(&groups).await;
    let developers = by_display(&synced, "Developers");
    assert_eq!(developers.uid(), devs_uid, "same object after the rename");
    assert_eq!(developers.spec.description.as_deref(), Some("renamed"));

    // A group deleted in the directory is removed: 10% of this small task is no removal at all,
    // but maxDeletionsFloor (5) lets a small task through.
    delete(&mut ldap, &server.group_dn(&base, "Ops")).await;
    run_now(&tasks, "3").await;
    assert_synced(&wait_for_run(&tasks, Some("3")).await);
    let names = |groups: Vec<UserGroup>| -> Vec<String> {
        groups.iter().map(|g| g.spec.display_name.clone()).collect()
    };
    let left = names(user_groups(&groups).await);
    assert!(
        !left.contains(&"Ops".to_owned()) && left.len() == 2,
        "{left:?}"
    );

    // With no removal allowed the brake holds the next one; approving it runs it at once.
    let held = serde_json::json!({"spec": {"maxDeletions": 0}});
    tasks
        .patch("corp", &PatchParams::default(), &Patch::Merge(&held))
        .await
        .expect("maxDeletions 0");
    delete(&mut ldap, &server.group_dn(&base, "Developers")).await;
    run_now(&tasks, "4").await;
    let task = wait_for_run(&tasks, Some("4")).await;
    assert_eq!(
        condition(&task, "Stalled"),
        Some(("True".into(), "DeletionThresholdExceeded".into()))
    );
    assert_eq!(
        user_groups(&groups).await.len(),
        2,
        "the brake removed nothing"
    );
    approve_deletions(&tasks, "once").await;
    eventually(Duration::from_secs(60), "the approved run", || async {
        let task = tasks.get("corp").await.expect("task");
        let handled = task
            .status
            .as_ref()
            .and_then(|s| s.last_handled_approval.clone());
        handled.as_deref() == Some("once")
            && condition(&task, "Ready") == Some(("True".into(), "Synced".into()))
    })
    .await;
    let left = names(user_groups(&groups).await);
    assert_eq!(left.len(), 1, "only the target group is left: {left:?}");
    operator.abort();
}

async fn a_wrong_password_stalls_with_a_reason_and_keeps_what_was_synced(server: Server) {
    let Scenario {
        client,
        ns,
        ldap: _,
        base,
    } = Scenario::on(server, "e2e-badpw").await;
    let tasks = create_task_on(server, &client, &ns.name, &base).await;
    let operator = start_operator(&client, &ns.name);
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);
    wait_for_run(&tasks, None).await;
    assert_eq!(user_groups(&groups).await.len(), 3);

    let wrong = "Wrong-Passw0rd-For-Test";
    secrets_for(server, &client, &ns.name, wrong).await;
    run_now(&tasks, "bad").await;
    let task = wait_for_run(&tasks, Some("bad")).await;
    assert_eq!(
        condition(&task, "Stalled"),
        Some(("True".into(), "InvalidCredentials".into()))
    );
    assert_eq!(condition(&task, "Ready").map(|c| c.0), Some("False".into()));
    assert_eq!(
        user_groups(&groups).await.len(),
        3,
        "nothing synced is lost"
    );
    // `kubectl get usync` says why at a glance.
    let path = format!(
        "/apis/usersync.io/v1alpha1/namespaces/{}/usersynchronizations/corp",
        ns.name
    );
    let row = printed(&client, &path).await.remove(0);
    assert_eq!(row["Ready"], "False", "{row:?}");
    assert_eq!(row["Reason"], "InvalidCredentials", "{row:?}");
    assert!(row.contains_key("Next Sync"), "{row:?}");
    let status_text = serde_json::to_string(&task.status).expect("status serializes");
    assert!(
        !status_text.contains(wrong),
        "the password never reaches status"
    );

    // Fixing the Secret is enough: the operator notices the rotation and runs again by itself.
    secrets_for(server, &client, &ns.name, &server.credentials().1).await;
    let task = wait_for_condition(&tasks, "Ready", "True", "Synced").await;
    assert_eq!(
        condition(&task, "Stalled").map(|c| c.0),
        Some("False".into())
    );
    operator.abort();
}

async fn dry_run_previews_and_writes_no_user_group(server: Server) {
    let Scenario {
        client,
        ns,
        ldap: _,
        base,
    } = Scenario::on(server, "e2e-dry").await;
    let tasks = create_task_on(server, &client, &ns.name, &base).await;
    let dry = serde_json::json!({"spec": {"dryRun": true}});
    tasks
        .patch("corp", &PatchParams::default(), &Patch::Merge(&dry))
        .await
        .expect("dry run on");
    let operator = start_operator(&client, &ns.name);
    let task = wait_for_run(&tasks, None).await;
    assert_eq!(
        condition(&task, "Ready"),
        Some(("True".into(), "Previewed".into())),
        "{:?}",
        task.status
    );
    let preview = task
        .status
        .as_ref()
        .and_then(|s| s.preview.clone())
        .expect("status.preview");
    assert_eq!((preview.create, preview.update, preview.remove), (3, 0, 0));
    assert_eq!(preview.changes.len(), 3);
    assert!(
        preview
            .changes
            .iter()
            .any(|c| c.action == "Create" && c.display_name.as_deref() == Some("Devs"))
    );
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);
    assert!(
        user_groups(&groups).await.is_empty(),
        "a dry run writes nothing"
    );
    assert_eq!(audit_writes(&ns.name), 0);
    operator.abort();
}

#[tokio::test]
async fn health_and_metrics_endpoints_report_runs() {
    let Scenario {
        client,
        ns,
        ldap: _,
        base,
    } = Scenario::new("e2e-metrics").await;
    let tasks = create_task(&client, &ns.name, &base).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let operator = start_operator_with(
        &client,
        &ns.name,
        usersync::planner::shard::DEFAULT_SHARD_BYTES,
        Some(addr),
    );
    wait_for_run(&tasks, None).await;

    assert_eq!(http_get(addr, "/healthz").await.0, "HTTP/1.1 200 OK");
    assert_eq!(http_get(addr, "/readyz").await.0, "HTTP/1.1 200 OK");
    let (status, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        body.contains("usersync_runs_total{result=\"success\"} 1"),
        "{body}"
    );
    let users = format!(
        "usersync_users{{namespace=\"{}\",task=\"corp\"}} 2",
        ns.name
    );
    assert!(body.contains(&users), "{body}");
    assert!(
        body.contains("usersync_run_duration_seconds_count 1"),
        "{body}"
    );
    assert!(!body.contains(&env::samba().admin_password));
    // The build, leadership (no election here: it leads) and the process.
    assert!(
        body.contains(&format!(
            "usersync_build_info{{version=\"{}\",commit=\"",
            env!("CARGO_PKG_VERSION")
        )),
        "{body}"
    );
    assert!(body.lines().any(|l| l == "usersync_leader 1"), "{body}");
    let positive = |name: &str| {
        body.lines()
            .find_map(|l| {
                l.strip_prefix(name)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .is_some_and(|v| v > 0.0)
    };
    for name in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
        "process_threads",
    ] {
        assert!(positive(name), "{name} in {body}");
    }
    assert!(body.contains("process_cpu_seconds_total "), "{body}");

    // Later runs read the directory's changes only and plan against the watched UserGroups.
    for token in ["1", "2"] {
        run_now(&tasks, token).await;
        wait_for_run(&tasks, Some(token)).await;
    }
    let (_, body) = http_get(addr, "/metrics").await;
    let value = |name: &str| -> f64 {
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in {body}"))
    };
    assert_eq!(value("usersync_runs_total{result=\"success\"}"), 3.0);
    assert_eq!(
        value("usersync_directory_reads_total{kind=\"incremental\"}"),
        2.0
    );
    assert!(
        value("usersync_user_group_lists_total") <= 1.0,
        "at most the first run lists, before the watch has synced: {body}"
    );
    operator.abort();
}

async fn collisions_and_kept_groups_follow_the_policies(server: Server) {
    let Scenario {
        client,
        ns,
        mut ldap,
        base,
    } = Scenario::on(server, "e2e-policy").await;
    // The name the operator will want for Devs, already taken by a UserGroup someone made by hand.
    let taken = usersync::planner::names::plain_name("Devs").expect("a plain name");
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);
    let hand_made = UserGroup::new(
        &taken,
        usersync::api::UserGroupSpec {
            display_name: "Hand-made".into(),
            ..Default::default()
        },
    );
    groups
        .create(&Default::default(), &hand_made)
        .await
        .expect("hand-made group");

    let tasks = create_task_on(server, &client, &ns.name, &base).await;
    let keep =
        serde_json::json!({"spec": {"groupExtinctionPolicy": "Skip", "collisionPolicy": "Skip"}});
    tasks
        .patch("corp", &PatchParams::default(), &Patch::Merge(&keep))
        .await
        .expect("policies");
    let operator = start_operator(&client, &ns.name);
    let task = wait_for_run(&tasks, None).await;
    assert_eq!(
        task.status
            .as_ref()
            .and_then(|s| s.last_run.as_ref())
            .map(|r| r.skipped),
        Some(1)
    );
    assert_eq!(
        groups
            .get(&taken)
            .await
            .expect("hand-made")
            .spec
            .display_name,
        "Hand-made",
        "Skip leaves it alone"
    );

    // Ops vanishes from the directory: with Skip it stays, marked.
    delete(&mut ldap, &server.group_dn(&base, "Ops")).await;
    run_now(&tasks, "ops-gone").await;
    wait_for_run(&tasks, Some("ops-gone")).await;
    let all = user_groups(&groups).await;
    let ops = by_display(&all, "Ops");
    assert!(
        ops.annotations().contains_key("usersync.io/extinct-since"),
        "{:?}",
        ops.metadata.annotations
    );

    // Overwrite takes the hand-made object over.
    let overwrite = serde_json::json!({"spec": {"collisionPolicy": "Overwrite"}});
    tasks
        .patch("corp", &PatchParams::default(), &Patch::Merge(&overwrite))
        .await
        .expect("overwrite");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let object = groups.get(&taken).await.expect("taken");
        if object.spec.display_name == "Devs" {
            assert_eq!(
                object
                    .labels()
                    .get("usersync.io/synchronization")
                    .map(String::as_str),
                Some("corp")
            );
            assert!(
                object
                    .owner_references()
                    .iter()
                    .any(|o| o.kind == "UserSynchronization")
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Overwrite did not take the object over"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    operator.abort();
}

/// Each scenario runs on Samba AD and on OpenLDAP.
macro_rules! on_both_servers {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            use super::*;

            #[tokio::test]
            async fn samba() {
                super::$scenario(Server::Samba).await
            }

            #[tokio::test]
            async fn openldap() {
                super::$scenario(Server::OpenLdap).await
            }
        }
    )*};
}

on_both_servers!(
    sync_no_op_rename_and_removal,
    a_wrong_password_stalls_with_a_reason_and_keeps_what_was_synced,
    dry_run_previews_and_writes_no_user_group,
    collisions_and_kept_groups_follow_the_policies,
);
