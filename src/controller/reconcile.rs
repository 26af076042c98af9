//! One reconciliation of a UserSynchronization, as named steps: decide whether a run is due, read
//! the directory, plan, apply (or preview), and report on status and in Events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use tokio::sync::Semaphore;
use tracing::{Instrument, info, info_span, warn};

use super::cluster::{Applied, ClusterState, Writer, cluster_state, list_groups};
use super::conditions::{
    self, DIRECTORY_REACHABLE, READY, RECONCILING, STALLED, TLS_VERIFICATION_DISABLED,
};
use super::error::{ControllerError, kube};
use super::kept::{KeptReads, status_of};
use super::material;
use super::metrics::{Metrics, ReadLabels, ReasonLabels, ResultLabels, TaskLabels};
use super::schedule::{next_run, parse_interval};
use super::user_groups::UserGroupView;
use crate::api::{
    APPROVE_DELETIONS_ANNOTATION, IncrementalMode, IncrementalStatus, PlannedChange, Preview,
    RUN_NOW_ANNOTATION, RunSummary, UserGroup, UserPool, UserSynchronization,
    UserSynchronizationStatus,
};
use crate::directory::connect::connect;
use crate::directory::read::{Feed, Kept, Read, ReadKind, ReadOptions, read};
use crate::directory::reader_thread::on_reader_thread;
use crate::directory::settings::server_settings;
use crate::directory::snapshot::Snapshot;
use crate::planner::desired::{DesiredGroup, desired_groups};
use crate::planner::plan::{MaxDeletions, Plan, Policies, plan};
use governor::DefaultDirectRateLimiter;

/// Shared by every reconciliation.
pub struct Context {
    pub client: kube::Client,
    pub recorder: Recorder,
    pub read_options: ReadOptions,
    /// How often an idle task checks its Secrets for rotation (a `get` each; no watch on Secrets).
    pub reference_poll: Duration,
    /// Serialized members kept in one UserGroup object before a shard continues the list.
    pub shard_bytes: usize,
    /// UserGroups written at the same time within one run.
    pub write_concurrency: usize,
    /// Paces UserGroup writes across all runs, when a rate is set.
    pub write_limit: Option<DefaultDirectRateLimiter>,
    pub metrics: Arc<Metrics>,
    /// Runs in progress across all watched namespaces are limited by these permits.
    pub runs: Arc<Semaphore>,
    /// Every watched task, as the controllers' caches see them.
    pub tasks: Vec<Store<UserSynchronization>>,
    /// What each task's last directory read kept for an incremental next run.
    pub kept: KeptReads,
    /// The watched namespaces' UserGroups, kept current by a watch.
    pub user_groups: UserGroupView,
    /// The user records that the view, the kept reads and the runs share.
    pub users: Arc<UserPool>,
}

/// How long a run waits for the UserGroup view to show its writes.
const VIEW_CATCH_UP: Duration = Duration::from_secs(10);

const PREVIEW_SAMPLE: usize = 20;
const MAX_BACKOFF: Duration = Duration::from_secs(600);

