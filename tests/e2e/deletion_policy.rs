//! `deletionPolicy`: deleting a task either lets the garbage collector delete its UserGroups
//! (`Delete`, the default) or leaves them, detached, for a new task to take over (`Orphan`).

use std::time::Duration;

use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use usersync::api::{ORPHAN_FINALIZER, ORPHANED_FROM_ANNOTATION, UserGroup, UserSynchronization};

use crate::support::kube::{Scenario, create_task, user_groups};
use crate::support::operator::start_operator;
use crate::support::wait::{assert_synced, eventually, wait_for_run};

async fn set_spec(tasks: &Api<UserSynchronization>, spec: serde_json::Value) {
    tasks
        .patch(
            "corp",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "spec": spec })),
        )
        .await
        .expect("task patched");
}

async fn delete_task(tasks: &Api<UserSynchronization>) {
    tasks
        .delete("corp", &DeleteParams::background())
        .await
        .expect("task deleted");
    eventually(Duration::from_secs(30), "the task is gone", || {
        let tasks = tasks.clone();
        async move { tasks.get_opt("corp").await.expect("get").is_none() }
    })
    .await;
}

fn names(groups: &[UserGroup]) -> Vec<String> {
    let mut names: Vec<String> = groups.iter().map(|g| g.name_any()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn deleting_a_task_orphans_or_deletes_its_user_groups() {
    let Scenario {
        client, ns, base, ..
    } = Scenario::new("e2e-deletion").await;
    let tasks = create_task(&client, &ns.name, &base).await;
    set_spec(&tasks, serde_json::json!({"deletionPolicy": "Orphan"})).await;
    let operator = start_operator(&client, &ns.name);
    assert_synced(&wait_for_run(&tasks, None).await);
    eventually(Duration::from_secs(10), "the finalizer is on", || {
        let tasks = tasks.clone();
        async move {
            let task = tasks.get("corp").await.expect("task");
            task.finalizers().iter().any(|f| f == ORPHAN_FINALIZER)
        }
    })
    .await;
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);
    let synced = names(&user_groups(&groups).await);
    assert!(synced.len() >= 3, "{synced:?}");

    // Orphan: the task goes, its UserGroups stay, detached.
    delete_task(&tasks).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let left = user_groups(&groups).await;
    assert_eq!(
        names(&left),
        synced,
        "the garbage collector deleted nothing"
    );
    for group in &left {
        assert!(
            group.owner_references().is_empty(),
            "{} is detached",
            group.name_any()
        );
        assert!(
            group.annotations().contains_key(ORPHANED_FROM_ANNOTATION),
            "{} says where it came from",
            group.name_any()
        );
    }

    // A new task of the same name takes them over (Overwrite: they are not its own yet).
    let tasks = create_task(&client, &ns.name, &base).await;
    set_spec(&tasks, serde_json::json!({"collisionPolicy": "Overwrite"})).await;
    assert_synced(&wait_for_run(&tasks, None).await);
    let uid = tasks.get("corp").await.expect("task").uid().expect("uid");
    eventually(
        Duration::from_secs(15),
        "the new task owns every object",
        || {
            let groups = groups.clone();
            let uid = uid.clone();
            async move {
                user_groups(&groups)
                    .await
                    .iter()
                    .all(|g| g.owner_references().iter().any(|o| o.uid == uid))
            }
        },
    )
    .await;
    assert_eq!(
        names(&user_groups(&groups).await),
        synced,
        "the same objects"
    );

    // Delete (the default): the garbage collector deletes them with the task.
    delete_task(&tasks).await;
    eventually(
        Duration::from_secs(30),
        "the UserGroups are deleted",
        || {
            let groups = groups.clone();
            async move { user_groups(&groups).await.is_empty() }
        },
    )
    .await;
    operator.abort();
}
