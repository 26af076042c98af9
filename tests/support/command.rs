//! Running tools such as helm and kubectl to completion.

use std::process::Command;

/// Runs a command to completion; panics with its stderr unless it succeeds. Returns its stdout.
pub fn run_ok(command: &mut Command) -> String {
    let shown = format!("{command:?}");
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{shown} cannot run: {e}"));
    assert!(
        out.status.success(),
        "{shown}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
