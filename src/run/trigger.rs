//! Whether a task runs now, and why: the first step the controller takes on every look at a task.
//! Pure: the controller passes what it saw (the task, its status, the clock, its Secrets' versions).

use k8s_openapi::jiff::Timestamp;

use crate::api::{APPROVE_DELETIONS_ANNOTATION, RUN_NOW_ANNOTATION, UserSynchronization};

/// Why a run starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The task was created (`runOnCreate`).
    Created,
    SpecChanged,
    /// A new value of the run-now annotation.
    RunNow,
    /// A new value of the approve-deletions annotation while the brake holds the task: the run
    /// it approves.
    DeletionsApproved,
    /// `interval` or `schedule`: `status.nextSyncTime` has come.
    Schedule,
    /// A referenced Secret or ConfigMap changed (rotated credentials, a new CA).
    ReferencesChanged,
    /// One of the task's UserGroups was edited or deleted by someone else since its last run.
    ObjectsChanged,
    DirectoryChanged,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Created => "Created",
            Trigger::SpecChanged => "SpecChanged",
            Trigger::RunNow => "RunNow",
            Trigger::DeletionsApproved => "DeletionsApproved",
            Trigger::Schedule => "Schedule",
            Trigger::ReferencesChanged => "ReferencesChanged",
            Trigger::ObjectsChanged => "ObjectsChanged",
            Trigger::DirectoryChanged => "DirectoryChanged",
        }
    }
}

/// The first reason, in this order, for the task to run now; `None` when it waits. `references`
/// is the current version of what the task references, when it could be read.
pub fn due(
    task: &UserSynchronization,
    now: Timestamp,
    references: Option<&str>,
) -> Option<Trigger> {
    let status = task.status.clone().unwrap_or_default();
    let first_run = status.last_sync_time.is_none();
    if first_run && task.spec.run_on_create {
        return Some(Trigger::Created);
    }
    if !first_run && status.observed_generation != task.metadata.generation {
        return Some(Trigger::SpecChanged);
    }
    if new_annotation(
        task,
        RUN_NOW_ANNOTATION,
        status.last_handled_run_now.as_deref(),
    )
    .is_some()
    {
        return Some(Trigger::RunNow);
    }
    // Only while braked: an approved run that fails otherwise retries on its back-off, keeping
    // the approval for the run that gets through.
    if new_approval(task).is_some() && braked(&status) {
        return Some(Trigger::DeletionsApproved);
    }
    if status
        .next_sync_time
        .is_some_and(|t| t.0.as_second() <= now.as_second())
    {
        return Some(Trigger::Schedule);
    }
    let known = status.references_version.as_deref();
    if known.is_some() && references.is_some() && references != known {
        return Some(Trigger::ReferencesChanged);
    }
    None
}

/// Whether the deletion brake holds the task: its last finished run stopped at maxDeletions. By
/// `Ready`, which a run keeps until it ends (it sets `Stalled` False while it runs), so an approved
/// run cut short (the operator killed) starts again.
pub fn braked(status: &crate::api::UserSynchronizationStatus) -> bool {
    status.conditions.iter().any(|c| {
        c.type_ == super::conditions::READY
            && c.status == "False"
            && c.reason == super::report::DELETION_THRESHOLD_EXCEEDED
    })
}

/// The annotation's value, when it differs from the last one a run handled.
pub fn new_annotation<'a>(
    task: &'a UserSynchronization,
    annotation: &str,
    handled: Option<&str>,
) -> Option<&'a str> {
    let value = task.metadata.annotations.as_ref()?.get(annotation)?;
    (Some(value.as_str()) != handled).then_some(value.as_str())
}

