//! One look at a task: suspended, invalid, not due, or a run. The decisions are the `run` steps'
//! (trigger, validate, report); what is left here is I/O: the status write, the Event, metrics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::events::Note;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use tracing::{Instrument, info, info_span, warn};

use super::context::Context;
use super::error::ControllerError;
use super::execute::execute;
use super::lifecycle;
use super::metrics::TaskLabels;
use crate::api::{FIELD_MANAGER, PushMode, UserSynchronization, UserSynchronizationStatus};
use crate::run::conditions;
use crate::run::report::{self, Failure, INVALID_SPEC, Outcome, Report};
use crate::run::resolve::{Given, InCluster, look, resolve};
use crate::run::trigger::{Trigger, due, new_approval};
use crate::run::validate::{Checked, InvalidSpec, validate};
use crate::run::{ApiError, RunError};

pub async fn reconcile(
    task: Arc<UserSynchronization>,
    ctx: Arc<Context>,
) -> Result<Action, ControllerError> {
    let uid = task.uid().unwrap_or_default();
    if !ctx
        .state
        .status_writes
        .seen_in(&uid, &task.resource_version().unwrap_or_default())
    {
        // The cache has not caught up with this operator's last status write: its event follows.
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let now = Timestamp::now();
    let previous = task.status.clone().unwrap_or_default();
    let generation = task.metadata.generation;
    if let Some(done) = lifecycle::handle(&ctx, &task).await? {
        return Ok(done);
    }
    if task.spec.suspend {
        ctx.state.feeds.stop(&uid);
        let report = report::suspended(&previous, generation, now);
        return write(&ctx, &task, &previous, report).await;
    }
    let checked = match validate(&task.spec, now.as_second()) {
        Ok(checked) => checked,
        Err(invalid) => {
            ctx.state.feeds.stop(&uid);
            return refuse(&ctx, &task, &previous, invalid, now).await;
        }
    };
    let references = InCluster {
        client: ctx.client.clone(),
    };
    let namespace = task.namespace().unwrap_or_default();
    // Unreadable references are the run's business: it reports them.
    let looked = look(&namespace, &task.spec, &references, &ctx.options.references)
        .await
        .ok();
    let versions = looked.as_ref().map(|l| l.version.clone());
    let facts = report::Task {
        generation,
        dry_run: task.spec.dry_run,
        insecure_skip_verify: looked.is_some_and(|l| l.insecure_skip_verify),
        schedule: Some(&checked.schedule),
        run_now: task
            .annotations()
            .get(crate::api::RUN_NOW_ANNOTATION)
            .cloned(),
        references: versions.clone(),
        approval: new_approval(&task),
        poll: ctx.options.reference_poll,
    };
    // Asked whatever else is due: any run reads what the directory pushed.
    let pushed = ctx.state.feeds.take_pending(&uid);
    let trigger = due(&task, now, versions.as_deref())
        .or(pushed.then_some(Trigger::DirectoryChanged))
        .or_else(|| drifted(&ctx, &task).then_some(Trigger::ObjectsChanged));
    let push_version = format!(
        "{}/{}",
        generation.unwrap_or_default(),
        versions.as_deref().unwrap_or_default()
    );
    let Some(trigger) = trigger else {
        follow_pushes(&ctx, &task, &push_version).await;
        if let Some(push) = ctx.state.feeds.status(&task)
            && previous.last_sync_time.is_some()
            && previous.push.as_ref() != Some(&push)
        {
            let status = UserSynchronizationStatus {
                push: Some(push),
                ..previous.clone()
            };
            write_status(&ctx, &task, &status).await?;
        }
        if previous.last_sync_time.is_none() && previous.next_sync_time.is_none() {
            // runOnCreate: false: the first run waits for the schedule; status says when.
            let created = task.creation_timestamp().map_or(now, |t| t.0);
            let report = report::waiting_for_schedule(&previous, &facts, created, now);
            return write(&ctx, &task, &previous, report).await;
        }
        let next = previous.next_sync_time.as_ref();
        let requeue = report::requeue_at(next, now, ctx.options.reference_poll);
        return Ok(Action::requeue(requeue));
    };
    let span = info_span!("run", task = %task.name_any(),
        namespace = %task.namespace().unwrap_or_default(), run_id = %run_id());
    let action = execute_and_report(&ctx, &task, &previous, &checked, &facts, trigger)
        .instrument(span)
        .await;
    follow_pushes(&ctx, &task, &push_version).await;
    action
}

/// Opens the task's push feed, or reopens it when the task or what it reads through changed
/// (`version`); ends it when the task turned push off.
async fn follow_pushes(ctx: &Context, task: &UserSynchronization, version: &str) {
    let uid = task.uid().unwrap_or_default();
    if task.spec.push.mode == PushMode::Disabled || task.meta().deletion_timestamp.is_some() {
        ctx.state.feeds.stop(&uid);
        return;
    }
    if ctx.state.feeds.follows(task, version) {
        return;
    }
    let references = InCluster {
        client: ctx.client.clone(),
    };
    let namespace = task.namespace().unwrap_or_default();
    let policy = &ctx.options.references;
    // What cannot be resolved is the runs' to report; the feed waits for a version that can.
    if let Ok(resolved) = resolve(
        &namespace,
        &task.spec,
        &references,
        Given::default(),
        policy,
    )
    .await
    {
        ctx.state.feeds.start(task, version, resolved);
    }
}

/// Runs the task now, once a run slot is free, and reports how it went.
async fn execute_and_report(
    ctx: &Context,
    task: &UserSynchronization,
    previous: &UserSynchronizationStatus,
    checked: &Checked,
    facts: &report::Task<'_>,
    trigger: Trigger,
) -> Result<Action, ControllerError> {
    // Status says a run is on its way before it waits for a slot: a new task has a status at once.
    let running = report::started(
        previous,
        facts.generation,
        trigger.as_str(),
        Timestamp::now(),
    );
    if running != *previous {
        write_status(ctx, task, &running).await?;
    }
    // A task whose last run ran out of time first takes one of the slots such tasks share: they
    // hold at most half of the run slots, and the other tasks never wait behind them all.
    let slow = match report::ran_out_of_time(previous) {
        true => Some(ctx.state.slow_runs.clone().acquire_owned().await),
        false => None,
    };
    let permit = ctx.state.runs.clone().acquire_owned().await;
    info!(trigger = trigger.as_str(), "run started");
    let started = Instant::now();
    let outcome = execute(task, ctx, checked, facts.approval.is_some(), trigger).await;
    drop((permit, slow));
    let finished = Timestamp::now();
    let labels = TaskLabels {
        namespace: task.namespace().unwrap_or_default(),
        task: task.name_any(),
    };
    let seconds = started.elapsed().as_secs_f64();
    let finished_at = finished.as_millisecond() as f64 / 1000.0;
    ctx.metrics
        .record_run(labels, &outcome, seconds, finished_at);
    let report = report::finished(&running, facts, &outcome, finished);
    let reason = report.event.as_ref().map_or("", |e| e.reason);
    match &outcome {
        Outcome::Synced(_) => info!(reason, "run finished"),
        Outcome::Failed(f) => warn!(reason, error = %f.message, "run failed"),
    }
    write(ctx, task, &running, report).await
}

/// A spec that did not pass validation: reported once per generation, then nothing happens until
/// the task changes.
async fn refuse(
    ctx: &Context,
    task: &UserSynchronization,
    previous: &UserSynchronizationStatus,
    invalid: InvalidSpec,
    now: Timestamp,
) -> Result<Action, ControllerError> {
    let generation = task.metadata.generation;
    let error = RunError::from(invalid);
    let message = error.to_string();
    if report::reports_invalid_spec(previous, generation, &message) {
        return Ok(Action::await_change());
    }
    warn!(task = %task.name_any(), reason = INVALID_SPEC, error = %message, "invalid spec");
    let facts = report::Task {
        generation,
        insecure_skip_verify: task
            .spec
            .server
            .as_ref()
            .is_some_and(|s| s.tls.insecure_skip_verify),
        poll: ctx.options.reference_poll,
        ..report::Task::default()
    };
    let outcome = Outcome::Failed(Failure {
        reason: error.reason(),
        message,
        transient: false,
        directory_reachable: None,
    });
    let report = report::finished(previous, &facts, &outcome, now);
    write(ctx, task, previous, report).await
}

/// Publishes the report's Event, writes its status when it changed, and returns its requeue.
async fn write(
    ctx: &Context,
    task: &UserSynchronization,
    previous: &UserSynchronizationStatus,
    report: Report,
) -> Result<Action, ControllerError> {
    ctx.state.fence.check()?;
    if let Some(note) = report.event {
        let shown = conditions::bounded(&note.message, conditions::MAX_NOTE_BYTES);
        if shown.len() < note.message.len() {
            info!(reason = note.reason, note = %note.message, "the Event carries this note cut short");
        }
        let event = Note {
            type_: note.type_,
            reason: note.reason.to_owned(),
            note: shown.into_owned(),
            action: "Sync".to_owned(),
        };
        if let Err(e) = ctx.events.publish(event, task.object_ref(&())).await {
            warn!(error = %e, "cannot publish an Event");
        }
    }
    let mut status = report.status;
    if let Some(push) = ctx.state.feeds.status(task) {
        status.push = Some(push);
    }
    if status != *previous {
        write_status(ctx, task, &status).await?;
    }
    Ok(match report.requeue {
        Some(after) => Action::requeue(after.max(Duration::from_secs(1))),
        None => Action::await_change(),
    })
}

async fn write_status(
    ctx: &Context,
    task: &UserSynchronization,
    status: &UserSynchronizationStatus,
) -> Result<(), ControllerError> {
    ctx.state.fence.check()?;
    let api: Api<UserSynchronization> =
        Api::namespaced(ctx.client.clone(), &task.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "apiVersion": UserSynchronization::api_version(&()),
        "kind": UserSynchronization::kind(&()),
        "status": status,
    });
    let written = api
        .patch_status(
            &task.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(ApiError::while_("writing status"))?;
    if let (Some(uid), Some(version)) = (task.uid(), written.resource_version()) {
        ctx.state.status_writes.record(&uid, version);
    }
    Ok(())
}

/// Whether the task's UserGroups are no longer as its last run left them (not for dry runs, which
/// leave nothing).
fn drifted(ctx: &Context, task: &UserSynchronization) -> bool {
    let (namespace, uid) = (
        task.namespace().unwrap_or_default(),
        task.uid().unwrap_or_default(),
    );
    !task.spec.dry_run
        && ctx
            .state
            .user_groups
            .versions(&namespace, &uid)
            .is_some_and(|now| ctx.state.settled.drifted(&uid, &now))
}

/// A short id that ties together the log lines of one run.
fn run_id() -> String {
    format!("{:012x}", fastrand::u64(..) >> 16)
}
