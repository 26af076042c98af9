//! What GitOps tools make of a task: the README's "GitOps health" table, and the test bed's helper
//! (`tests/gitops/`) that computes kstatus's verdict and runs the Argo CD health check on an object.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The Argo CD resource customization for UserSynchronization.
pub const CUSTOMIZATION: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/gitops/argocd/usersync.io/UserSynchronization"
);

/// One row of the README's table: a state of a task and what each reader says about it.
#[derive(Clone, Debug)]
pub struct Row {
    /// The name in backticks in the first column; also the name of the row's testdata file.
    pub state: String,
    /// The conditions the status column names, as (type, status, reason if named).
    pub conditions: Vec<(String, String, Option<String>)>,
    pub kstatus: String,
    pub argo: String,
}

impl Row {
    /// Whether `task` (a UserSynchronization as JSON) is in this state: its status is of the current
    /// generation and has every condition the row names.
    pub fn describes(&self, task: &serde_json::Value) -> bool {
        let generation = &task["metadata"]["generation"];
        !self.conditions.is_empty()
            && task["status"]["observedGeneration"] == *generation
            && self.has_conditions(task)
    }

    /// Whether `task` has every condition the row names, whatever generation they are of.
    pub fn has_conditions(&self, task: &serde_json::Value) -> bool {
        let present = conditions(task);
        self.conditions.iter().all(|(kind, value, reason)| {
            present.iter().any(|c| {
                c["type"] == kind.as_str()
                    && c["status"] == value.as_str()
                    && reason.as_ref().is_none_or(|r| c["reason"] == r.as_str())
            })
        })
    }
}

/// The status conditions of a task as JSON.
pub fn conditions(task: &serde_json::Value) -> Vec<serde_json::Value> {
    task["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The table under "## GitOps health" in README.md.
pub fn health_table() -> Vec<Row> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).expect("README.md is readable");
    let section = readme
        .split("\n## GitOps health\n")
        .nth(1)
        .expect("README.md has a \"## GitOps health\" section");
    let rows: Vec<Row> = section
        .lines()
        .skip_while(|line| !line.starts_with("| State |"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(parse_row)
        .collect();
    assert!(
        rows.len() >= 5,
        "the GitOps health table has {} rows",
        rows.len()
    );
    rows
}

fn parse_row(line: &str) -> Row {
    let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
    assert_eq!(cells.len(), 4, "a GitOps health row has 4 columns: {line}");
    let state = cells[0]
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no `state` in {line}"))
        .to_owned();
    Row {
        state,
        conditions: cells[1]
            .split([',', ';'])
            .filter_map(parse_condition)
            .collect(),
        kstatus: cells[2].trim_matches('`').to_owned(),
        argo: cells[3].trim_matches('`').to_owned(),
    }
}

/// `Ready=False (InvalidCredentials)` or `Stalled=False`; anything else is prose, not a condition.
fn parse_condition(item: &str) -> Option<(String, String, Option<String>)> {
    let item = item.replace('`', "");
    let (kind, rest) = item.trim().split_once('=')?;
    let (value, reason) = match rest.split_once(" (") {
        Some((value, reason)) => (value, reason.split(')').next().map(str::to_owned)),
        None => (rest.trim(), None),
    };
    let word = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphabetic());
    (word(kind) && matches!(value, "True" | "False" | "Unknown"))
        .then(|| (kind.to_owned(), value.to_owned(), reason))
}

/// A reader's verdict on one object.
#[derive(Clone, Debug, serde::Deserialize, PartialEq, Eq)]
pub struct Verdict {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub message: String,
}

/// The helper the test bed built: `$USERSYNC_GITOPS_BIN`, or where `build-tools.sh` puts it for
/// this source. Fails, with what to run, when it is not built.
pub fn helper() -> PathBuf {
    let path = match std::env::var_os("USERSYNC_GITOPS_BIN") {
        Some(path) => PathBuf::from(path),
        None => {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/env/build-tools.sh");
            let out = Command::new("bash")
                .args([script, "gitops-path"])
                .output()
                .expect("bash runs tests/env/build-tools.sh");
            assert!(
                out.status.success(),
                "build-tools.sh gitops-path: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        }
    };
    assert!(
        path.is_file(),
        "the GitOps helper {} is not built: run `bash tests/env/build-tools.sh gitops` \
         (`cargo xtask test` and .ci/run build it)",
        path.display()
    );
    path
}

/// Runs the helper with `args`, the object on standard input; its JSON answer.
fn run(args: &[&str], object: &serde_json::Value) -> Verdict {
    let mut child = Command::new(helper())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the GitOps helper starts");
    let input = serde_json::to_vec(object).expect("object serializes");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&input)
        .expect("object written to the helper");
    let out = child.wait_with_output().expect("the GitOps helper ends");
    assert!(
        out.status.success(),
        "usersync-gitops {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the helper answers JSON")
}

/// kstatus's `status.Compute`, as Flux's health checks see the object.
pub fn kstatus(object: &serde_json::Value) -> Verdict {
    run(&["kstatus", "-"], object)
}

/// The Argo CD health check of the customization, run as Argo CD runs argocd-cm scripts.
pub fn argo_health(object: &serde_json::Value) -> Verdict {
    let script = Path::new(CUSTOMIZATION).join("health.lua");
    run(
        &["argo-health", "-script", &script.to_string_lossy(), "-"],
        object,
    )
}

/// Checks both readers' verdicts on `object` against `row`; the failure names the state.
#[track_caller]
pub fn assert_verdicts(row: &Row, object: &serde_json::Value) {
    let (flux, argo) = (kstatus(object), argo_health(object));
    assert_eq!(
        (flux.status.as_str(), argo.status.as_str()),
        (row.kstatus.as_str(), row.argo.as_str()),
        "state `{}`: kstatus said {flux:?}, Argo CD {argo:?}, for status {}",
        row.state,
        object["status"]
    );
    // A failure must say what failed; progress may go without words.
    for (status, message) in [(&flux.status, &flux.message), (&argo.status, &argo.message)] {
        assert!(
            !matches!(status.as_str(), "Failed" | "Degraded") || !message.is_empty(),
            "state `{}`: {status} without a message",
            row.state
        );
    }
}