/// A new approval of deletions, which the run about to start may use once.
pub fn new_approval(task: &UserSynchronization) -> Option<String> {
    let handled = task
        .status
        .as_ref()
        .and_then(|s| s.last_handled_approval.as_deref());
    new_annotation(task, APPROVE_DELETIONS_ANNOTATION, handled).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).expect("time")
    }

    fn task(extra: &str) -> UserSynchronization {
        let yaml = format!(
            "apiVersion: usersync.io/v1alpha1\nkind: UserSynchronization\n\
             metadata: {{name: t, namespace: n, generation: 2}}\n\
             spec: {{targetGroup: all, server: {{urls: ['ldaps://dc']}}, directory: {{baseDN: 'DC=x'}}}}\n{extra}"
        );
        serde_norway::from_str(&yaml).expect("task")
    }

    /// A task that ran at 1000 for generation 2, next timed run at 2000.
    fn ran() -> UserSynchronization {
        let mut t = task("");
        let status = t.status.get_or_insert_default();
        status.observed_generation = Some(2);
        status.last_sync_time = Some(Time(at(1000)));
        status.next_sync_time = Some(Time(at(2000)));
        status.references_version = Some("secret/bind@1".into());
        status.last_handled_run_now = Some("a".into());
        t
    }

    #[test]
    fn each_trigger_and_waiting() {
        let refs = Some("secret/bind@1");
        assert_eq!(due(&task(""), at(0), None), Some(Trigger::Created));
        let mut quiet = task("");
        quiet.spec.run_on_create = false;
        assert_eq!(due(&quiet, at(0), None), None, "runOnCreate: false waits");

        assert_eq!(due(&ran(), at(1500), refs), None, "nothing due");
        assert_eq!(due(&ran(), at(2000), refs), Some(Trigger::Schedule));
        assert_eq!(due(&ran(), at(2001), refs), Some(Trigger::Schedule));

        let mut changed = ran();
        changed.metadata.generation = Some(3);
        assert_eq!(due(&changed, at(1500), refs), Some(Trigger::SpecChanged));

        let mut asked = ran();
        let annotations = asked.metadata.annotations.get_or_insert_default();
        annotations.insert(RUN_NOW_ANNOTATION.into(), "a".into());
        assert_eq!(due(&asked, at(1500), refs), None, "already handled");
        let annotations = asked.metadata.annotations.get_or_insert_default();
        annotations.insert(RUN_NOW_ANNOTATION.into(), "b".into());
        assert_eq!(due(&asked, at(1500), refs), Some(Trigger::RunNow));

        assert_eq!(
            due(&ran(), at(1500), Some("secret/bind@2")),
            Some(Trigger::ReferencesChanged)
        );
        assert_eq!(
            due(&ran(), at(1500), None),
            None,
            "unreadable: the run reports it"
        );
    }

    #[test]
    fn an_approval_runs_a_braked_task_at_once_and_only_a_braked_one() {
        let mut t = ran();
        let annotations = t.metadata.annotations.get_or_insert_default();
        annotations.insert(APPROVE_DELETIONS_ANNOTATION.into(), "1".into());
        let refs = Some("secret/bind@1");
        assert_eq!(
            due(&t, at(1500), refs),
            None,
            "nothing braked: kept for a later run"
        );
        let stalled = k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
            type_: "Ready".into(),
            status: "False".into(),
            reason: "DeletionThresholdExceeded".into(),
            message: String::new(),
            observed_generation: Some(2),
            last_transition_time: Time(at(1000)),
        };
        t.status.as_mut().expect("status").conditions.push(stalled);
        assert_eq!(due(&t, at(1500), refs), Some(Trigger::DeletionsApproved));
        t.status.as_mut().expect("status").last_handled_approval = Some("1".into());
        assert_eq!(due(&t, at(1500), refs), None, "used up");
    }

    #[test]
    fn approvals_are_new_once() {
        let mut t = ran();
        assert_eq!(new_approval(&t), None);
        let annotations = t.metadata.annotations.get_or_insert_default();
        annotations.insert(APPROVE_DELETIONS_ANNOTATION.into(), "1".into());
        assert_eq!(new_approval(&t).as_deref(), Some("1"));
        t.status.as_mut().expect("status").last_handled_approval = Some("1".into());
        assert_eq!(new_approval(&t), None);
    }
}