pub async fn reconcile(
    task: Arc<UserSynchronization>,
    ctx: Arc<Context>,
) -> Result<Action, ControllerError> {
    let now = Timestamp::now();
    let status = task.status.clone().unwrap_or_default();
    let generation = task.metadata.generation;
    let api: Api<UserSynchronization> =
        Api::namespaced(ctx.client.clone(), &task.namespace().unwrap_or_default());

    if task.spec.suspend {
        let mut next = status.clone();
        next.observed_generation = generation;
        next.next_sync_time = None;
        conditions::set(
            &mut next.conditions,
            READY,
            false,
            "Suspended",
            "the task is suspended",
            generation,
            &Time(now),
        );
        conditions::set(
            &mut next.conditions,
            STALLED,
            false,
            "Suspended",
            "",
            generation,
            &Time(now),
        );
        conditions::set(
            &mut next.conditions,
            RECONCILING,
            false,
            "Suspended",
            "",
            generation,
            &Time(now),
        );
        write_status(&api, &task, &status, &next).await?;
        return Ok(Action::await_change());
    }

    let run_now = task.annotations().get(RUN_NOW_ANNOTATION).cloned();
    let first_run = status.last_sync_time.is_none();
    let spec_changed = status.observed_generation != generation && !first_run;
    let run_now_asked = run_now.is_some() && run_now != status.last_handled_run_now;
    let next_at = status.next_sync_time.as_ref().map(|t| t.0.as_second());
    let due_by_time = next_at.is_some_and(|t| t <= now.as_second());
    let namespace = task.namespace().unwrap_or_default();
    // Unreadable references are the run's business: it reports them.
    let references = material::references_version(&ctx.client, &namespace, &task.spec)
        .await
        .ok();
    let references_changed = status.references_version.is_some()
        && references.is_some()
        && references != status.references_version;
    let due = (first_run && task.spec.run_on_create)
        || spec_changed
        || run_now_asked
        || due_by_time
        || references_changed;
    if !due {
        if first_run && status.next_sync_time.is_none() {
            // runOnCreate: false: the first run waits for the schedule.
            let created = task
                .creation_timestamp()
                .map_or(now.as_second(), |t| t.0.as_second());
            let mut next = status.clone();
            next.observed_generation = generation;
            next.next_sync_time = schedule_time(&task, created)?;
            write_status(&api, &task, &status, &next).await?;
            return Ok(requeue_at(
                next.next_sync_time.as_ref(),
                now,
                ctx.reference_poll,
            ));
        }
        return Ok(requeue_at(
            status.next_sync_time.as_ref(),
            now,
            ctx.reference_poll,
        ));
    }

    let run_id = run_id();
    let span = info_span!("run", task = %task.name_any(), %namespace, %run_id);
    let permit = ctx.runs.clone().acquire_owned().await;
    let action = run_and_report(&task, &ctx, &api, status, run_now, references)
        .instrument(span)
        .await;
    drop(permit);
    action
}

