//! The `usersync` CLI against the test bed.

use std::path::{Path, PathBuf};
use std::process::Command;

use usersync_testbed::env;

/// The task `corp` syncing `base` of Samba into `all-users`, with the `bind` Secret.
pub fn samba_task(base: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "usersync.io/v1alpha1", "kind": "UserSynchronization",
        "metadata": {"name": "corp"},
        "spec": {
            "targetGroup": "all-users",
            "server": {"urls": [env::samba().ldaps_url], "credentialsSecretRef": {"name": "bind"}},
            "directory": {"baseDN": base},
        },
    })
}

/// A task file for the CLI in `ns`: `task` and the `bind` Secret with Samba's administrator.
pub fn samba_task_file(ns: &str, mut task: serde_json::Value) -> PathBuf {
    let samba = env::samba();
    task["metadata"]["namespace"] = ns.into();
    let secret = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bind", "namespace": ns},
        "stringData": {"username": format!("{}\\Administrator", samba.domain), "password": samba.admin_password},
    });
    let file = std::env::temp_dir().join(format!("{ns}-task.yaml"));
    std::fs::write(&file, format!("{task}\n---\n{secret}\n")).expect("task file");
    file
}

/// `usersync sync --dry-run` of a task file against the test bed's apiserver, trusting Samba's CA:
/// what it prints. Its exit code says whether changes are pending (1) or not (0), as the plan does.
pub fn cli_dry_run(file: &Path) -> String {
    cli_dry_run_of(&[file])
}

/// `usersync sync --dry-run` of the objects `files` hold together (`-f` for each).
pub fn cli_dry_run_of(files: &[&Path]) -> String {
    let (code, out) = dry_run_with(files, &[]);
    let pending = !out.contains("create 0, update 0, remove 0,") || out.contains("brake:");
    assert_eq!(
        code,
        i32::from(pending),
        "exit code of a plan that {}:\n{out}",
        if pending {
            "changes something"
        } else {
            "changes nothing"
        }
    );
    out
}

/// `usersync sync --dry-run` with `extra` arguments: its exit code and stdout; panics on an error
/// (exit 2 or more).
pub fn dry_run_with(files: &[&Path], extra: &[&str]) -> (i32, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_usersync"));
    command.args(["sync", "--dry-run"]).args(extra);
    for file in files {
        command.arg("-f").arg(file);
    }
    let (code, out, err) = run_with_code(
        command
            .args(["--ca-file", &env::samba().ca_file])
            .env("KUBECONFIG", env::kube().kubeconfig),
    );
    assert!(code <= 1, "sync --dry-run failed ({code}): {err}");
    (code, out)
}

/// Runs a command to completion: its exit code and stdout. Panics when it cannot run or is killed.
pub fn run_with_code(command: &mut Command) -> (i32, String, String) {
    let shown = format!("{command:?}");
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{shown} cannot run: {e}"));
    let code = out
        .status
        .code()
        .unwrap_or_else(|| panic!("{shown} was killed"));
    (
        code,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
