//! The operator's run of one task: the steps after validation, in order, with what the operator
//! adds to them (kept reads for incremental runs, the watch-backed view, metrics, the write pace).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::Api;
use tracing::{info, warn};

use super::context::Context;
use super::kept::status_of;
use super::metrics::{PlanLabels, ReadLabels};
use crate::api::{IncrementalMode, IncrementalStatus, RunSummary, UserGroup, UserSynchronization};
use crate::directory::read::{Feed, Kept, Read, ReadKind};
use crate::directory::snapshot::{Snapshot, Unreadable};
use crate::planner::plan::Plan;
use crate::run::RunError;
use crate::run::apply::{Applied, Writer, status_subresource};
use crate::run::cpu::thread_cpu;
use crate::run::observe::list_groups;
use crate::run::plan::{desired_of, plan_changes, plan_in_place_changes, preview};
use crate::run::read::{Answered, read_directory};
use crate::run::report::{Failure, Outcome, Synced};
use crate::run::resolve::{Given, InCluster, resolve};
use crate::run::trigger::Trigger;
use crate::run::validate::Checked;

/// How long a run waits for the UserGroup view to show its writes.
const VIEW_CATCH_UP: Duration = Duration::from_secs(10);

/// Runs the task's steps and says how it went. A panic in any step is caught here and fails this
/// task's run alone.
pub async fn execute(
    task: &UserSynchronization,
    ctx: &Context,
    checked: &Checked,
    deletions_approved: bool,
    trigger: Trigger,
) -> Outcome {
    let started = Instant::now();
    let run = std::panic::AssertUnwindSafe(steps(task, ctx, checked, deletions_approved, trigger));
    // Dropping the run at its deadline closes its connections and ends its writes where they are.
    let result = match tokio::time::timeout(checked.run_timeout, run.catch_unwind()).await {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => Err(RunError::Internal(panic_message(panic.as_ref()))),
        Err(_) => Err(RunError::TimedOut(checked.run_timeout)),
    };
    match result {
        Ok(done) => Outcome::Synced(Box::new(done.synced(task.spec.dry_run, started.elapsed()))),
        Err(err) => {
            // What the failed run read is not kept: the next one starts from a full read.
            let uid = task.uid().unwrap_or_default();
            ctx.state.kept.forget(&uid);
            ctx.state.settled.forget(&uid);
            Outcome::Failed(Failure {
                reason: err.reason(),
                message: err.to_string(),
                transient: err.is_transient(),
                directory_reachable: err.directory_reachable(),
            })
        }
    }
}

/// What the steps did, for the report.
struct Done {
    server: String,
    /// `None`: no read; the objects were restored from the last one.
    read_kind: Option<ReadKind>,
    entries_read: usize,
    incremental: Option<IncrementalStatus>,
    plan: Plan,
    applied: Applied,
    users: usize,
    groups: usize,
    unresolved: usize,
    unreadable: Unreadable,
}

