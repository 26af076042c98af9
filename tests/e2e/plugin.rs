//! The day-2 commands, the real binary against the test bed and a real task on OpenLDAP: `get`
//! (table and JSON), `run-now --wait`, `suspend` and `resume`, `wait` (the new generation's run, a
//! failed run, a timeout), `approve` (one braked run let through, its removals shown first),
//! `explain`, `version`, `completion`, their exit codes, and the binary as a kubectl plugin.

use std::process::{Command, Stdio};
use std::time::Duration;

use kube::api::Api;
use usersync::api::UserSynchronization;
use usersync_testbed::env;

use crate::support::cli::{run_with_code, samba_task, samba_task_file};
use crate::support::kube::{Scenario, create_task_on, patch_spec};
use crate::support::ldap::{Server, delete};
use crate::support::operator::start_operator;
use crate::support::wait::{eventually, wait_for_run};

/// `usersync ARGS` against the test bed's apiserver, standard input closed: (exit code, stdout,
/// stderr). Awaited, not blocking: the in-process operator runs on the test's runtime meanwhile.
async fn usersync(args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_usersync"))
        .args(args)
        .env("KUBECONFIG", env::kube().kubeconfig)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("usersync runs");
    (
        out.status.code().expect("usersync exits"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn last_sync(tasks: &Api<UserSynchronization>) -> Option<String> {
    let task = tasks.get("corp").await.expect("task");
    task.status
        .and_then(|s| s.last_sync_time)
        .map(|t| t.0.to_string())
}

#[tokio::test]
async fn day_two_commands_drive_a_real_task() {
    let scenario = Scenario::on(Server::OpenLdap, "e2e-plugin").await;
    let (client, ns) = (&scenario.client, scenario.ns.name.as_str());
    let tasks = create_task_on(Server::OpenLdap, client, ns, &scenario.base).await;
    let operator = start_operator(client, ns);
    wait_for_run(&tasks, None).await;

    // get: a table for people, JSON for scripts.
    let (code, table, _) = usersync(&["get", "-n", ns]).await;
    assert_eq!(code, 0);
    let header = table.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("NAME") && header.contains("READY"),
        "{table}"
    );
    assert!(table.lines().any(|l| l.starts_with("corp ")), "{table}");
    let (code, json, _) = usersync(&["get", "-n", ns, "-o", "json"]).await;
    assert_eq!(code, 0);
    let rows: serde_json::Value = serde_json::from_str(&json).expect("get -o json parses");
    let row = &rows[0];
    assert_eq!(
        (row["name"].as_str(), row["ready"].as_str()),
        (Some("corp"), Some("True")),
        "{json}"
    );
    assert_eq!(row["users"].as_i64(), Some(2), "{json}");
    assert_eq!(row["current"].as_bool(), Some(true), "{json}");
    let (_, yaml, _) = usersync(&["get", "corp", "-n", ns, "-o", "yaml"]).await;
    assert!(yaml.contains("name: corp"), "{yaml}");

    // run-now --wait: the run it asked for, finished.
    let (code, out, err) =
        usersync(&["run-now", "corp", "-n", ns, "--wait", "--timeout", "60s"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("run finished: 2 users"), "{out}");
    let handled = tasks
        .get("corp")
        .await
        .expect("task")
        .status
        .and_then(|s| s.last_handled_run_now);
    assert!(handled.is_some_and(|h| h.starts_with("cli-")));

    // suspend stops the timed runs; resume starts them again.
    patch_spec(&tasks, serde_json::json!({"interval": "2s"})).await;
    let (code, _, _) = usersync(&["suspend", "corp", "-n", ns]).await;
    assert_eq!(code, 0);
    assert!(tasks.get("corp").await.expect("task").spec.suspend);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let suspended_at = last_sync(&tasks).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        last_sync(&tasks).await,
        suspended_at,
        "no run while suspended"
    );
    let (code, _, _) = usersync(&["resume", "corp", "-n", ns]).await;
    assert_eq!(code, 0);
    eventually(
        Duration::from_secs(20),
        "a timed run after resume",
        || async { last_sync(&tasks).await != suspended_at },
    )
    .await;
    patch_spec(&tasks, serde_json::json!({"interval": "1h"})).await;

    // wait: the run of the generation the spec has now.
    patch_spec(
        &tasks,
        serde_json::json!({"description": "Synced by usersync"}),
    )
    .await;
    let (code, out, err) = usersync(&[
        "wait",
        "corp",
        "-n",
        ns,
        "--for",
        "ready",
        "--timeout",
        "60s",
    ])
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let task = tasks.get("corp").await.expect("task");
    let observed = task.status.as_ref().and_then(|s| s.observed_generation);
    assert_eq!(observed, task.metadata.generation);

    // A generation whose run fails: exit 1 with the reason.
    let missing = format!("ou=missing,{}", scenario.base);
    patch_spec(
        &tasks,
        serde_json::json!({"directory": {"baseDN": missing}}),
    )
    .await;
    let (code, _, err) = usersync(&["wait", "corp", "-n", ns, "--timeout", "60s"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("BaseDNNotFound"), "{err}");

    // No operator, no run: exit 3 once the time is up.
    operator.abort();
    patch_spec(
        &tasks,
        serde_json::json!({"directory": {"baseDN": scenario.base}}),
    )
    .await;
    let (code, _, err) = usersync(&["wait", "corp", "-n", ns, "--timeout", "3s"]).await;
    assert_eq!(code, 3, "{err}");
    let (code, _, err) = usersync(&["get", "nobody", "-n", ns]).await;
    assert_eq!(code, 2, "{err}");
}

#[tokio::test]
async fn approve_shows_the_held_back_removals_and_lets_one_run_through() {
    let mut scenario = Scenario::on(Server::OpenLdap, "e2e-approve").await;
    let (client, ns) = (scenario.client.clone(), scenario.ns.name.clone());
    let ns = ns.as_str();
    let tasks = create_task_on(Server::OpenLdap, &client, ns, &scenario.base).await;
    patch_spec(
        &tasks,
        serde_json::json!({"maxDeletions": 0, "interval": "1h"}),
    )
    .await;
    let operator = start_operator(&client, ns);
    wait_for_run(&tasks, None).await;
    let run_now =
        async || usersync(&["run-now", "corp", "-n", ns, "--wait", "--timeout", "60s"]).await;
    assert_eq!(run_now().await.0, 0);
    let (code, _, _) = usersync(&["approve", "corp", "-n", ns, "--yes"]).await;
    assert_eq!(code, 1, "nothing to approve before a run is held back");

    // A group leaves the directory: the run removes nothing and says so.
    let synced = crate::support::kube::user_groups(&Api::namespaced(client.clone(), ns)).await;
    let ops_object = crate::support::kube::by_display(&synced, "Ops")
        .metadata
        .name
        .clone();
    let ops_object = ops_object.expect("a name");
    let ops = Server::OpenLdap.group_dn(&scenario.base, "Ops");
    delete(&mut scenario.ldap, &ops).await;
    let (code, _, err) = run_now().await;
    assert_eq!(code, 1, "a held-back run is not a success: {err}");
    assert!(err.contains("DeletionThresholdExceeded"), "{err}");
    let (_, json, _) = usersync(&["get", "corp", "-n", ns, "-o", "json"]).await;
    let rows: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(rows[0]["heldRemovals"].as_i64(), Some(1), "{json}");

    // Without --yes and without a terminal, nothing is approved.
    let (code, out, err) = usersync(&["approve", "corp", "-n", ns]).await;
    assert_eq!(code, 2, "{out}{err}");
    let shown = format!("UserGroup {ops_object}");
    assert!(out.contains(&shown), "the removals are shown first: {out}");
    let annotations = tasks.get("corp").await.expect("task").metadata.annotations;
    assert!(
        !annotations
            .unwrap_or_default()
            .contains_key("usersync.io/approve-deletions")
    );

    // Approved: one run removes the group.
    let (code, out, err) = usersync(&[
        "approve",
        "corp",
        "-n",
        ns,
        "--yes",
        "--wait",
        "--timeout",
        "60s",
    ])
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 removed"), "{out}");
    let groups: Vec<String> =
        crate::support::kube::user_groups(&Api::namespaced(client.clone(), ns))
            .await
            .iter()
            .map(|g| g.spec.display_name.clone())
            .collect();
    assert!(!groups.contains(&"Ops".to_owned()), "{groups:?}");

    // The approval was for that run alone: the next removal is held back again.
    let devs = Server::OpenLdap.group_dn(&scenario.base, "Devs");
    delete(&mut scenario.ldap, &devs).await;
    assert_eq!(run_now().await.0, 1);
    operator.abort();
}

#[tokio::test]
async fn explain_version_completion_and_argument_errors() {
    let (code, out, _) = usersync(&["explain", "invalidcredentials"]).await;
    assert_eq!(code, 0);
    assert!(
        out.starts_with("InvalidCredentials (conditions)") && out.contains("What to do:"),
        "{out}"
    );
    let (code, _, err) = usersync(&["explain", "NoSuchReason"]).await;
    assert_eq!(code, 2, "{err}");
    let (code, json, _) = usersync(&["explain", "-o", "json"]).await;
    assert_eq!(code, 0);
    let reasons: serde_json::Value = serde_json::from_str(&json).expect("explain -o json");
    assert!(reasons.as_array().is_some_and(|r| r.len() > 30), "{json}");

    let (code, json, _) = usersync(&["version", "-o", "json"]).await;
    assert_eq!(code, 0);
    let version: serde_json::Value = serde_json::from_str(&json).expect("version -o json");
    assert_eq!(version["version"].as_str(), Some(env!("CARGO_PKG_VERSION")));
    let commit = version["commit"].as_str().unwrap_or_default();
    assert!(commit.len() >= 40 && commit != "unknown", "{json}");

    let (code, script, _) = usersync(&["completion", "bash"]).await;
    assert_eq!(code, 0);
    assert!(
        script.contains("run-now") && script.contains("usersync"),
        "{script}"
    );
    let (code, _, err) = usersync(&["run", "--log-format", "xml"]).await;
    assert_eq!(code, 2, "an unknown log format is refused: {err}");
    let (_, help, _) = usersync(&["--help"]).await;
    assert!(help.contains("Exit codes:"), "{help}");
}

#[tokio::test]
async fn the_binary_is_a_kubectl_plugin() {
    let scenario = Scenario::on(Server::OpenLdap, "e2e-kubectl").await;
    let ns = scenario.ns.name.as_str();
    let tasks = create_task_on(Server::OpenLdap, &scenario.client, ns, &scenario.base).await;
    let operator = start_operator(&scenario.client, ns);
    wait_for_run(&tasks, None).await;
    let dir = std::env::temp_dir().join(format!("{ns}-plugin"));
    std::fs::create_dir_all(&dir).expect("plugin dir");
    let plugin = dir.join("kubectl-usersync");
    let _ = std::fs::remove_file(&plugin);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_usersync"), &plugin).expect("symlink");
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let kubectl = |args: &[&str]| {
        run_with_code(
            Command::new("kubectl")
                .arg("usersync")
                .args(args)
                .env("PATH", &path)
                .env("KUBECONFIG", env::kube().kubeconfig),
        )
    };
    let (code, json, err) = kubectl(&["get", "-n", ns, "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let rows: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(rows[0]["name"].as_str(), Some("corp"), "{json}");
    let (_, help, _) = kubectl(&["--help"]);
    assert!(help.contains("kubectl usersync"), "{help}");

    // kubectl's flags name the kubeconfig and its context; KUBECONFIG is not set.
    let kubeconfig = env::kube().kubeconfig;
    let context = kube::config::Kubeconfig::read_from(&kubeconfig)
        .expect("kubeconfig")
        .current_context
        .expect("a current context");
    let with_flags = |context: &str| {
        run_with_code(
            Command::new(env!("CARGO_BIN_EXE_usersync"))
                .args(["get", "-n", ns, "-o", "json", "--kubeconfig", &kubeconfig])
                .args(["--context", context])
                .env_remove("KUBECONFIG")
                .stdin(Stdio::null()),
        )
    };
    let (code, json, err) = with_flags(&context);
    assert_eq!(code, 0, "{err}");
    assert!(json.contains("\"corp\""), "{json}");
    let (code, _, err) = with_flags("no-such-context");
    assert_eq!(code, 2, "{err}");
    operator.abort();
}

#[tokio::test]
async fn progress_shows_on_a_terminal_and_not_on_a_pipe() {
    let scenario = Scenario::new("e2e-progress").await;
    let task = samba_task(&scenario.base);
    let file = samba_task_file(&scenario.ns.name, task);
    let file = file.to_string_lossy();
    let ca = env::samba().ca_file;
    let args = ["preview", "-f", &file, "--ca-file", &ca];
    let (code, out, err) = usersync(&args).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("users:"), "{out}");
    assert!(err.is_empty(), "nothing on a pipe: {err}");
    // RUST_LOG speaks for every command, on standard error.
    let (code, out, logged) = run_with_code(
        Command::new(env!("CARGO_BIN_EXE_usersync"))
            .args(args)
            .env("RUST_LOG", "usersync=debug")
            .stdin(Stdio::null()),
    );
    assert_eq!(code, 0, "{logged}");
    assert!(logged.contains("directory read"), "{logged}");
    assert!(!out.contains("directory read"), "{out}");
    // The same under a pseudo-terminal (`script` gives the command one).
    let line = format!("{} {}", env!("CARGO_BIN_EXE_usersync"), args.join(" "));
    let (code, shown, err) = run_with_code(
        Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .env("KUBECONFIG", env::kube().kubeconfig)
            .stdin(Stdio::null()),
    );
    assert_eq!(code, 0, "{err}");
    assert!(shown.contains("reading the directory"), "{shown}");
    assert!(shown.contains("users:"), "{shown}");

    // preview and browse as documents; browse shows each entry's DN.
    let devs = Server::Samba.group_dn(&scenario.base, "Devs");
    let with = async |command: &str, output: &str| {
        let (code, out, err) =
            usersync(&[command, "-f", &file, "--ca-file", &ca, "-o", output]).await;
        assert_eq!(code, 0, "{err}");
        out
    };
    let preview: serde_json::Value =
        serde_json::from_str(&with("preview", "json").await).expect("preview -o json");
    assert_eq!(preview["users"].as_u64(), Some(2), "{preview}");
    let groups = preview["groups"].as_array().cloned().unwrap_or_default();
    assert!(
        groups.iter().any(|g| g["dn"]
            .as_str()
            .is_some_and(|dn| dn.eq_ignore_ascii_case(&devs))),
        "{preview}"
    );
    let picked: serde_json::Value =
        serde_norway::from_str(&with("browse", "yaml").await).expect("browse -o yaml");
    let base = picked["directory"]["baseDN"].as_str().unwrap_or_default();
    assert!(base.eq_ignore_ascii_case(&scenario.base), "{picked}");
    let dns = picked["directory"]["groups"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        dns.iter()
            .any(|dn| dn.as_str().is_some_and(|dn| dn.eq_ignore_ascii_case(&devs))),
        "{picked}"
    );
    let tree = with("browse", "text").await;
    assert!(tree.to_lowercase().contains(&devs.to_lowercase()), "{tree}");
}
