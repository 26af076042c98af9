//! The last step of a run: from the previous status, the run's outcome, the task's generation and
//! the clock to the new status, the Event and when to look at the task again. Pure: the controller
//! writes what this decides.

use std::time::Duration;

/// The reason a run stopped at maxDeletions gives (Stalled, Ready and its Event).
pub const DELETION_THRESHOLD_EXCEEDED: &str = "DeletionThresholdExceeded";

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::events::EventType;

use super::conditions::{
    self, DIRECTORY_REACHABLE, READY, RECONCILING, STALLED, TLS_VERIFICATION_DISABLED,
};
use super::schedule::Schedule;
use crate::api::{
    APPROVE_DELETIONS_ANNOTATION, IncrementalStatus, Preview, RunSummary, UserSynchronizationStatus,
};
use crate::planner::plan::Brake;

/// The first retry of a transient failure; each further failure doubles it.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(5);
/// Retries of transient failures are never further apart than this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// What the task is and what the controller saw when it decided to run it.
#[derive(Clone, Debug, Default)]
pub struct Task<'a> {
    pub generation: Option<i64>,
    pub dry_run: bool,
    pub insecure_skip_verify: bool,
    /// `None` when the spec did not pass validation.
    pub schedule: Option<&'a Schedule>,
    /// The run-now annotation's value this run answers.
    pub run_now: Option<String>,
    /// The referenced Secrets' and ConfigMaps' versions this run read.
    pub references: Option<String>,
    /// The approve-deletions annotation's value, when it is a new one this run may use.
    pub approval: Option<String>,
    /// How often an idle task is looked at anyway (rotated Secrets).
    pub poll: Duration,
}

/// A run that read, planned and applied (or previewed).
#[derive(Clone, Debug, PartialEq)]
pub struct Synced {
    /// The server that answered.
    pub server: String,
    pub summary: RunSummary,
    /// Set when the run held back removals: more than maxDeletions, not approved.
    pub brake: Option<Brake>,
    /// The planned changes, for a dry run.
    pub preview: Option<Preview>,
    /// Where the directory's change feed stands, when the read is kept for an incremental next run.
    pub incremental: Option<IncrementalStatus>,
    /// The first few entries the read could not use, as `<dn>: <why>`.
    pub unreadable_sample: Vec<String>,
}

/// A run that failed, in the terms status and metrics speak.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Low-cardinality: `InvalidCredentials`, `InvalidSpec`, …
    pub reason: &'static str,
    pub message: String,
    /// Transient failures retry with back-off; the others wait for a change of the task or its Secrets.
    pub transient: bool,
    /// What the failure says about reaching the directory, if anything.
    pub directory_reachable: Option<bool>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Synced(Box<Synced>),
    Failed(Failure),
}

/// An Event for the task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub type_: EventType,
    pub reason: &'static str,
    pub message: String,
}

/// What to write and when to come back.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub status: UserSynchronizationStatus,
    pub event: Option<Note>,
    /// `None`: only a change of the task brings it back.
    pub requeue: Option<Duration>,
}

/// A finished run.
pub fn finished(
    previous: &UserSynchronizationStatus,
    task: &Task<'_>,
    outcome: &Outcome,
    now: Timestamp,
) -> Report {
    let mut status = previous.clone();
    status.observed_generation = task.generation;
    status.last_sync_time = Some(Time(now));
    status.last_handled_run_now = task.run_now.clone().or(status.last_handled_run_now);
    status.references_version = task.references.clone().or(status.references_version);
    let mut set = Conditions {
        status,
        generation: task.generation,
        now: Time(now),
    };
    if task.insecure_skip_verify {
        set.condition(
            TLS_VERIFICATION_DISABLED,
            true,
            "InsecureSkipVerify",
            "tls.insecureSkipVerify: the directory's certificate is not checked",
        );
    } else {
        conditions::remove(&mut set.status.conditions, TLS_VERIFICATION_DISABLED);
    }
    set.condition(RECONCILING, false, "RunFinished", "");
    match outcome {
        Outcome::Synced(synced) => succeeded(set, task, synced),
        Outcome::Failed(failure) => failed(set, task, failure),
    }
}