/// Runs the task once and reports the outcome on status, in an Event, in metrics and in the log.
/// `run_now` and `references` are what `reconcile` saw when it decided the run was due.
async fn run_and_report(
    task: &UserSynchronization,
    ctx: &Context,
    api: &Api<UserSynchronization>,
    status: UserSynchronizationStatus,
    run_now: Option<String>,
    references: Option<String>,
) -> Result<Action, ControllerError> {
    let generation = task.metadata.generation;
    info!("run started");
    let started = Instant::now();
    let approval = task
        .annotations()
        .get(APPROVE_DELETIONS_ANNOTATION)
        .cloned();
    let approved = approval.is_some() && approval != status.last_handled_approval;
    let outcome = run(task, ctx, approved, status.incremental.as_ref()).await;
    let finished = Timestamp::now();
    let mut next = status.clone();
    next.observed_generation = generation;
    next.last_sync_time = Some(Time(finished));
    next.last_handled_run_now = run_now.or(next.last_handled_run_now);
    next.references_version = references.or(next.references_version);
    let reference = task.object_ref(&());
    if task.spec.server.tls.insecure_skip_verify {
        let message = "tls.insecureSkipVerify: the directory's certificate is not checked";
        conditions::set(
            &mut next.conditions,
            TLS_VERIFICATION_DISABLED,
            true,
            "InsecureSkipVerify",
            message,
            generation,
            &Time(finished),
        );
    } else {
        conditions::remove(&mut next.conditions, TLS_VERIFICATION_DISABLED);
    }
    conditions::set(
        &mut next.conditions,
        RECONCILING,
        false,
        "RunFinished",
        "",
        generation,
        &Time(finished),
    );

    ctx.metrics
        .duration
        .observe(started.elapsed().as_secs_f64());
    let task_labels = TaskLabels {
        namespace: task.namespace().unwrap_or_default(),
        task: task.name_any(),
    };
    let action = match outcome {
        Ok(result) => {
            let result_label = if result.plan.brake.is_some() {
                "braked"
            } else {
                "success"
            };
            ctx.metrics
                .runs
                .get_or_create(&ResultLabels {
                    result: result_label,
                })
                .inc();
            ctx.metrics
                .users
                .get_or_create(&task_labels)
                .set(result.users as i64);
            ctx.metrics
                .groups
                .get_or_create(&task_labels)
                .set(result.groups as i64);
            ctx.metrics
                .last_success
                .get_or_create(&task_labels)
                .set(finished.as_millisecond() as f64 / 1000.0);
            next.consecutive_failures = 0;
            next.last_successful_sync_time = Some(Time(finished));
            next.next_sync_time = schedule_time(task, finished.as_second())?;
            if approved && result.plan.brake.is_none() {
                next.last_handled_approval = approval;
            }
            conditions::set(
                &mut next.conditions,
                DIRECTORY_REACHABLE,
                true,
                "Connected",
                &format!("read from {}", result.server),
                generation,
                &Time(finished),
            );
            let summary = summary(&result, started.elapsed());
            let (event_type, reason, message) = match result.plan.brake {
                Some(brake) => {
                    let message = format!(
                        "the run would remove {} objects, more than maxDeletions allows ({}); nothing was removed. Raise maxDeletions or set the {} annotation to approve one run.",
                        brake.would_remove, brake.limit, APPROVE_DELETIONS_ANNOTATION
                    );
                    conditions::set(
                        &mut next.conditions,
                        STALLED,
                        true,
                        "DeletionThresholdExceeded",
                        &message,
                        generation,
                        &Time(finished),
                    );
                    conditions::set(
                        &mut next.conditions,
                        READY,
                        false,
                        "DeletionThresholdExceeded",
                        &message,
                        generation,
                        &Time(finished),
                    );
                    (EventType::Warning, "DeletionThresholdExceeded", message)
                }
                None => {
                    let message = run_message(&summary, &result);
                    conditions::set(
                        &mut next.conditions,
                        STALLED,
                        false,
                        "Synced",
                        "",
                        generation,
                        &Time(finished),
                    );
                    conditions::set(
                        &mut next.conditions,
                        READY,
                        true,
                        if task.spec.dry_run {
                            "Previewed"
                        } else {
                            "Synced"
                        },
                        &message,
                        generation,
                        &Time(finished),
                    );
                    (
                        EventType::Normal,
                        if task.spec.dry_run {
                            "Previewed"
                        } else {
                            "Synced"
                        },
                        message,
                    )
                }
            };
            next.preview = task.spec.dry_run.then(|| preview(&result.plan));
            next.incremental = result.incremental.clone();
            next.last_run = Some(summary);
            publish(&ctx.recorder, &reference, event_type, reason, &message).await;
            info!(reason, "run finished");
            requeue_at(next.next_sync_time.as_ref(), finished, ctx.reference_poll)
        }
        Err(err) => {
            let reason = err.reason();
            ctx.metrics
                .runs
                .get_or_create(&ResultLabels { result: "failure" })
                .inc();
            ctx.metrics
                .failures
                .get_or_create(&ReasonLabels { reason })
                .inc();
            let message = err.to_string();
            warn!(reason, error = %message, "run failed");
            // What the failed run read is not kept: the next one starts from a full read.
            ctx.kept.forget(&task.uid().unwrap_or_default());
            next.incremental = None;
            if let Some(reachable) = err.directory_reachable() {
                let why = if reachable { "Connected" } else { reason };
                conditions::set(
                    &mut next.conditions,
                    DIRECTORY_REACHABLE,
                    reachable,
                    why,
                    if reachable { "" } else { &message },
                    generation,
                    &Time(finished),
                );
            }
            conditions::set(
                &mut next.conditions,
                READY,
                false,
                reason,
                &message,
                generation,
                &Time(finished),
            );
            conditions::set(
                &mut next.conditions,
                STALLED,
                !err.is_transient(),
                reason,
                &message,
                generation,
                &Time(finished),
            );
            publish(
                &ctx.recorder,
                &reference,
                EventType::Warning,
                reason,
                &message,
            )
            .await;
            if err.is_transient() {
                next.consecutive_failures = next.consecutive_failures.saturating_add(1);
                let delay = backoff(next.consecutive_failures);
                next.next_sync_time = Some(Time(finished + delay));
                Action::requeue(delay)
            } else {
                // A permanent failure waits for a change of the task or of what it references.
                next.consecutive_failures = 0;
                next.next_sync_time = None;
                requeue_at(None, finished, ctx.reference_poll)
            }
        }
    };
    write_status(api, task, &status, &next).await?;
    Ok(action)
}

