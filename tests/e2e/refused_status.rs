//! An operator that may not write a task's status (its Role lacks `usersynchronizations/status`)
//! neither runs the sync nor retries at a fixed pace: each refused status write waits longer than
//! the one before (5 s doubling, with jitter), by the apiserver's audit log.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use usersync_testbed::env;

use crate::support::kube::{
    Scenario, account_with_rules, create_task, rule, service_account_client,
};
use crate::support::operator::InProcess;
use crate::support::wait::eventually;

/// The operator's rights in `ns`, less the status of tasks.
async fn without_status_rights(admin: &kube::Client, ns: &str, name: &str) {
    let all = [
        "get", "list", "watch", "create", "update", "patch", "delete",
    ];
    let rules = vec![
        rule(
            "usersync.io",
            &["usersynchronizations"],
            &["get", "list", "watch"],
        ),
        rule("usersync.io", &["usergroups", "usergroups/status"], &all),
        rule("", &["secrets", "configmaps"], &["get", "list", "watch"]),
        rule("events.k8s.io", &["events"], &["create", "patch"]),
    ];
    account_with_rules(admin, ns, name, rules).await;
}

/// When the apiserver received each refused status write of the task `corp` in `ns`.
fn refused_status_writes(ns: &str) -> Vec<Timestamp> {
    let log = std::fs::read_to_string(env::kube().audit_log).unwrap_or_default();
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|e| {
            e["objectRef"]["namespace"] == ns
                && e["objectRef"]["resource"] == "usersynchronizations"
                && e["objectRef"]["subresource"] == "status"
                && e["responseStatus"]["code"] == 403
        })
        .filter_map(|e| e["requestReceivedTimestamp"].as_str()?.parse().ok())
        .collect()
}

#[tokio::test]
async fn a_refused_status_write_backs_off_instead_of_re_running() {
    let Scenario {
        client, ns, base, ..
    } = Scenario::new("e2e-refused").await;
    without_status_rights(&client, &ns.name, "no-status").await;
    create_task(&client, &ns.name, &base).await;
    let operator_client = service_account_client(&client, &ns.name, "no-status").await;
    let operator = InProcess::watching(&ns.name).start(&operator_client);
    // Waits of 5-10 s, 10-20 s and 20-40 s: four refusals within 75 s.
    eventually(
        Duration::from_secs(80),
        "four refused status writes",
        || async { refused_status_writes(&ns.name).len() >= 4 },
    )
    .await;
    operator.abort();
    let times = refused_status_writes(&ns.name);
    let gaps: Vec<f64> = times
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).as_secs_f64())
        .collect();
    assert!((4.5..=11.0).contains(&gaps[0]), "{gaps:?}");
    assert!((9.5..=21.0).contains(&gaps[1]), "{gaps:?}");
    assert!((19.5..=41.0).contains(&gaps[2]), "{gaps:?}");
    let groups = crate::support::audit::audit_writes(&ns.name);
    assert_eq!(
        groups, 0,
        "no run went ahead without a status to report it on"
    );
}
