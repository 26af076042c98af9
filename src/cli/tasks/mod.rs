//! Day-2 commands on the tasks in the cluster, what `kubectl usersync …` runs: `get`, `run-now`,
//! `approve`, `suspend`, `resume`, `wait` and `explain`. They read, annotate and patch
//! UserSynchronizations with the caller's own Kubernetes rights; the operator does the work.

mod explain;
mod get;
mod wait;

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};

use super::exit::Failure;
use super::kube_args::KubeArgs;
use crate::api::{APPROVE_DELETIONS_ANNOTATION, RUN_NOW_ANNOTATION, UserSynchronization};
use crate::run::plan::HELD_BACK;
use crate::run::trigger::braked;
pub use explain::{ExplainArgs, explain};
pub use get::{GetArgs, get};
use wait::{Awaited, until_done};

/// A task of the namespace, and how long to wait for its run.
#[derive(clap::Args)]
pub struct TaskArgs {
    /// Name of the UserSynchronization.
    pub task: String,
    #[command(flatten)]
    pub kube: KubeArgs,
}

/// Waiting for the run a command starts.
#[derive(clap::Args)]
pub struct WaitFlags {
    /// Wait until the run finished; exit 1 if it failed.
    #[arg(long)]
    pub wait: bool,
    /// How long `--wait` waits (e.g. 90s, 10m); exit 3 past it.
    #[arg(long, default_value = "5m", value_parser = parse_timeout)]
    pub timeout: Duration,
}

#[derive(clap::Args)]
pub struct WaitArgs {
    #[command(flatten)]
    pub task: TaskArgs,
    /// What to wait for: `ready`, a successful run of the task's current generation.
    #[arg(long = "for", value_parser = ["ready"], default_value = "ready")]
    pub condition: String,
    /// How long to wait (e.g. 90s, 10m); exit 3 past it.
    #[arg(long, default_value = "5m", value_parser = parse_timeout)]
    pub timeout: Duration,
}

#[derive(clap::Args)]
pub struct ApproveArgs {
    #[command(flatten)]
    pub task: TaskArgs,
    /// Approve without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub wait: WaitFlags,
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    crate::run::schedule::parse_duration(text).map_err(|e| e.to_string())
}

async fn tasks_of(args: &TaskArgs) -> Result<Api<UserSynchronization>, Failure> {
    let client = args.kube.client().await?;
    let namespace = args.kube.namespace_of(&client);
    Ok(Api::namespaced(client, &namespace))
}

/// A value for an annotation that asks something once: new every time.
fn fresh_token() -> String {
    format!("cli-{}", Timestamp::now().as_millisecond())
}

async fn annotate(
    tasks: &Api<UserSynchronization>,
    name: &str,
    annotations: &[(&str, &str)],
) -> Result<(), Failure> {
    let values: serde_json::Map<String, serde_json::Value> = annotations
        .iter()
        .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
        .collect();
    let patch = serde_json::json!({"metadata": {"annotations": values}});
    tasks
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    Ok(())
}

/// `run-now`: asks the operator for a run at once, and with `--wait` waits for it.
pub async fn run_now(args: TaskArgs, wait: WaitFlags) -> Result<(), Failure> {
    let tasks = tasks_of(&args).await?;
    let token = fresh_token();
    annotate(&tasks, &args.task, &[(RUN_NOW_ANNOTATION, &token)]).await?;
    println!(
        "{}: run asked for ({RUN_NOW_ANNOTATION}={token})",
        args.task
    );
    if wait.wait {
        let task = until_done(&tasks, &args.task, Awaited::RunNow(&token), wait.timeout).await?;
        println!("{}", finished_line(&task));
    }
    Ok(())
}

/// `suspend` and `resume`: no timed runs while suspended (`spec.suspend`).
pub async fn suspend(args: TaskArgs, suspended: bool) -> Result<(), Failure> {
    let tasks = tasks_of(&args).await?;
    let patch = serde_json::json!({"spec": {"suspend": suspended}});
    tasks
        .patch(&args.task, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| format!("{}: {e}", args.task))?;
    let what = if suspended { "suspended" } else { "resumed" };
    println!("{}: {what}", args.task);
    Ok(())
}

/// `wait --for ready`: a successful run of the task's current generation.
pub async fn wait(args: WaitArgs) -> Result<(), Failure> {
    let tasks = tasks_of(&args.task).await?;
    let name = &args.task.task;
    let task = until_done(&tasks, name, Awaited::CurrentGeneration, args.timeout).await?;
    println!("{}", finished_line(&task));
    Ok(())
}

/// `approve`: shows what the run held back by maxDeletions would remove, asks, and lets one run
/// through (the approval annotation, and run-now to wait for that run).
pub async fn approve(args: ApproveArgs) -> Result<(), Failure> {
    let tasks = tasks_of(&args.task).await?;
    let name = &args.task.task;
    let task = tasks.get(name).await.map_err(|e| format!("{name}: {e}"))?;
    if !task.status.as_ref().is_some_and(braked) {
        return Err(Failure::no(format!(
            "{name}: nothing to approve: its last run was not held back by maxDeletions"
        )));
    }
    println!("{}", held_back(&task));
    if !args.yes && !confirmed("Approve one run that removes these?")? {
        return Err(Failure::no("not approved"));
    }
    let token = fresh_token();
    annotate(
        &tasks,
        name,
        &[
            (APPROVE_DELETIONS_ANNOTATION, &token),
            (RUN_NOW_ANNOTATION, &token),
        ],
    )
    .await?;
    println!("{name}: approved ({APPROVE_DELETIONS_ANNOTATION}={token})");
    if args.wait.wait {
        let done = until_done(&tasks, name, Awaited::RunNow(&token), args.wait.timeout).await?;
        println!("{}", finished_line(&done));
    }
    Ok(())
}

/// What the held-back run would remove, from the preview its status shows.
fn held_back(task: &UserSynchronization) -> String {
    let preview = task.status.as_ref().and_then(|s| s.preview.as_ref());
    let Some(preview) = preview else {
        return "the removals are not listed on status (an operator older than this command)"
            .into();
    };
    let mut out = format!(
        "the held-back run would remove {} objects and users:",
        preview.remove
    );
    for change in preview
        .changes
        .iter()
        .filter(|c| c.reason.as_deref() == Some(HELD_BACK))
    {
        let what = if change.action == "RemoveUser" {
            "user "
        } else {
            "UserGroup "
        };
        out.push_str(&format!("\n  - {what}{}", change.name));
    }
    if preview.truncated {
        out.push_str("\n  … and more");
    }
    out
}

/// Asks on the terminal; refuses when standard input is not one (use `--yes` in scripts).
fn confirmed(question: &str) -> Result<bool, Failure> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err("standard input is not a terminal: give --yes to approve".into());
    }
    print!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|e| e.to_string())?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// One line on the run a command waited for.
fn finished_line(task: &UserSynchronization) -> String {
    let run = task.status.as_ref().and_then(|s| s.last_run.as_ref());
    match run {
        Some(r) => format!(
            "run finished: {} users, {} groups; {} created, {} updated, {} removed in {:.1} s",
            r.users, r.groups, r.created, r.updated, r.removed, r.duration_seconds
        ),
        None => "run finished".into(),
    }
}
