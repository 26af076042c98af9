//! Waiting for a task's run: the one a `run-now` or `approve` asked for, or one of the task's
//! current generation (not a Ready left from an earlier spec).

use std::time::{Duration, Instant};

use kube::api::Api;

use super::super::exit::Failure;
use crate::api::UserSynchronization;
use crate::run::conditions::{self, READY, RECONCILING};

/// How often the task is looked at while waiting.
const POLL: Duration = Duration::from_millis(500);

#[derive(Clone, Copy, Debug)]
pub enum Awaited<'a> {
    /// The run that answered this `usersync.io/run-now` value.
    RunNow(&'a str),
    /// A finished run of the task's current generation.
    CurrentGeneration,
}

/// The task once the awaited run finished and succeeded. A failed run is [`Failure::no`] with its
/// reason; no such run within `timeout`, [`Failure::timed_out`].
pub async fn until_done(
    tasks: &Api<UserSynchronization>,
    name: &str,
    awaited: Awaited<'_>,
    timeout: Duration,
) -> Result<UserSynchronization, Failure> {
    let started = Instant::now();
    loop {
        let task = tasks.get(name).await.map_err(|e| format!("{name}: {e}"))?;
        match finished(&task, awaited) {
            Some(Ok(())) => return Ok(task),
            Some(Err(why)) => return Err(Failure::no(format!("{name}: {why}"))),
            None if started.elapsed() >= timeout => {
                return Err(Failure::timed_out(format!(
                    "{name}: no finished run after {timeout:?}"
                )));
            }
            None => tokio::time::sleep(POLL).await,
        }
    }
}

/// Whether the awaited run finished: `Ok` when it succeeded, the reason when it failed.
pub fn finished(task: &UserSynchronization, awaited: Awaited<'_>) -> Option<Result<(), String>> {
    let status = task.status.as_ref()?;
    let condition = |type_: &str| conditions::find(&status.conditions, type_);
    if conditions::is_true(&status.conditions, RECONCILING) {
        return None;
    }
    match awaited {
        Awaited::RunNow(token) if status.last_handled_run_now.as_deref() != Some(token) => {
            return None;
        }
        Awaited::CurrentGeneration if task.spec.suspend => {
            return Some(Err("suspended: no run comes until it is resumed".into()));
        }
        Awaited::CurrentGeneration => {
            let generation = task.metadata.generation;
            let ran = status.observed_generation == generation
                && condition(READY).is_some_and(|c| c.observed_generation == generation);
            if !ran {
                return None;
            }
        }
        Awaited::RunNow(_) => {}
    }
    let ready = condition(READY)?;
    Some(match ready.status.as_str() {
        "True" => Ok(()),
        _ => Err(format!("{}: {}", ready.reason, ready.message)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::UserSynchronizationStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

    fn condition(type_: &str, status: &str, reason: &str, generation: i64) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: format!("{reason} message"),
            observed_generation: Some(generation),
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ),
        }
    }

    fn task(generation: i64, status: UserSynchronizationStatus) -> UserSynchronization {
        let mut task: UserSynchronization = serde_json::from_value(serde_json::json!({
            "apiVersion": "usersync.io/v1alpha1", "kind": "UserSynchronization",
            "metadata": {"name": "corp", "generation": generation},
            "spec": {"targetGroup": "all", "server": {"urls": ["ldaps://dc"]},
                     "directory": {"baseDN": "DC=x"}},
        }))
        .expect("task");
        task.status = Some(status);
        task
    }

    #[test]
    fn a_ready_of_an_older_generation_is_not_the_run_waited_for() {
        let stale = UserSynchronizationStatus {
            observed_generation: Some(1),
            conditions: vec![condition("Ready", "True", "Synced", 1)],
            ..Default::default()
        };
        assert_eq!(
            finished(&task(2, stale.clone()), Awaited::CurrentGeneration),
            None
        );
        assert_eq!(
            finished(&task(1, stale), Awaited::CurrentGeneration),
            Some(Ok(()))
        );
        let running = UserSynchronizationStatus {
            observed_generation: Some(2),
            conditions: vec![
                condition("Ready", "True", "Synced", 2),
                condition("Reconciling", "True", "Running", 2),
            ],
            ..Default::default()
        };
        assert_eq!(
            finished(&task(2, running), Awaited::CurrentGeneration),
            None
        );
        let failed = UserSynchronizationStatus {
            observed_generation: Some(2),
            conditions: vec![condition("Ready", "False", "InvalidCredentials", 2)],
            ..Default::default()
        };
        assert_eq!(
            finished(&task(2, failed), Awaited::CurrentGeneration),
            Some(Err("InvalidCredentials: InvalidCredentials message".into()))
        );
    }

    #[test]
    fn a_run_now_is_done_once_its_value_is_answered() {
        let answered = |value: &str| UserSynchronizationStatus {
            observed_generation: Some(1),
            last_handled_run_now: Some(value.into()),
            conditions: vec![condition("Ready", "True", "Synced", 1)],
            ..Default::default()
        };
        assert_eq!(
            finished(&task(1, answered("a")), Awaited::RunNow("b")),
            None
        );
        assert_eq!(
            finished(&task(1, answered("b")), Awaited::RunNow("b")),
            Some(Ok(()))
        );
    }
}