fn succeeded(mut set: Conditions, task: &Task<'_>, synced: &Synced) -> Report {
    let now = set.now.0;
    set.condition(
        DIRECTORY_REACHABLE,
        true,
        "Connected",
        &format!("read from {}", synced.server),
    );
    let (type_, reason, message) = match &synced.brake {
        Some(brake) => {
            let message = format!(
                "the run would remove {} objects, more than maxDeletions allows ({}); nothing was removed. Raise maxDeletions, or give the {} annotation a new value to approve one run (it starts at once).",
                brake.would_remove, brake.limit, APPROVE_DELETIONS_ANNOTATION
            );
            let reason = DELETION_THRESHOLD_EXCEEDED;
            set.condition(STALLED, true, reason, &message);
            set.condition(READY, false, reason, &message);
            (EventType::Warning, reason, message)
        }
        None => {
            let reason = if task.dry_run { "Previewed" } else { "Synced" };
            let mut message = run_message(&synced.summary, &synced.server);
            set.condition(STALLED, false, "Synced", "");
            if synced.summary.unreadable_entries > 0 {
                message.push_str(&format!(
                    "; {} directory entries cannot be used, and what stands for them is kept as it was: {}",
                    synced.summary.unreadable_entries,
                    synced.unreadable_sample.join("; ")
                ));
                set.condition(READY, true, reason, &message);
                (EventType::Warning, "UnreadableEntries", message)
            } else {
                set.condition(READY, true, reason, &message);
                (EventType::Normal, reason, message)
            }
        }
    };
    let mut status = set.status;
    status.consecutive_failures = 0;
    status.last_successful_sync_time = Some(Time(now));
    status.next_sync_time = next_time(task.schedule, now);
    if task.approval.is_some() && synced.brake.is_none() {
        status.last_handled_approval = task.approval.clone();
    }
    status.preview = if task.dry_run || synced.brake.is_some() {
        synced.preview.clone()
    } else {
        None
    };
    status.incremental = synced.incremental.clone();
    status.last_run = Some(synced.summary.clone());
    let requeue = requeue_at(status.next_sync_time.as_ref(), now, task.poll);
    Report {
        status,
        event: Some(Note {
            type_,
            reason,
            message,
        }),
        requeue: Some(requeue),
    }
}

fn failed(mut set: Conditions, task: &Task<'_>, failure: &Failure) -> Report {
    let now = set.now.0;
    let (reason, message) = (failure.reason, failure.message.as_str());
    if let Some(reachable) = failure.directory_reachable {
        let (why, text) = if reachable {
            ("Connected", "")
        } else {
            (reason, message)
        };
        set.condition(DIRECTORY_REACHABLE, reachable, why, text);
    }
    set.condition(READY, false, reason, message);
    set.condition(STALLED, !failure.transient, reason, message);
    let mut status = set.status;
    // What the failed run read is not kept: the next one starts from a full read.
    status.incremental = None;
    let requeue = if failure.transient {
        status.consecutive_failures = status.consecutive_failures.saturating_add(1);
        let delay = backoff(status.consecutive_failures);
        status.next_sync_time = Some(Time(now + delay));
        Some(delay)
    } else {
        status.consecutive_failures = 0;
        status.next_sync_time = None;
        // An invalid spec waits for a new spec; other permanent failures also for their Secrets.
        (failure.reason != INVALID_SPEC).then_some(task.poll)
    };
    Report {
        status,
        event: Some(Note {
            type_: EventType::Warning,
            reason,
            message: message.to_owned(),
        }),
        requeue,
    }
}

/// The reason of a spec that did not pass validation.
pub const INVALID_SPEC: &str = "InvalidSpec";

/// Whether `status` already reports this validation failure for this generation: then there is
/// nothing new to write or announce.
pub fn reports_invalid_spec(
    status: &UserSynchronizationStatus,
    generation: Option<i64>,
    message: &str,
) -> bool {
    status.observed_generation == generation
        && status.conditions.iter().any(|c| {
            c.type_ == STALLED
                && c.status == "True"
                && c.reason == INVALID_SPEC
                && c.message == message
        })
}

/// Whether the task's last run ran out of time (its own `runTimeout`, or a server's timeout): such
/// tasks share a part of the run slots, so that they never hold all of them.
pub fn ran_out_of_time(status: &UserSynchronizationStatus) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.type_ == READY && matches!(c.reason.as_str(), "RunTimeout" | "Timeout"))
}