struct RunResult {
    server: String,
    read_kind: ReadKind,
    entries_read: usize,
    incremental: Option<IncrementalStatus>,
    plan: Plan,
    applied: Applied,
    users: usize,
    groups: usize,
    unresolved: usize,
}

async fn run(
    task: &UserSynchronization,
    ctx: &Context,
    approved: bool,
    incremental: Option<&IncrementalStatus>,
) -> Result<RunResult, ControllerError> {
    let namespace = task.namespace().unwrap_or_default();
    schedule_time(task, 0)?;
    let full_every = parse_interval(&task.spec.incremental.full_sync_interval)
        .map_err(|e| ControllerError::InvalidSpec(format!("incremental.fullSyncInterval: {e}")))?;
    let material = material::fetch(&ctx.client, &namespace, &task.spec).await?;
    let uid = task.uid().unwrap_or_default();
    let feed = feed(ctx, task, &uid, incremental, full_every);
    let step = Instant::now();
    let (read, server) = read_directory(task, material, &ctx.read_options, feed).await?;
    info!(
        kind = ?read.kind,
        entries = read.snapshot.stats.entries,
        seconds = step.elapsed().as_secs_f64(),
        "read"
    );
    let step = Instant::now();
    let Read {
        mut snapshot,
        kind: read_kind,
        mut kept,
        ..
    } = read;
    if let Some(kept) = kept.as_mut() {
        ctx.users
            .share_all(kept.entries.users.values_mut().map(|raw| &mut raw.user));
        ctx.users.share_all(&mut kept.snapshot.users);
    }
    ctx.users.share_all(&mut snapshot.users);
    let incremental = kept.as_ref().map(|k| status_of(k));
    if let Some(kept) = kept {
        keep(ctx, &uid, kept);
    }
    ctx.metrics
        .entries_read
        .inc_by(snapshot.stats.entries as u64);
    ctx.metrics
        .reads
        .get_or_create(&ReadLabels {
            kind: match read_kind {
                ReadKind::Full => "full",
                ReadKind::Incremental => "incremental",
            },
        })
        .inc();
    let groups_api: Api<UserGroup> = Api::namespaced(ctx.client.clone(), &namespace);
    let objects = match ctx.user_groups.objects(&namespace, &uid) {
        Some(objects) => objects,
        None => {
            ctx.metrics.user_group_lists.inc();
            list_groups(&groups_api, &ctx.users).await?
        }
    };
    let (plan, state) = plan_changes(&objects, task, desired_of(task, &snapshot), approved)?;
    info!(
        create = plan.create.len(),
        update = plan.update.len(),
        remove = plan.remove.len(),
        seconds = step.elapsed().as_secs_f64(),
        "planned"
    );
    let step = Instant::now();
    let applied = if task.spec.dry_run {
        Applied::default()
    } else {
        let writer = Writer {
            api: &groups_api,
            task,
            state: &state,
            shard_bytes: ctx.shard_bytes,
            concurrency: ctx.write_concurrency,
            limit: ctx.write_limit.as_ref(),
            written: Default::default(),
        };
        let applied = writer.apply(&plan, &Timestamp::now().to_string()).await;
        let written = writer
            .written
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        let wrote = step.elapsed();
        match &applied {
            Ok(_) => {
                ctx.user_groups
                    .wait_for(&namespace, &uid, &written, VIEW_CATCH_UP)
                    .await
            }
            Err(_) => ctx.user_groups.list_next_run(&uid),
        }
        info!(
            objects = written.applied.len() + written.removed.len(),
            seconds = wrote.as_secs_f64(),
            view_seconds = (step.elapsed() - wrote).as_secs_f64(),
            "applied"
        );
        let applied = applied?;
        let written = applied.created + applied.updated + applied.marked + applied.removed;
        ctx.metrics.objects_written.inc_by(written as u64);
        applied
    };
    // Records of users that left the directory and every UserGroup are no longer needed.
    ctx.users.prune();
    Ok(RunResult {
        server,
        read_kind,
        entries_read: snapshot.stats.entries,
        incremental,
        users: snapshot.users.len(),
        groups: snapshot.groups.len(),
        unresolved: snapshot.unresolved.count,
        plan,
        applied,
    })
}

