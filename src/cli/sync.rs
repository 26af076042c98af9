//! `usersync sync --dry-run`: the operator's steps up to the plan, against the cluster, printed
//! as text or as a [`DryRun`] document. Exit 0 when nothing would change, 1 when changes are
//! pending (as `kubectl diff`), 2 on errors.

use std::time::Instant;

use futures::FutureExt;
use kube::ResourceExt;

use serde::Serialize;

use super::exit::Failure;
use super::kube_args::KubeArgs;
use super::output::{self, Format};
use super::task_file::{TaskArgs, prepare};
use crate::api::{UserGroup, UserSynchronization};
use crate::directory::read::{Feed, ReadOptions};
use crate::planner::shard::DEFAULT_SHARD_BYTES;
use crate::run::RunError;
use crate::run::observe::metadata::{download, list_by_metadata, rebuild};
use crate::run::plan::{desired_of, plan_changes};
use crate::run::read::{Answered, read_directory};
use crate::run::user_pool::UserPool;

#[derive(clap::Args)]
pub struct SyncArgs {
    #[command(flatten)]
    task: TaskArgs,
    /// Print the plan, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// The cluster; the task's namespace defaults to the file's, else the context's.
    #[command(flatten)]
    kube: KubeArgs,
    /// text, json or yaml (a [`DryRun`] document, fields as the README lists them).
    #[arg(long, short = 'o', value_enum, default_value_t)]
    output: Format,
}

