//! The password never shows: not in the operator's logs (at debug level), not in Events, not on
//! status. Runs the real `usersync run` binary against the test bed.

use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use usersync_testbed::env;

use crate::support::kube::{Scenario, create_task, secrets};
use crate::support::operator::spawn_operator;
use crate::support::wait::{condition, wait_for_condition, wait_for_run};

#[tokio::test]
async fn passwords_stay_out_of_logs_events_and_status() {
    let Scenario {
        client,
        ns,
        ldap: _,
        base,
    } = Scenario::new("e2e-secret").await;
    let wrong = "Wr0ng-But-Secret-Passw0rd";
    secrets(&client, &ns.name, wrong).await;
    let tasks = create_task(&client, &ns.name, &base).await;

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let (mut operator, log_path) = spawn_operator(
        &ns.name,
        &["--listen", &listen, "--reference-poll-seconds", "1"],
        "debug",
    );
    let task = wait_for_run(&tasks, None).await;
    assert_eq!(
        condition(&task, "Stalled"),
        Some(("True".into(), "InvalidCredentials".into()))
    );

    // Now the right password: the run succeeds, with the real password in use.
    let right = env::samba().admin_password;
    secrets(&client, &ns.name, &right).await;
    let task = wait_for_condition(&tasks, "Ready", "True", "Synced").await;

    let events: Api<Event> = Api::namespaced(client.clone(), &ns.name);
    let events = serde_json::to_string(
        &events
            .list(&ListParams::default())
            .await
            .expect("events")
            .items,
    )
    .expect("json");
    assert!(
        events.contains("InvalidCredentials"),
        "the failure was reported in an Event"
    );
    let status = serde_json::to_string(&task.status).expect("json");

    operator.kill().await.expect("stop the operator");
    let logs = std::fs::read_to_string(&log_path).expect("operator log");
    let _ = std::fs::remove_file(&log_path);
    assert!(
        logs.contains("InvalidCredentials"),
        "the logs report the failure"
    );
    check_run_logs(&logs, &ns.name);
    for password in [wrong, right.as_str()] {
        for (place, text) in [("logs", &logs), ("Events", &events), ("status", &status)] {
            assert!(
                !text.contains(password),
                "a password appears in the {place}"
            );
        }
    }
}

/// Each run's lines carry the task, its namespace and a run id of their own, down to the directory
/// layer's lines written from the task that reads the directory.
fn check_run_logs(logs: &str, namespace: &str) {
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let run_of = |line: &serde_json::Value| {
        let span = &line["span"];
        (span["name"] == "run").then(|| {
            assert_eq!(span["task"], "corp", "{line}");
            assert_eq!(span["namespace"], namespace, "{line}");
            span["run_id"].as_str().expect("run_id").to_owned()
        })
    };
    let finished: Vec<(String, String)> = lines
        .iter()
        .filter(|l| matches!(l["message"].as_str(), Some("run finished" | "run failed")))
        .map(|l| {
            let reason = l["reason"].as_str().unwrap_or_default().to_owned();
            (
                run_of(l).expect("a run's outcome is logged inside its span"),
                reason,
            )
        })
        .collect();
    assert!(
        finished.iter().any(|(_, r)| r == "InvalidCredentials")
            && finished.iter().any(|(_, r)| r == "Synced"),
        "{finished:?}"
    );
    let ids: std::collections::HashSet<&String> = finished.iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), finished.len(), "every run has its own id");
    let (synced, _) = finished
        .iter()
        .find(|(_, r)| r == "Synced")
        .expect("synced");
    assert!(
        lines.iter().any(|l| l["message"] == "directory read"
            && l["target"]
                .as_str()
                .is_some_and(|t| t.starts_with("usersync::directory"))
            && run_of(l).as_ref() == Some(synced)),
        "the directory layer logs under the run's id"
    );
}
