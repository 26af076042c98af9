//! Under `collisionPolicy: Skip` a run never takes over an object that appeared after its plan: it
//! creates what the plan found nowhere (a create fails on an existing object, an apply would not),
//! reports the conflict, and the next run skips the name. The race is made certain by a slow write
//! rate: objects are made by hand between the run's first write and its later ones. And what a
//! create wrote, a later apply can still remove.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::time::Duration;

use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use ldap3::Mod;
use usersync::api::UserGroup;

use crate::support::kube::{Scenario, by_display, create_task, events, run_now, user_groups};
use crate::support::ldap::{Server, modify};
use crate::support::operator::{InProcess, spawn_operator};
use crate::support::wait::{assert_synced, eventually, wait_for_run};

const TASK_LABEL: &str = "usersync.io/synchronization";

fn hand_made(name: &str) -> UserGroup {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "usersync.io/v1alpha1", "kind": "UserGroup",
        "metadata": {"name": name, "labels": {"team": "by-hand"}},
        "spec": {"displayName": format!("made by hand: {name}")},
    }))
    .expect("UserGroup")
}

#[tokio::test]
async fn skip_never_takes_over_an_object_made_after_the_plan() {
    let Scenario {
        client, ns, base, ..
    } = Scenario::new("e2e-fenced").await;
    let tasks = create_task(&client, &ns.name, &base).await;
    let skip = serde_json::json!({"spec": {"collisionPolicy": "Skip"}});
    tasks
        .patch("corp", &PatchParams::default(), &Patch::Merge(&skip))
        .await
        .expect("Skip");
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);

    // A first sync (by a process of its own, gone when it is killed) names the objects; they are
    // then deleted, so that the next run creates them.
    let (mut first, log) = spawn_operator(&ns.name, &[], "info");
    assert_synced(&wait_for_run(&tasks, None).await);
    first.kill().await.expect("stop the first operator");
    let _ = std::fs::remove_file(log);
    let names: Vec<String> = user_groups(&groups)
        .await
        .iter()
        .map(|g| g.name_any())
        .collect();
    assert!(names.len() >= 3, "{names:?}");
    for name in &names {
        groups
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete");
    }
    eventually(Duration::from_secs(30), "the objects are gone", || async {
        user_groups(&groups).await.is_empty()
    })
    .await;

    // One write a second: the run plans, writes its first object, and waits before the next.
    let mut paced = InProcess::watching(&ns.name);
    paced.write_rate = NonZeroU32::new(1);
    let operator = paced.start(&client);
    run_now(&tasks, "recreate").await;
    eventually(Duration::from_secs(60), "the run's first write", || async {
        !user_groups(&groups).await.is_empty()
    })
    .await;
    let mut made = Vec::new();
    for name in &names {
        match groups
            .create(&PostParams::default(), &hand_made(name))
            .await
        {
            Ok(group) => made.push(group),
            // Written by the run already.
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(e) => panic!("{name}: {e}"),
        }
    }
    assert!(
        !made.is_empty(),
        "the run wrote every object before any could be made by hand"
    );

    let task = wait_for_run(&tasks, Some("recreate")).await;
    let reasons: Vec<String> = events(&client, &ns.name)
        .await
        .into_iter()
        .filter_map(|e| e.reason)
        .collect();
    assert!(
        reasons.iter().any(|r| r == "WriteConflict"),
        "the run reports that an object appeared after its plan: {reasons:?} {:?}",
        task.status
    );

    // The next run plans with the objects made by hand and skips their names.
    run_now(&tasks, "after").await;
    let task = wait_for_run(&tasks, Some("after")).await;
    let skipped = task
        .status
        .as_ref()
        .and_then(|s| s.last_run.as_ref())
        .map(|r| r.skipped);
    assert!(
        skipped >= Some(made.len() as i64),
        "{skipped:?} skipped, {} made by hand",
        made.len()
    );
    for before in &made {
        let now = groups.get(&before.name_any()).await.expect("still there");
        assert_eq!(
            now.resource_version(),
            before.resource_version(),
            "{} was written by the run",
            now.name_any()
        );
        assert!(!now.labels().contains_key(TASK_LABEL));
        assert!(now.owner_references().is_empty());
    }
    operator.abort();
}

/// A created object's fields belong to the create (operation `Update`), which no apply removes; the
/// first change takes them into apply ownership, so a description deleted in the directory goes.
#[tokio::test]
async fn a_field_dropped_after_the_create_goes() {
    let Scenario {
        client,
        ns,
        mut ldap,
        base,
    } = Scenario::new("e2e-created").await;
    let devs = Server::Samba.group_dn(&base, "Devs");
    let description = |values: HashSet<&'static str>| vec![Mod::Replace("description", values)];
    modify(
        &mut ldap,
        &devs,
        description(HashSet::from(["builds things"])),
    )
    .await;
    let tasks = create_task(&client, &ns.name, &base).await;
    let operator = InProcess::watching(&ns.name).start(&client);
    assert_synced(&wait_for_run(&tasks, None).await);
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);
    let created = user_groups(&groups).await;
    let created = by_display(&created, "Devs");
    assert_eq!(created.spec.description.as_deref(), Some("builds things"));
    let operations = |group: &UserGroup| -> Vec<String> {
        group
            .managed_fields()
            .iter()
            .filter(|f| f.subresource.is_none())
            .map(|f| format!("{:?}/{:?}", f.manager, f.operation))
            .collect()
    };
    assert_eq!(operations(created), [r#"Some("usersync")/Some("Update")"#]);

    modify(&mut ldap, &devs, description(HashSet::new())).await;
    run_now(&tasks, "dropped").await;
    assert_synced(&wait_for_run(&tasks, Some("dropped")).await);
    let changed = user_groups(&groups).await;
    let changed = by_display(&changed, "Devs");
    assert_eq!(changed.spec.description, None);
    assert_eq!(changed.metadata.uid, created.metadata.uid);
    assert_eq!(operations(changed), [r#"Some("usersync")/Some("Apply")"#]);
    operator.abort();
}
