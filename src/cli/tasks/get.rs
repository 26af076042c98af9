//! `usersync get`: the tasks and how they are doing, as a table for people or as documents
//! (`-o json|yaml`: a list of [`TaskRow`]).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use serde::Serialize;

use super::super::exit::Failure;
use super::super::kube_args::KubeArgs;
use super::super::output::{self, Format};
use crate::api::UserSynchronization;
use crate::run::conditions::{self, READY, RECONCILING, STALLED};
use crate::run::trigger::braked;

#[derive(clap::Args)]
pub struct GetArgs {
    /// Only this task.
    pub task: Option<String>,
    #[command(flatten)]
    pub kube: KubeArgs,
    /// The tasks of every namespace.
    #[arg(long, short = 'A')]
    pub all_namespaces: bool,
    /// text (a table), json or yaml (a list of tasks with the fields the README lists).
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: Format,
}

/// One task as `get` shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRow {
    pub namespace: String,
    pub name: String,
    /// The Ready condition: True, False, or Unknown (no run yet, or suspended).
    pub ready: String,
    /// Why, from the Ready condition (Stalled's or Reconciling's while those say more).
    pub reason: String,
    pub message: String,
    /// Status describes the task's current generation.
    pub current: bool,
    pub suspended: bool,
    pub dry_run: bool,
    pub last_sync_time: Option<String>,
    pub next_sync_time: Option<String>,
    pub users: Option<i64>,
    pub groups: Option<i64>,
    /// The push feed in use (Syncrepl, ChangeNotification, PersistentSearch), or why none.
    pub feed: Option<String>,
    /// While maxDeletions holds the task's runs back: how many removals (see `approve`).
    pub held_removals: Option<i64>,
}

impl TaskRow {
    pub fn of(task: &UserSynchronization) -> TaskRow {
        let status = task.status.clone().unwrap_or_default();
        let condition = |type_: &str| conditions::find(&status.conditions, type_);
        let ready = condition(READY);
        let stalled = condition(STALLED).filter(|c| c.status == "True");
        let running = condition(RECONCILING).filter(|c| c.status == "True");
        let telling = stalled.or(running).or(ready);
        let braked = braked(&status);
        let time = |t: &Option<Time>| t.as_ref().map(|t| t.0.to_string());
        let generation = task.metadata.generation;
        TaskRow {
            namespace: task.namespace().unwrap_or_default(),
            name: task.name_any(),
            ready: ready.map_or("Unknown", |c| c.status.as_str()).to_owned(),
            reason: telling.map(|c| c.reason.clone()).unwrap_or_default(),
            message: telling.map(|c| c.message.clone()).unwrap_or_default(),
            current: generation.is_some() && status.observed_generation == generation,
            suspended: task.spec.suspend,
            dry_run: task.spec.dry_run,
            last_sync_time: time(&status.last_sync_time),
            next_sync_time: time(&status.next_sync_time),
            users: status.last_run.as_ref().map(|r| r.users),
            groups: status.last_run.as_ref().map(|r| r.groups),
            feed: status.push.as_ref().map(|p| match p.reason.as_str() {
                "Connected" => p.feed.clone(),
                reason => reason.to_owned(),
            }),
            held_removals: braked
                .then(|| status.preview.as_ref().map(|p| p.remove))
                .flatten(),
        }
    }
}

pub async fn get(args: GetArgs) -> Result<(), Failure> {
    let client = args.kube.client().await?;
    let tasks: Api<UserSynchronization> = if args.all_namespaces {
        Api::all(client.clone())
    } else {
        Api::namespaced(client.clone(), &args.kube.namespace_of(&client))
    };
    let found = match &args.task {
        Some(name) => vec![tasks.get(name).await.map_err(|e| format!("{name}: {e}"))?],
        None => {
            tasks
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?
                .items
        }
    };
    let rows: Vec<TaskRow> = found.iter().map(TaskRow::of).collect();
    let now = Timestamp::now();
    let all = args.all_namespaces;
    output::print(args.output, &rows, |rows| table(rows, all, now))?;
    Ok(())
}

/// The rows as kubectl prints resources: aligned columns, ages relative to `now`.
pub fn table(rows: &[TaskRow], with_namespace: bool, now: Timestamp) -> String {
    let mut lines: Vec<Vec<String>> = vec![
        [
            "NAMESPACE",
            "NAME",
            "READY",
            "REASON",
            "LAST SYNC",
            "NEXT SYNC",
            "USERS",
            "GROUPS",
            "FEED",
            "HELD",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    let count = |n: Option<i64>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
    for r in rows {
        let ready = match (r.suspended, r.dry_run) {
            (true, _) => "Suspended".to_owned(),
            (false, true) => format!("{} (dry run)", r.ready),
            (false, false) => r.ready.clone(),
        };
        lines.push(vec![
            r.namespace.clone(),
            r.name.clone(),
            ready,
            or_dash(&r.reason),
            r.last_sync_time
                .as_deref()
                .map_or("-".into(), |t| age(t, now, false)),
            r.next_sync_time
                .as_deref()
                .map_or("-".into(), |t| age(t, now, true)),
            count(r.users),
            count(r.groups),
            r.feed.clone().unwrap_or_else(|| "-".into()),
            count(r.held_removals),
        ]);
    }
    let skip = usize::from(!with_namespace);
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in &lines {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .skip(skip)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("   ").trim_end());
        out.push('\n');
    }
    out
}

fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".into()
    } else {
        text.into()
    }
}

/// How long ago (or, `ahead`, how soon) an RFC 3339 time is, as kubectl shows ages.
fn age(time: &str, now: Timestamp, ahead: bool) -> String {
    let Ok(then) = time.parse::<Timestamp>() else {
        return time.to_owned();
    };
    let seconds = if ahead {
        then.as_second() - now.as_second()
    } else {
        now.as_second() - then.as_second()
    };
    let span = match seconds.max(0) {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    };
    if ahead {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str) -> TaskRow {
        TaskRow {
            namespace: "corp".into(),
            name: name.into(),
            ready: "True".into(),
            reason: "Synced".into(),
            message: String::new(),
            current: true,
            suspended: false,
            dry_run: false,
            last_sync_time: Some("2026-11-27T10:00:00Z".into()),
            next_sync_time: Some("2026-11-27T10:15:00Z".into()),
            users: Some(1200),
            groups: Some(40),
            feed: Some("Syncrepl".into()),
            held_removals: None,
        }
    }

    #[test]
    fn the_table_aligns_columns_and_shows_ages() {
        let now: Timestamp = "2026-11-27T10:05:00Z".parse().expect("time");
        let mut braked = row("a-long-task-name");
        braked.ready = "False".into();
        braked.reason = "DeletionThresholdExceeded".into();
        braked.held_removals = Some(12);
        let text = table(&[row("corp-ad"), braked], false, now);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("NAME "), "{text}");
        assert!(!lines[0].contains("NAMESPACE"));
        assert!(
            lines[1].contains("5m ago") && lines[1].contains("in 10m"),
            "{text}"
        );
        assert!(lines[2].ends_with("12"), "{text}");
        let column = |line: &str, word: &str| line.find(word);
        assert_eq!(
            column(lines[0], "READY"),
            column(lines[1], "True"),
            "{text}"
        );
        let with_namespace = table(&[row("corp-ad")], true, now);
        assert!(with_namespace.starts_with("NAMESPACE"), "{with_namespace}");
    }
}
