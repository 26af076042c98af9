//! The password never shows: not in the operator's logs and stderr (at trace level, every crate's
//! lines included), not in Events, not on status, not in metrics, whether it went in a simple bind
//! or in NTLM. Runs the real `usersync run` binary against the test bed.

use k8s_openapi::ByteString;
use kube::api::{Patch, PatchParams};
use usersync_testbed::env;

use crate::support::kube::{Scenario, create_task, events, run_now, secrets};
use crate::support::operator::{http_get, spawn_operator};
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
        "trace",
    );
    let task = wait_for_run(&tasks, None).await;
    assert_eq!(
        condition(&task, "Stalled"),
        Some(("True".into(), "InvalidCredentials".into()))
    );

    // Now the right password: the run succeeds, with the real password in use.
    let right = env::samba().admin_password;
    secrets(&client, &ns.name, &right).await;
    wait_for_condition(&tasks, "Ready", "True", "Synced").await;

    // The same password in an NTLM bind.
    let ntlm = serde_json::json!({"spec": {"server": {"auth": "NTLM"}}});
    tasks
        .patch("corp", &PatchParams::default(), &Patch::Merge(&ntlm))
        .await
        .expect("switch to NTLM");
    run_now(&tasks, "ntlm").await;
    let task = wait_for_run(&tasks, Some("ntlm")).await;
    assert_eq!(
        condition(&task, "Ready"),
        Some(("True".into(), "Synced".into())),
        "{:?}",
        task.status
    );
    assert!(
        task.status.as_ref().and_then(|s| s.observed_generation) >= task.metadata.generation,
        "the NTLM spec was the one that ran"
    );
    let (_, metrics) = http_get(listen.parse().expect("address"), "/metrics").await;
    assert!(metrics.contains("usersync_"), "metrics were served");

    let events = serde_json::to_string(&events(&client, &ns.name).await).expect("json");
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
    let traced = |target: &str| {
        logs.lines().any(|l| {
            l.contains(r#""level":"TRACE""#) && l.contains(&format!(r#""target":"{target}"#))
        })
    };
    assert!(
        traced("rustls") && traced("kube_client") && traced("hyper"),
        "trace lines of the TLS, HTTP and Kubernetes clients are in the log"
    );
    let places = [
        ("logs and stderr", &logs),
        ("Events", &events),
        ("status", &status),
        ("metrics", &metrics),
    ];
    for password in [wrong, right.as_str()] {
        let base64 = serde_json::to_value(ByteString(password.as_bytes().to_vec())).expect("b64");
        let base64 = base64
            .as_str()
            .expect("a string")
            .trim_end_matches('=')
            .to_owned();
        for form in [password, base64.as_str()] {
            for (place, text) in places {
                assert!(!text.contains(form), "a password appears in the {place}");
            }
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