/// What `sync --dry-run -o json|yaml` prints.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DryRun {
    pub namespace: String,
    pub task: String,
    pub server: String,
    pub users: usize,
    pub groups: usize,
    /// UserGroups in the namespace when the plan was made.
    pub objects: usize,
    /// Of them, downloaded whole (the others were listed by their metadata alone).
    pub downloaded: usize,
    /// Seconds from the start until the read, the listing and the plan were done.
    pub read_seconds: f64,
    pub list_seconds: f64,
    pub plan_seconds: f64,
    /// Whether a run would change anything (the exit code says the same).
    pub changes_pending: bool,
    pub create: Vec<Planned>,
    pub update: Vec<Planned>,
    pub remove: Vec<String>,
    pub skip: Vec<Planned>,
    pub unchanged: usize,
    /// Set when maxDeletions would hold the run back: what it would remove.
    pub held_back: Option<HeldBack>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Planned {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldBack {
    pub would_remove: u64,
    pub max_deletions: u64,
    pub groups: Vec<String>,
    pub users: Vec<String>,
}

pub async fn sync(args: SyncArgs) -> Result<(), Failure> {
    if !args.dry_run {
        return Err("sync only plans (--dry-run); the operator (usersync run) applies".into());
    }
    let report = dry_run(&args.task, &args.kube).await?;
    output::print(args.output, &report, text)?;
    match report.changes_pending {
        true => Err(Failure::no(String::new())),
        false => Ok(()),
    }
}

/// Reads the directory as the task file says, compares with the task's UserGroups in the cluster,
/// and plans: the same diff a dry-run task shows on its status.
async fn dry_run(args: &TaskArgs, kube: &KubeArgs) -> Result<DryRun, String> {
    let (file, checked, resolved) = prepare(args, None).await?;
    let (progress, shown) = super::progress::start();
    let options = ReadOptions {
        member_range: args.member_range,
        progress,
    };
    let failed = |e: RunError| format!("{e} ({})", e.reason());
    let users = UserPool::default();
    let started = Instant::now();
    // The task as the cluster has it (its uid tells which UserGroups it owns), or the file's; and
    // the namespace's UserGroups.
    let cluster = async {
        let client = kube.client().await?;
        let namespace = kube
            .namespace
            .clone()
            .or_else(|| file.task.namespace())
            .unwrap_or_else(|| client.default_namespace().to_owned());
        let tasks: kube::Api<UserSynchronization> =
            kube::Api::namespaced(client.clone(), &namespace);
        let mut task = tasks
            .get_opt(&file.task.name_any())
            .await
            .map_err(|e| e.to_string())?
            .unwrap_or_else(|| file.task.clone());
        task.spec = file.task.spec.clone();
        let groups: kube::Api<UserGroup> = kube::Api::namespaced(client, &namespace);
        let listing = list_by_metadata(&groups, &users, &task)
            .await
            .map_err(|e| failed(RunError::Observe(e)))?;
        let seconds = started.elapsed().as_secs_f64();
        Ok::<_, String>((namespace, task, groups, listing, seconds))
    };
    // The directory (which needs only the file's spec) and the apiserver answer at the same time.
    let ((read, read_seconds), cluster) = tokio::join!(
        read_directory(
            resolved,
            &file.task.spec.directory,
            &options,
            Feed::Off,
            None
        )
        .map(|r| (r, started.elapsed().as_secs_f64())),
        cluster
    );
    let Answered { read, server, .. } = read.map_err(|e| failed(e.into()))?;
    let (namespace, task, groups, listing, list_seconds) = cluster?;
    let mut snapshot = read.snapshot;
    // Downloaded objects compare with the directory's records by address once they share them;
    // the objects rebuilt from digests hold the directory's own records already.
    if !listing.downloaded.is_empty() {
        users.share_all(&mut snapshot.users);
    }
    let planning = Instant::now();
    if let Some(shown) = &shown {
        shown.step(&format!(
            "planning {} users, {} groups against the namespace's UserGroups",
            snapshot.users.len(),
            snapshot.groups.len()
        ));
    }
    let desired = desired_of(&task, &snapshot);
    let mut downloaded = listing.downloaded.len();
    let (mut objects, differing) = rebuild(listing, &desired, &task, DEFAULT_SHARD_BYTES);
    downloaded += differing.len();
    let rest = download(&groups, &users, differing.into_iter()).await;
    objects.extend(rest.map_err(|e| failed(RunError::Observe(e)))?);
    let (plan, _) = plan_changes(
        &objects,
        &task,
        &checked,
        (desired, &snapshot.stats.unreadable),
        false,
    );
    let plan_seconds = planning.elapsed().as_secs_f64();
    drop(shown);
    let report = DryRun {
        namespace,
        task: task.name_any(),
        server,
        users: snapshot.users.len(),
        groups: snapshot.groups.len(),
        objects: objects.len(),
        downloaded,
        read_seconds,
        list_seconds,
        plan_seconds,
        changes_pending: !plan.is_noop() || plan.brake.is_some(),
        create: plan.create.iter().map(written).collect(),
        update: plan.update.iter().map(written).collect(),
        remove: plan.remove.clone(),
        skip: plan
            .skipped
            .iter()
            .map(|s| Planned {
                name: s.name.clone(),
                display_name: None,
                users: None,
                reason: Some(format!("{:?}", s.reason)),
            })
            .collect(),
        unchanged: plan.unchanged,
        held_back: plan.brake.as_ref().map(|b| HeldBack {
            would_remove: b.would_remove,
            max_deletions: b.limit,
            groups: b.groups.clone(),
            users: b.users.clone(),
        }),
    };
    // The process ends soon: freeing every record one by one would only delay the exit.
    std::mem::forget((plan, objects, snapshot));
    Ok(report)
}

fn written(w: &crate::planner::plan::Write) -> Planned {
    Planned {
        name: w.name.clone(),
        display_name: Some(w.spec.display_name.clone()),
        users: Some(w.spec.users.len()),
        reason: None,
    }
}

/// `+` create, `~` update, `-` remove, `!` skipped, and the brake.
fn text(r: &DryRun) -> String {
    let mut out = format!(
        "task {}/{}: {} users, {} groups read from {} in {:.2} s; {} UserGroups listed in {:.2} s \
         ({} downloaded); planned in {:.2} s\n",
        r.namespace,
        r.task,
        r.users,
        r.groups,
        r.server,
        r.read_seconds,
        r.objects,
        r.list_seconds,
        r.downloaded,
        r.plan_seconds
    );
    out.push_str(&format!(
        "create {}, update {}, remove {}, skip {}, unchanged {}\n",
        r.create.len(),
        r.update.len(),
        r.remove.len(),
        r.skip.len(),
        r.unchanged
    ));
    let line = |sign: &str, p: &Planned| match (&p.display_name, p.users) {
        (Some(display), Some(users)) => format!("{sign} {}  ({display}, {users} users)\n", p.name),
        _ => format!("{sign} {}\n", p.name),
    };
    r.create.iter().for_each(|p| out.push_str(&line("+", p)));
    r.update.iter().for_each(|p| out.push_str(&line("~", p)));
    r.remove
        .iter()
        .for_each(|n| out.push_str(&format!("- {n}\n")));
    for s in &r.skip {
        let reason = s.reason.as_deref().unwrap_or_default();
        out.push_str(&format!("! {}  skipped: {reason}\n", s.name));
    }
    if let Some(held) = &r.held_back {
        out.push_str(&format!(
            "brake: {} removals exceed maxDeletions ({}); a run would remove nothing\n",
            held.would_remove, held.max_deletions
        ));
    }
    out
}
