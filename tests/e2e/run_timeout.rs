//! `runTimeout`: a run that takes longer ends as failed with reason `RunTimeout`, transient (it
//! retries, it does not stall), keeps what it wrote, and the next run with more time converges.

use std::num::NonZeroU32;
use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use usersync::api::{UserGroup, UserSynchronization};

use crate::support::kube::{Scenario, create_task, user_groups};
use crate::support::operator::InProcess;
use crate::support::wait::{assert_synced, condition, wait_for_condition, wait_for_run};

#[tokio::test]
async fn a_run_past_its_timeout_fails_transiently_and_the_next_one_converges() {
    let Scenario {
        client, ns, base, ..
    } = Scenario::new("e2e-run-timeout").await;
    // One write a second: a first run writes three UserGroups and their statuses, well past 2 s.
    let mut options = InProcess::watching(&ns.name);
    options.write_rate = NonZeroU32::new(1);
    let tasks = create_task(&client, &ns.name, &base).await;
    let patch = serde_json::json!({"spec": {"runTimeout": "2s"}});
    tasks
        .patch("corp", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("set runTimeout");
    let operator = options.start(&client);

    let task = wait_for_condition(&tasks, "Ready", "False", "RunTimeout").await;
    assert_eq!(
        condition(&task, "Stalled"),
        Some(("False".into(), "RunTimeout".into())),
        "a timeout retries: {:?}",
        task.status
    );
    let message = task
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    assert!(
        message
            .iter()
            .any(|c| c.message.contains("runTimeout of 2s")),
        "{message:?}"
    );
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);
    let before = user_groups(&groups).await.len();

    let patch = serde_json::json!({"spec": {"runTimeout": "5m"}});
    tasks
        .patch("corp", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("raise runTimeout");
    let task = wait_until_synced(&tasks).await;
    assert_synced(&task);
    let after = user_groups(&groups).await.len();
    assert!(
        after >= 3 && after >= before,
        "{before} then {after} UserGroups"
    );
    let summary = task.status.and_then(|s| s.last_run).expect("summary");
    assert_eq!(
        summary.created as usize,
        after - before,
        "the next run created only what the stopped one had not: {summary:?}"
    );
    operator.abort();
}

async fn wait_until_synced(tasks: &Api<UserSynchronization>) -> UserSynchronization {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let task = wait_for_run(tasks, None).await;
        if condition(&task, "Ready") == Some(("True".into(), "Synced".into())) {
            return task;
        }
        assert!(tokio::time::Instant::now() < deadline, "{:?}", task.status);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