/// How the task's read follows the directory's change feed: from what its last read kept, when
/// status still describes it and no full read is due.
fn feed(
    ctx: &Context,
    task: &UserSynchronization,
    uid: &str,
    incremental: Option<&IncrementalStatus>,
    full_every: Duration,
) -> Feed {
    match task.spec.incremental.mode {
        IncrementalMode::Disabled => {
            ctx.kept.forget(uid);
            Feed::Off
        }
        IncrementalMode::Auto => {
            Feed::Follow(
                ctx.kept
                    .take(uid, incremental, full_every, std::time::SystemTime::now()),
            )
        }
    }
}

/// Keeps the task's read for its next run, forgetting those of tasks no longer watched.
fn keep(ctx: &Context, uid: &str, kept: Box<Kept>) {
    let live: std::collections::HashSet<String> = ctx
        .tasks
        .iter()
        .flat_map(|store| store.state())
        .filter_map(|t| t.uid())
        .collect();
    ctx.kept
        .put(uid, kept, |other| other == uid || live.contains(other));
}

/// Step 1 of a run: the complete snapshot of the task's part of the directory (read incrementally
/// when `feed` allows), and the server that gave it.
pub async fn read_directory(
    task: &UserSynchronization,
    material: crate::directory::settings::Material,
    options: &ReadOptions,
    feed: Feed,
) -> Result<(Read, String), ControllerError> {
    let settings = server_settings(&task.spec.server, material)?;
    let directory = task.spec.directory.clone();
    let options = options.clone();
    let first_url = settings.urls.first().cloned().unwrap_or_default();
    let read = on_reader_thread(&first_url, async move {
        let mut conn = connect(&settings).await?;
        let mut read = read(&mut conn, &directory, &options, feed).await?;
        let _ = conn.ldap.unbind().await;
        let unkept = read.discarded.take();
        Ok(((read, conn.server), unkept))
    })
    .await?;
    Ok(read)
}

/// The groups the snapshot asks for under the task's settings.
pub fn desired_of(task: &UserSynchronization, snapshot: &Snapshot) -> Vec<DesiredGroup> {
    let spec = &task.spec;
    desired_groups(
        snapshot,
        &spec.target_group,
        spec.description.as_deref(),
        spec.directory.nested_groups,
    )
}

/// Step 2: what to change in the task's namespace (whose UserGroups are `objects`) so it matches
/// the snapshot.
pub fn plan_changes<'a>(
    objects: &'a [Arc<UserGroup>],
    task: &UserSynchronization,
    desired: Vec<DesiredGroup>,
    approved: bool,
) -> Result<(Plan, ClusterState<'a>), ControllerError> {
    let spec = &task.spec;
    let max_deletions = MaxDeletions::parse(&spec.max_deletions).ok_or_else(|| {
        ControllerError::InvalidSpec("maxDeletions must be an integer or a percentage".into())
    })?;
    let state = cluster_state(objects, task);
    let policies = Policies {
        task: task.name_any(),
        collision: spec.collision_policy,
        user_extinction: spec.user_extinction_policy,
        group_extinction: spec.group_extinction_policy,
        max_deletions,
        deletions_approved: approved,
    };
    Ok((plan(desired, &state.groups, &policies), state))
}

fn schedule_time(task: &UserSynchronization, from: i64) -> Result<Option<Time>, ControllerError> {
    let next =
        next_run(&task.spec, from).map_err(|e| ControllerError::InvalidSpec(e.to_string()))?;
    Ok(next.and_then(|s| Timestamp::from_second(s).ok()).map(Time))
}

