//! A spec that admission accepts but validation refuses costs its own task alone: the real
//! `usersync run` binary reports it within a second, opens no LDAP connection, writes no UserGroup,
//! stays up, and keeps syncing the other task it serves.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kube::api::PostParams;
use usersync::api::UserSynchronization;

use crate::support::audit::writes_except;
use crate::support::kube::{Scenario, create_task, names_of_task, run_now};
use crate::support::operator::spawn_operator;
use crate::support::wait::{assert_synced, condition, wait_for_run};

/// Counts the connections made to a listener on loopback until the test ends.
async fn connection_counter() -> (u16, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listener");
    let port = listener.local_addr().expect("address").port();
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    let accepting = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (port, count, accepting)
}

#[tokio::test]
async fn an_invalid_spec_stalls_its_task_alone_before_any_io() {
    let Scenario {
        client, ns, base, ..
    } = Scenario::new("e2e-invalid").await;
    let tasks = create_task(&client, &ns.name, &base).await;
    let (mut operator, log_path) = spawn_operator(&ns.name, &["--listen", "127.0.0.1:0"], "info");
    assert_synced(&wait_for_run(&tasks, None).await);

    // The CRD's rules let this schedule through (five fields); it never fires (February 31st).
    let (port, connections, accepting) = connection_counter().await;
    let bad: UserSynchronization = serde_json::from_value(serde_json::json!({
        "apiVersion": "usersync.io/v1alpha1", "kind": "UserSynchronization",
        "metadata": {"name": "bad"},
        "spec": {
            "targetGroup": "bad-root",
            "schedule": "0 0 31 2 *",
            "server": {"urls": [format!("ldaps://127.0.0.1:{port}")], "credentialsSecretRef": {"name": "bind"}},
            "directory": {"baseDN": base},
        },
    }))
    .expect("task");
    tasks
        .create(&PostParams::default(), &bad)
        .await
        .expect("admission accepts the task");
    let created = Instant::now();
    let refused = loop {
        let task = tasks.get("bad").await.expect("task");
        if condition(&task, "Stalled").is_some() {
            break task;
        }
        assert!(
            created.elapsed() < Duration::from_secs(5),
            "no status after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let elapsed = created.elapsed();
    assert!(
        elapsed <= Duration::from_secs(1),
        "reported after {elapsed:?}"
    );
    assert_eq!(
        condition(&refused, "Stalled"),
        Some(("True".into(), "InvalidSpec".into()))
    );
    assert_eq!(
        condition(&refused, "Ready"),
        Some(("False".into(), "InvalidSpec".into()))
    );
    let stalled = refused
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Stalled"))
        .expect("Stalled");
    assert!(
        stalled.message.starts_with("spec.schedule: "),
        "the field is named: {}",
        stalled.message
    );

    // The other task keeps syncing, in the same process, which is still up.
    run_now(&tasks, "after-bad").await;
    assert_synced(&wait_for_run(&tasks, Some("after-bad")).await);
    let exited = operator.try_wait().expect("process state");
    let logs = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(exited.is_none(), "usersync run exited ({exited:?}): {logs}");

    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "the invalid task connected to its server"
    );
    accepting.abort();
    assert_eq!(
        writes_except(&ns.name, &names_of_task(&client, &ns.name, "corp").await),
        0,
        "the invalid task wrote UserGroups"
    );
    operator.kill().await.expect("stop the operator");
    let _ = std::fs::remove_file(&log_path);
}