/// A run about to start: status says so at once, for the generation it runs (kstatus and Argo CD
/// read the task as in progress until it finishes).
pub fn started(
    previous: &UserSynchronizationStatus,
    generation: Option<i64>,
    trigger: &str,
    now: Timestamp,
) -> UserSynchronizationStatus {
    let mut status = previous.clone();
    status.observed_generation = generation;
    let mut set = Conditions {
        status,
        generation,
        now: Time(now),
    };
    let message = format!("a run started ({trigger})");
    set.condition(RECONCILING, true, "Running", &message);
    // Not stalled while it runs: the run's end says again whether it is (kstatus reads a Stalled
    // condition before Reconciling, and Argo CD's check as well).
    set.condition(STALLED, false, "Running", "");
    set.status
}

/// A suspended task: no Ready condition (readiness does not apply, and kstatus reads both False and
/// Unknown as in progress), not stalled, nothing in progress, no timed run; a change of the task
/// resumes it.
pub fn suspended(
    previous: &UserSynchronizationStatus,
    generation: Option<i64>,
    now: Timestamp,
) -> Report {
    let mut status = previous.clone();
    status.observed_generation = generation;
    status.next_sync_time = None;
    let mut set = Conditions {
        status,
        generation,
        now: Time(now),
    };
    conditions::remove(&mut set.status.conditions, READY);
    set.condition(STALLED, false, "Suspended", "the task is suspended");
    set.condition(RECONCILING, false, "Suspended", "");
    Report {
        status: set.status,
        event: None,
        requeue: None,
    }
}

/// A task whose first run waits for its schedule (`runOnCreate: false`): status says when.
pub fn waiting_for_schedule(
    previous: &UserSynchronizationStatus,
    task: &Task<'_>,
    created: Timestamp,
    now: Timestamp,
) -> Report {
    let mut status = previous.clone();
    status.observed_generation = task.generation;
    status.next_sync_time = next_time(task.schedule, created);
    let requeue = requeue_at(status.next_sync_time.as_ref(), now, task.poll);
    Report {
        status,
        event: None,
        requeue: Some(requeue),
    }
}

/// Back at the next run time, and at least every `poll` to notice rotated Secrets.
pub fn requeue_at(next: Option<&Time>, now: Timestamp, poll: Duration) -> Duration {
    let until_next = next.map(|t| {
        let seconds = t.0.as_second().saturating_sub(now.as_second()).max(1);
        Duration::from_secs(u64::try_from(seconds).unwrap_or(1))
    });
    until_next.map_or(poll, |d| d.min(poll))
}

/// 5 s, 10 s, 20 s … up to [`MAX_BACKOFF`], for the n-th failure in a row.
pub fn backoff(failures: i32) -> Duration {
    let exponent = u32::try_from(failures.saturating_sub(1))
        .unwrap_or(0)
        .min(10);
    (FIRST_BACKOFF * 2u32.pow(exponent)).min(MAX_BACKOFF)
}

fn next_time(schedule: Option<&Schedule>, from: Timestamp) -> Option<Time> {
    let next = schedule?.next_after(from.as_second())?;
    Timestamp::from_second(next).ok().map(Time)
}

fn run_message(s: &RunSummary, server: &str) -> String {
    let mut message = format!(
        "{} users in {} groups from {server}: {} created, {} updated, {} removed, {} skipped",
        s.users, s.groups, s.created, s.updated, s.removed, s.skipped
    );
    if s.unresolved_members > 0 {
        message.push_str(&format!(
            "; {} member values name nothing in scope",
            s.unresolved_members
        ));
    }
    if s.duplicates_removed > 0 {
        message.push_str(&format!(
            "; {} copies of the task's objects removed",
            s.duplicates_removed
        ));
    }
    message
}

/// Sets conditions on one status for one generation at one time.
struct Conditions {
    status: UserSynchronizationStatus,
    generation: Option<i64>,
    now: Time,
}

impl Conditions {
    fn condition(&mut self, type_: &str, value: bool, reason: &str, message: &str) {
        conditions::set(
            &mut self.status.conditions,
            type_,
            value,
            reason,
            message,
            self.generation,
            &self.now,
        );
    }
}

#[cfg(test)]
mod tests;