/// Back at the next run time, and at least every `poll` to notice rotated Secrets.
fn requeue_at(next: Option<&Time>, now: Timestamp, poll: Duration) -> Action {
    let until_next =
        next.map(|t| Duration::from_secs((t.0.as_second() - now.as_second()).max(1) as u64));
    Action::requeue(until_next.map_or(poll, |d| d.min(poll)))
}

/// A short id that ties together the log lines of one run.
fn run_id() -> String {
    format!("{:012x}", fastrand::u64(..) >> 16)
}

/// 5 s, 10 s, 20 s … up to 10 minutes.
fn backoff(failures: i32) -> Duration {
    let exponent = u32::try_from(failures.saturating_sub(1))
        .unwrap_or(0)
        .min(10);
    (Duration::from_secs(5) * 2u32.pow(exponent)).min(MAX_BACKOFF)
}

fn summary(result: &RunResult, elapsed: Duration) -> RunSummary {
    let plan = &result.plan;
    RunSummary {
        users: result.users as i64,
        groups: result.groups as i64,
        created: result.applied.created as i64,
        updated: (result.applied.updated + result.applied.marked) as i64,
        removed: (result.applied.removed + plan.users_removed) as i64,
        skipped: plan.skipped.len() as i64,
        duration_seconds: (elapsed.as_secs_f64() * 100.0).round() / 100.0,
        unresolved_members: result.unresolved as i64,
        directory_read: match result.read_kind {
            ReadKind::Full => "Full",
            ReadKind::Incremental => "Incremental",
        }
        .to_owned(),
        entries_read: result.entries_read as i64,
    }
}

fn run_message(s: &RunSummary, result: &RunResult) -> String {
    let mut message = format!(
        "{} users in {} groups from {}: {} created, {} updated, {} removed, {} skipped",
        s.users, s.groups, result.server, s.created, s.updated, s.removed, s.skipped
    );
    if s.unresolved_members > 0 {
        message.push_str(&format!(
            "; {} member values name nothing in scope",
            s.unresolved_members
        ));
    }
    message
}

pub fn preview(plan: &Plan) -> Preview {
    let mut changes: Vec<PlannedChange> = Vec::new();
    let change =
        |action: &str, name: &str, display: Option<&str>, reason: Option<String>| PlannedChange {
            action: action.to_owned(),
            name: name.to_owned(),
            display_name: display.map(str::to_owned),
            reason,
        };
    changes.extend(
        plan.create
            .iter()
            .map(|w| change("Create", &w.name, Some(&w.spec.display_name), None)),
    );
    changes.extend(
        plan.update
            .iter()
            .map(|w| change("Update", &w.name, Some(&w.spec.display_name), None)),
    );
    changes.extend(plan.remove.iter().map(|n| change("Remove", n, None, None)));
    changes.extend(
        plan.skipped
            .iter()
            .map(|s| change("Skip", &s.name, None, Some(format!("{:?}", s.reason)))),
    );
    let truncated = changes.len() > PREVIEW_SAMPLE;
    changes.truncate(PREVIEW_SAMPLE);
    Preview {
        create: plan.create.len() as i64,
        update: plan.update.len() as i64,
        remove: plan.remove.len() as i64,
        skip: plan.skipped.len() as i64,
        changes,
        truncated,
    }
}

async fn publish(
    recorder: &Recorder,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    type_: EventType,
    reason: &str,
    note: &str,
) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note.to_owned()),
        action: "Sync".to_owned(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, reference).await {
        warn!(error = %e, "cannot publish an Event");
    }
}

/// Writes status only when it changed.
async fn write_status(
    api: &Api<UserSynchronization>,
    task: &UserSynchronization,
    old: &UserSynchronizationStatus,
    new: &UserSynchronizationStatus,
) -> Result<(), ControllerError> {
    if old == new {
        return Ok(());
    }
    let patch = serde_json::json!({
        "apiVersion": UserSynchronization::api_version(&()),
        "kind": UserSynchronization::kind(&()),
        "status": new,
    });
    api.patch_status(
        &task.name_any(),
        &PatchParams::apply(crate::api::FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(kube("writing status"))?;
    Ok(())
}
