//! The operator watches its own UserGroups: one deleted or edited by someone else is put back from
//! the last run's read within seconds, without a timed run and without reading the directory.

use std::time::Duration;

use kube::ResourceExt;
use kube::api::{Api, DeleteParams};
use usersync::api::{UserGroup, UserSynchronization};

use crate::support::kube::{Scenario, by_display, create_task, edit_by_hand, user_groups};
use crate::support::operator::start_operator;
use crate::support::wait::{assert_synced, eventually, wait_for_run};

/// The UserGroups' specs by name.
async fn specs(groups: &Api<UserGroup>) -> Vec<(String, serde_json::Value)> {
    let mut specs: Vec<_> = user_groups(groups)
        .await
        .into_iter()
        .map(|g| (g.name_any(), serde_json::to_value(&g.spec).expect("spec")))
        .collect();
    specs.sort_by(|a, b| a.0.cmp(&b.0));
    specs
}

#[tokio::test]
async fn user_groups_changed_by_hand_are_restored_from_the_last_read() {
    let Scenario {
        client, ns, base, ..
    } = Scenario::new("e2e-repair").await;
    let tasks = create_task(&client, &ns.name, &base).await;
    let operator = start_operator(&client, &ns.name);
    assert_synced(&wait_for_run(&tasks, None).await);
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);
    let synced = specs(&groups).await;
    let all = user_groups(&groups).await;
    let devs = by_display(&all, "Devs").name_any();
    let ops = by_display(&all, "Ops").name_any();

    edit_by_hand(&groups, &devs, serde_json::json!({ "users": [] })).await;
    groups
        .delete(&ops, &DeleteParams::default())
        .await
        .expect("delete by hand");

    eventually(Duration::from_secs(15), "the objects are restored", || {
        let groups = groups.clone();
        let synced = synced.clone();
        async move { specs(&groups).await == synced }
    })
    .await;
    // The repair run reports after its writes: wait for its summary, then check what it read.
    let last_run = || async {
        let task: UserSynchronization = tasks.get("corp").await.expect("task");
        task.status.and_then(|s| s.last_run).expect("lastRun")
    };
    eventually(
        Duration::from_secs(15),
        "the repair run reports",
        || async { last_run().await.created < 3 },
    )
    .await;
    let last = last_run().await;
    assert_eq!(
        last.directory_read, "None",
        "restored without a read: {last:?}"
    );
    assert_eq!(last.entries_read, 0, "{last:?}");
    operator.abort();
}