async fn steps(
    task: &UserSynchronization,
    ctx: &Context,
    checked: &Checked,
    deletions_approved: bool,
    trigger: Trigger,
) -> Result<Done, RunError> {
    let namespace = task.namespace().unwrap_or_default();
    let uid = task.uid().unwrap_or_default();
    let Source {
        snapshot,
        read_kind,
        incremental,
        server,
        changed_in_place,
    } = match restore_from_kept(ctx, task, &uid, trigger) {
        Some(source) => source,
        None => read(ctx, task, &namespace, &uid, checked).await?,
    };

    let step = Instant::now();
    let groups_api: Api<UserGroup> = Api::namespaced(ctx.client.clone(), &namespace);
    let objects = match ctx.state.user_groups.objects(&namespace, &uid) {
        Some(objects) => objects,
        None => {
            ctx.metrics.user_group_lists.inc();
            list_groups(&groups_api, &ctx.state.users)
                .await
                .map_err(RunError::Observe)?
        }
    };
    // No await from here to the plan: the thread's CPU time is the plan's.
    let planning = thread_cpu();
    let in_place = changed_in_place.filter(|_| left_exact(ctx, task, &namespace, &uid));
    let (plan, state) = match &in_place {
        Some(changed) => plan_in_place_changes(&objects, task, &snapshot, changed),
        None => plan_changes(
            &objects,
            task,
            checked,
            (desired_of(task, &snapshot), &snapshot.stats.unreadable),
            deletions_approved,
        ),
    };
    let kind = if in_place.is_some() {
        "in_place"
    } else {
        "whole"
    };
    ctx.metrics.plans.get_or_create(&PlanLabels { kind }).inc();
    info!(
        in_place = in_place.is_some(),
        create = plan.create.len(),
        update = plan.update.len(),
        remove = plan.remove.len(),
        seconds = step.elapsed().as_secs_f64(),
        cpu_seconds = thread_cpu().saturating_sub(planning).as_secs_f64(),
        "planned"
    );
    if !plan.duplicates.is_empty() {
        warn!(duplicates = ?plan.duplicates, "UserGroups stood for a directory object another one stands for; the copies are removed");
    }

    let applied = if task.spec.dry_run {
        ctx.state.settled.forget(&uid);
        Applied::default()
    } else {
        let writes_objects =
            !(plan.create.is_empty() && plan.update.is_empty() && plan.mark_extinct.is_empty());
        let status_subresource = match writes_objects {
            true => status_subresource(&ctx.client)
                .await
                .map_err(|e| RunError::Apply(e.into()))?,
            false => false,
        };
        let writer = Writer {
            api: &groups_api,
            task,
            state: &state,
            shard_bytes: ctx.options.shard_bytes,
            concurrency: ctx.options.write_concurrency,
            limit: ctx.state.write_limit.as_ref(),
            written: Default::default(),
            fence: &ctx.state.fence,
            status_subresource,
        };
        apply(ctx, &namespace, &uid, writer, &plan).await?
    };
    // Records of users that left the directory and every UserGroup are no longer needed.
    ctx.state.users.prune();
    Ok(Done {
        server,
        read_kind,
        entries_read: if read_kind.is_some() {
            snapshot.stats.entries
        } else {
            0
        },
        incremental,
        users: snapshot.users.len(),
        groups: snapshot.groups.len(),
        unresolved: snapshot.unresolved.count,
        unreadable: snapshot.stats.unreadable,
        plan,
        applied,
    })
}

/// What a run plans against.
struct Source {
    snapshot: Snapshot,
    read_kind: Option<ReadKind>,
    incremental: Option<IncrementalStatus>,
    server: String,
    /// The users whose records alone changed since the followed read (see `Read`).
    changed_in_place: Option<Vec<usize>>,
}

/// Objects someone else changed are restored from the task's kept read, when there is one: the
/// directory is not read again for them.
fn restore_from_kept(
    ctx: &Context,
    task: &UserSynchronization,
    uid: &str,
    trigger: Trigger,
) -> Option<Source> {
    if trigger != Trigger::ObjectsChanged {
        return None;
    }
    let incremental = task.status.as_ref().and_then(|s| s.incremental.clone());
    let (snapshot, server) = ctx.state.kept.snapshot(uid, incremental.as_ref())?;
    info!("restoring the task's objects from its last read");
    Some(Source {
        snapshot,
        read_kind: None,
        incremental,
        server,
        changed_in_place: None,
    })
}

