//! The apiserver's audit log, which records every write: what tests count to show that a run wrote
//! nothing, or who wrote.

use std::collections::BTreeMap;

use usersync_testbed::env;

/// UserGroup writes in namespace `ns`.
pub fn audit_writes(ns: &str) -> usize {
    let log = std::fs::read_to_string(env::kube().audit_log).unwrap_or_default();
    let needle = format!("\"namespace\":\"{ns}\"");
    log.lines()
        .filter(|l| l.contains("\"resource\":\"usergroups\"") && l.contains(&needle))
        .count()
}

/// UserGroup writes in namespace `ns` after the first `skip`, one line each (verb, name,
/// subresource, response code): what an assertion on a count shows when it fails.
pub fn audit_write_lines(ns: &str, skip: usize) -> Vec<String> {
    write_lines_in(std::path::Path::new(&env::kube().audit_log), ns)
        .into_iter()
        .skip(skip)
        .collect()
}

/// [`audit_write_lines`] of the audit log at `log` (a control plane of a test's own).
pub fn write_lines_in(log: &std::path::Path, ns: &str) -> Vec<String> {
    let log = std::fs::read_to_string(log).unwrap_or_default();
    let needle = format!("\"namespace\":\"{ns}\"");
    log.lines()
        .filter(|l| l.contains("\"resource\":\"usergroups\"") && l.contains(&needle))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|e| {
            format!(
                "{} {} {} {}",
                e["verb"].as_str().unwrap_or_default(),
                e["objectRef"]["name"].as_str().unwrap_or_default(),
                e["objectRef"]["subresource"].as_str().unwrap_or_default(),
                e["responseStatus"]["code"]
            )
        })
        .collect()
}

/// Writes in namespace `ns` per user name, leader-election Leases left out.
pub fn audit_writers(ns: &str) -> BTreeMap<String, usize> {
    let log = std::fs::read_to_string(env::kube().audit_log).unwrap_or_default();
    let mut writers = BTreeMap::new();
    for line in log.lines() {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let verb = event["verb"].as_str().unwrap_or_default();
        if event["objectRef"]["namespace"] != ns
            || event["objectRef"]["resource"] == "leases"
            || !matches!(verb, "create" | "update" | "patch" | "delete")
        {
            continue;
        }
        let user = event["user"]["username"].as_str().unwrap_or_default();
        *writers.entry(user.to_owned()).or_default() += 1;
    }
    writers
}

/// UserGroup writes in `ns` to objects other than `others` (the UserGroups of the namespace's
/// other tasks): what a task that must write nothing wrote.
pub fn writes_except(ns: &str, others: &std::collections::BTreeSet<String>) -> usize {
    let log = std::fs::read_to_string(env::kube().audit_log).unwrap_or_default();
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|e| {
            e["objectRef"]["resource"] == "usergroups"
                && e["objectRef"]["namespace"] == ns
                && e["objectRef"]["name"]
                    .as_str()
                    .is_some_and(|name| !others.contains(name))
        })
        .count()
}

/// Writes in namespace `ns` (leader-election Leases left out) as (user, when the apiserver received
/// the request), in the order the log has them.
pub fn audit_write_times(ns: &str) -> Vec<(String, k8s_openapi::jiff::Timestamp)> {
    let log = std::fs::read_to_string(env::kube().audit_log).unwrap_or_default();
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| {
            event["objectRef"]["namespace"] == ns
                && event["objectRef"]["resource"] != "leases"
                && matches!(
                    event["verb"].as_str(),
                    Some("create" | "update" | "patch" | "delete")
                )
        })
        .filter_map(|event| {
            let user = event["user"]["username"].as_str()?.to_owned();
            let at = event["requestReceivedTimestamp"].as_str()?.parse().ok()?;
            Some((user, at))
        })
        .collect()
}
