//! Waiting for what the operator does: a task's runs and conditions, or anything else polled.

use std::time::Duration;

use kube::api::Api;
use usersync::api::UserSynchronization;

/// The task's condition `type_` as (status, reason).
pub fn condition(task: &UserSynchronization, type_: &str) -> Option<(String, String)> {
    let status = task.status.as_ref()?;
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// The task's last run succeeded: Ready is True with reason Synced.
#[track_caller]
pub fn assert_synced(task: &UserSynchronization) {
    assert_eq!(
        condition(task, "Ready"),
        Some(("True".into(), "Synced".into())),
        "{:?}",
        task.status
    );
}

/// Waits for the first run (`token` None) or for the run that answered run-now value `token`.
pub async fn wait_for_run(
    tasks: &Api<UserSynchronization>,
    token: Option<&str>,
) -> UserSynchronization {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(task) = tasks.get("corp").await {
            let status = task.status.as_ref();
            let done = match token {
                None => status.is_some_and(|s| s.last_sync_time.is_some()),
                Some(t) => status.and_then(|s| s.last_handled_run_now.as_deref()) == Some(t),
            };
            if done {
                return task;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the task did not finish a run within 90s"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Waits until the task's condition `type_` has `status` and `reason`, for up to a minute.
pub async fn wait_for_condition(
    tasks: &Api<UserSynchronization>,
    type_: &str,
    status: &str,
    reason: &str,
) -> UserSynchronization {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let task = tasks.get("corp").await.expect("task");
        if condition(&task, type_) == Some((status.to_owned(), reason.to_owned())) {
            return task;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{type_} is not {status}/{reason} within a minute: {:?}",
            task.status
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Polls `check` every 200 ms until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not true after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