/// Steps 3 and 4: the task's credentials, then the directory.
async fn read(
    ctx: &Context,
    task: &UserSynchronization,
    namespace: &str,
    uid: &str,
    checked: &Checked,
) -> Result<Source, RunError> {
    let references = InCluster {
        client: ctx.client.clone(),
    };
    let policy = &ctx.options.references;
    let resolved = resolve(namespace, &task.spec, &references, Given::default(), policy).await?;
    let step = Instant::now();
    let feed = feed(ctx, task, uid, checked.full_sync_every);
    // A task that follows the directory's changes runs often and reads little: its connection is
    // kept bound between runs.
    let session = matches!(feed, Feed::Follow(_)).then(|| ctx.state.kept.session(uid));
    let directory = &task.spec.directory;
    let Answered {
        mut read,
        server,
        cpu,
    } = read_directory(
        resolved,
        directory,
        &ctx.options.read,
        feed,
        session.as_ref(),
    )
    .await?;
    let (kind, entries) = (read.kind, read.snapshot.stats.entries);
    let changed_in_place = read.changed_in_place.take();
    // Sharing the records and keeping the read are part of what reading costs.
    let keeping = thread_cpu();
    let (snapshot, read_kind, incremental) = keep(ctx, uid, read, changed_in_place.as_deref());
    let cpu = cpu + thread_cpu().saturating_sub(keeping);
    info!(
        ?kind,
        entries,
        seconds = step.elapsed().as_secs_f64(),
        cpu_seconds = cpu.as_secs_f64(),
        "read"
    );
    Ok(Source {
        snapshot,
        read_kind: Some(read_kind),
        incremental,
        server,
        changed_in_place,
    })
}

/// Whether the task's last run left its objects exactly as its plan asked, for the generation
/// running now, and nobody changed them since: a run whose users only changed in place can plan
/// from the objects alone. Never for dry runs, which leave nothing.
fn left_exact(ctx: &Context, task: &UserSynchronization, namespace: &str, uid: &str) -> bool {
    let generation = task.metadata.generation.unwrap_or_default();
    let view = &ctx.state.user_groups;
    !task.spec.dry_run
        && ctx.state.settled.exact(uid, generation, |left| {
            view.holds(namespace, uid, left) == Some(true)
        })
}

/// How the task's read follows the directory's change feed: from what its last read kept, when
/// status still describes it and no full read is due.
fn feed(ctx: &Context, task: &UserSynchronization, uid: &str, full_every: Duration) -> Feed {
    match task.spec.incremental.mode {
        IncrementalMode::Disabled => {
            ctx.state.kept.forget(uid);
            Feed::Off
        }
        IncrementalMode::Auto => {
            let status = task.status.as_ref().and_then(|s| s.incremental.as_ref());
            let now = std::time::SystemTime::now();
            Feed::Follow(ctx.state.kept.take(uid, status, full_every, now))
        }
    }
}

/// Shares the read's user records with the rest of the operator, keeps what the next run of the
/// task reads incrementally from, and counts the read.
fn keep(
    ctx: &Context,
    uid: &str,
    read: Read,
    changed_in_place: Option<&[usize]>,
) -> (Snapshot, ReadKind, Option<IncrementalStatus>) {
    let Read {
        mut snapshot,
        kind,
        mut kept,
        ..
    } = read;
    share_records(ctx, &mut snapshot, kept.as_deref_mut(), changed_in_place);
    let incremental = kept.as_ref().map(|k| status_of(k));
    if let Some(kept) = kept {
        keep_for_next_run(ctx, uid, kept);
    }
    ctx.metrics
        .entries_read
        .inc_by(snapshot.stats.entries as u64);
    let kind_label = match kind {
        ReadKind::Full => "full",
        ReadKind::Incremental => "incremental",
    };
    ctx.metrics
        .reads
        .get_or_create(&ReadLabels { kind: kind_label })
        .inc();
    (snapshot, kind, incremental)
}

