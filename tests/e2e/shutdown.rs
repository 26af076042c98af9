//! Graceful shutdown: SIGTERM while a run is in progress lets that run finish and report before
//! `usersync run` exits with success.

use std::time::Duration;

use kube::api::{Api, PostParams};
use usersync::api::UserSynchronization;
use usersync_testbed::env;

use crate::support::kube::Scenario;
use crate::support::operator::spawn_operator;
use crate::support::wait::condition;

#[tokio::test]
async fn sigterm_lets_the_run_in_progress_finish() {
    let Scenario { client, ns, .. } = Scenario::new("e2e-shutdown").await;
    // The whole standard fixture, members fetched 100 at a time: a run that lasts a while.
    let corp = format!("OU=Corp,{}", env::samba().base_dn);
    let tasks: Api<UserSynchronization> = Api::namespaced(client.clone(), &ns.name);
    let task: UserSynchronization = serde_json::from_value(serde_json::json!({
        "apiVersion": "usersync.io/v1alpha1", "kind": "UserSynchronization",
        "metadata": {"name": "corp"},
        "spec": {
            "targetGroup": "all-users",
            "server": {"urls": [env::samba().ldaps_url], "credentialsSecretRef": {"name": "bind"}, "tls": {"caSecretRef": {"name": "ca"}}},
            "directory": {"baseDN": corp},
        },
    }))
    .expect("task");

    let (mut operator, log_path) = spawn_operator(
        &ns.name,
        &["--member-range", "100", "--listen", "127.0.0.1:0"],
        "info",
    );
    tasks
        .create(&PostParams::default(), &task)
        .await
        .expect("task created");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let logs = std::fs::read_to_string(&log_path).unwrap_or_default();
        if logs.contains("run started") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no run started: {logs}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = operator.id().expect("running").to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let exit = tokio::time::timeout(Duration::from_secs(120), operator.wait())
        .await
        .expect("usersync run stops after SIGTERM")
        .expect("exit status");
    let logs = std::fs::read_to_string(&log_path).unwrap_or_default();
    let _ = std::fs::remove_file(&log_path);
    assert!(exit.success(), "{exit}: {logs}");
    // In this order: the run began, the signal came, the run finished.
    let started = logs.find("run started").expect("run started");
    let signalled = logs
        .find("shutdown requested")
        .expect("the signal was seen");
    let finished = logs.find("run finished").expect("the run finished");
    assert!(started < signalled && signalled < finished, "{logs}");
    let task = tasks.get("corp").await.expect("task");
    assert_eq!(
        condition(&task, "Ready"),
        Some(("True".into(), "Synced".into())),
        "the interrupted run reported: {:?}",
        task.status
    );
}

/// SIGTERM while the operator is still starting (its controllers not yet listening, or their first
/// lists not done): it still stops, with success, a few seconds later.
#[tokio::test]
async fn sigterm_during_start_up_stops_the_operator() {
    let Scenario { ns, .. } = Scenario::new("e2e-early-stop").await;
    for delay in [0, 10, 30, 100, 1000] {
        let (mut operator, log_path) =
            spawn_operator(&ns.name, &["--listen", "127.0.0.1:0"], "info");
        // The process has installed its signal handler once it logs anything at all.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .is_empty()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no controller started"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let pid = operator.id().expect("running").to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let exit = tokio::time::timeout(Duration::from_secs(15), operator.wait())
            .await
            .unwrap_or_else(|_| {
                panic!("SIGTERM {delay} ms into start-up: still running after 15 s")
            })
            .expect("exit status");
        let logs = std::fs::read_to_string(&log_path).unwrap_or_default();
        let _ = std::fs::remove_file(&log_path);
        assert!(exit.success(), "{delay} ms: {exit}: {logs}");
    }
}
