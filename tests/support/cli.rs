//! The `usersync` CLI against the test bed.

use std::path::{Path, PathBuf};
use std::process::Command;

use usersync_testbed::env;

use super::command::run_ok;

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
/// what it prints.
pub fn cli_dry_run(file: &Path) -> String {
    cli_dry_run_of(&[file])
}

/// `usersync sync --dry-run` of the objects `files` hold together (`-f` for each).
pub fn cli_dry_run_of(files: &[&Path]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_usersync"));
    command.args(["sync", "--dry-run"]);
    for file in files {
        command.arg("-f").arg(file);
    }
    run_ok(
        command
            .args(["--ca-file", &env::samba().ca_file])
            .env("KUBECONFIG", env::kube().kubeconfig),
    )
}