/// Puts the pool's record in place of each equal one the read holds. When only some users changed
/// in place, only their records are new: the rest are those the followed read shared already.
fn share_records(
    ctx: &Context,
    snapshot: &mut Snapshot,
    kept: Option<&mut Kept>,
    changed_in_place: Option<&[usize]>,
) {
    let users = &ctx.state.users;
    let Some(changed) = changed_in_place else {
        if let Some(kept) = kept {
            users.share_all(kept.entries.users.values_mut().map(|raw| &mut raw.user));
            users.share_all(&mut kept.snapshot.users);
        }
        users.share_all(&mut snapshot.users);
        return;
    };
    for &i in changed {
        users.share_all([&mut snapshot.users[i]]);
    }
    let Some(kept) = kept else { return };
    for &i in changed {
        let record = &snapshot.users[i];
        kept.snapshot.users[i] = Arc::clone(record);
        if let Some(raw) = kept.entries.users.get_mut(&record.id) {
            raw.user = Arc::clone(record);
        }
    }
}

/// Keeps the task's read for its next run, forgetting those of tasks no longer watched.
fn keep_for_next_run(ctx: &Context, uid: &str, kept: Box<Kept>) {
    let live: std::collections::HashSet<String> = ctx
        .state
        .tasks
        .iter()
        .flat_map(|store| store.state())
        .filter_map(|t| t.uid())
        .collect();
    ctx.state
        .kept
        .put(uid, kept, |other| other == uid || live.contains(other));
}

/// Writes the plan, then waits until the view shows the writes so the next run plans against them.
async fn apply(
    ctx: &Context,
    namespace: &str,
    uid: &str,
    writer: Writer<'_>,
    plan: &Plan,
) -> Result<Applied, RunError> {
    let step = Instant::now();
    let generation = writer.task.metadata.generation;
    let applied = writer.apply(plan, &Timestamp::now().to_string()).await;
    let written = writer
        .written
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    let wrote = step.elapsed();
    let view = &ctx.state.user_groups;
    let settled = match &applied {
        Ok(_) => view.wait_for(namespace, uid, &written, VIEW_CATCH_UP).await,
        Err(_) => {
            view.list_next_run(uid);
            false
        }
    };
    // The objects as this run left them: a later change by someone else is restored.
    let exact_for = plan.exact.then(|| generation.unwrap_or_default());
    match settled.then(|| view.versions(namespace, uid)).flatten() {
        Some(versions) => ctx.state.settled.record(uid, versions, exact_for),
        None => ctx.state.settled.forget(uid),
    }
    info!(
        objects = written.applied.len() + written.removed.len(),
        seconds = wrote.as_secs_f64(),
        view_seconds = (step.elapsed() - wrote).as_secs_f64(),
        "applied"
    );
    let applied = applied.map_err(RunError::Apply)?;
    let count = applied.created + applied.updated + applied.marked + applied.removed;
    ctx.metrics.objects_written.inc_by(count as u64);
    Ok(applied)
}

impl Done {
    fn synced(self, dry_run: bool, elapsed: Duration) -> Synced {
        let plan = &self.plan;
        let summary = RunSummary {
            users: self.users as i64,
            groups: self.groups as i64,
            created: self.applied.created as i64,
            updated: (self.applied.updated + self.applied.marked) as i64,
            removed: (self.applied.removed + plan.users_removed) as i64,
            skipped: plan.skipped.len() as i64,
            duration_seconds: (elapsed.as_secs_f64() * 100.0).round() / 100.0,
            unresolved_members: self.unresolved as i64,
            directory_read: match self.read_kind {
                Some(ReadKind::Full) => "Full",
                Some(ReadKind::Incremental) => "Incremental",
                None => "None",
            }
            .to_owned(),
            entries_read: self.entries_read as i64,
            unreadable_entries: self.unreadable.count as i64,
            duplicates_removed: plan.duplicates.len() as i64,
        };
        Synced {
            server: self.server,
            summary,
            brake: plan.brake.clone(),
            preview: (dry_run || plan.brake.is_some()).then(|| preview(plan)),
            incremental: self.incremental,
            unreadable_sample: self.unreadable.sample,
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "the run panicked".to_owned())
}
