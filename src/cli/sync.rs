//! `usersync sync --dry-run`: the operator's steps up to the plan, against the cluster, printed.

use std::time::Instant;

use futures::FutureExt;
use kube::ResourceExt;

use super::task_file::{TaskArgs, prepare};
use crate::api::{UserGroup, UserSynchronization};
use crate::directory::read::{Feed, ReadOptions};
use crate::planner::plan::Plan;
use crate::planner::shard::DEFAULT_SHARD_BYTES;
use crate::run::RunError;
use crate::run::observe::metadata::{download, list_by_metadata, rebuild};
use crate::run::plan::{desired_of, plan_changes, preview};
use crate::run::read::{Answered, read_directory};
use crate::run::user_pool::UserPool;

/// Reads the directory as the task file says, compares with the task's UserGroups in the cluster,
/// and prints the plan: the same diff a dry-run task shows on its status.
pub async fn dry_run(args: &TaskArgs, namespace: Option<String>) -> Result<(), String> {
    let (file, checked, resolved) = prepare(args, None).await?;
    let options = ReadOptions {
        member_range: args.member_range,
    };
    let failed = |e: RunError| format!("{e} ({})", e.reason());
    let users = UserPool::default();
    let started = Instant::now();
    // The task as the cluster has it (its uid tells which UserGroups it owns), or the file's; and
    // the namespace's UserGroups.
    let cluster = async {
        let client = kube::Client::try_default()
            .await
            .map_err(|e| format!("cannot reach Kubernetes: {e}"))?;
        let namespace = namespace
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
        read_directory(resolved, &file.task.spec.directory, &options, Feed::Off)
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
    println!(
        "task {namespace}/{}: {} users, {} groups read from {server} in {read_seconds:.2} s; \
         {} UserGroups listed in {list_seconds:.2} s ({downloaded} downloaded); planned in {plan_seconds:.2} s",
        task.name_any(),
        snapshot.users.len(),
        snapshot.groups.len(),
        objects.len(),
    );
    print_plan(&plan);
    // The process ends here: freeing every record one by one would only delay the exit.
    std::mem::forget((plan, objects, snapshot));
    Ok(())
}

/// `+` create, `~` update, `-` remove, `!` skipped, and the brake.
fn print_plan(plan: &Plan) {
    let summary = preview(plan);
    println!(
        "create {}, update {}, remove {}, skip {}, unchanged {}",
        summary.create, summary.update, summary.remove, summary.skip, plan.unchanged
    );
    for w in &plan.create {
        println!(
            "+ {}  ({}, {} users)",
            w.name,
            w.spec.display_name,
            w.spec.users.len()
        );
    }
    for w in &plan.update {
        println!(
            "~ {}  ({}, {} users)",
            w.name,
            w.spec.display_name,
            w.spec.users.len()
        );
    }
    for name in &plan.remove {
        println!("- {name}");
    }
    for s in &plan.skipped {
        println!("! {}  skipped: {:?}", s.name, s.reason);
    }
    if let Some(brake) = plan.brake {
        println!(
            "brake: {} removals exceed maxDeletions ({}); a run would remove nothing",
            brake.would_remove, brake.limit
        );
    }
}
