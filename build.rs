//! The git commit the binary is built from, for `usersync version` and the build-info metric.

use std::process::Command;

fn main() {
    // A commit, a checkout or a change of the index changes the answer.
    for path in [".git/HEAD", ".git/index", ".git/logs/HEAD"] {
        println!("cargo:rerun-if-changed={path}");
    }
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let commit = match git(&["rev-parse", "HEAD"]) {
        Some(commit) => match git(&["status", "--porcelain", "--untracked-files=no"]) {
            Some(changes) if !changes.is_empty() => format!("{commit}-dirty"),
            _ => commit,
        },
        None => "unknown".to_owned(),
    };
    println!("cargo:rustc-env=USERSYNC_COMMIT={commit}");
}
