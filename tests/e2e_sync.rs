//! End to end on the real apiserver and Samba AD DC: the operator (in-process, as `usersync run`
//! runs it) synchronizes a subtree of the directory into UserGroups, writes nothing when nothing
//! changed, follows a rename to the same object, removes a vanished group, and reports a wrong
//! password without touching what was synced. Each test works in its own OU and namespace.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use ldap3::{Ldap, Mod};
use support::{TestNamespace, install_crds, kube_client, ldap_connect};
use usersync::api::{UserGroup, UserSynchronization};
use usersync_testbed::env;

async fn samba_admin() -> Ldap {
    let samba = env::samba();
    let mut ldap = ldap_connect(&samba.ldaps_url, &samba.ca_file, false).await;
    ldap.simple_bind(
        &format!("{}\\Administrator", samba.domain),
        &samba.admin_password,
    )
    .await
    .and_then(|r| r.success())
    .expect("admin bind");
    ldap
}

async fn add(ldap: &mut Ldap, dn: &str, attrs: Vec<(&str, Vec<&str>)>) {
    let attrs = attrs
        .into_iter()
        .map(|(k, v)| (k, v.into_iter().collect::<HashSet<_>>()))
        .collect();
    ldap.add(dn, attrs)
        .await
        .and_then(|r| r.success())
        .unwrap_or_else(|e| panic!("add {dn}: {e}"));
}

/// OU=<name> with users alice and bob, and groups Devs (alice, bob) and Ops (bob).
async fn directory_subtree(ldap: &mut Ldap, name: &str) -> String {
    let base = format!("OU={name},{}", env::samba().base_dn);
    add(
        ldap,
        &base,
        vec![("objectClass", vec!["organizationalUnit"])],
    )
    .await;
    for user in ["alice", "bob"] {
        let sam = format!("{name}-{user}");
        add(
            ldap,
            &format!("CN={user},{base}"),
            vec![
                ("objectClass", vec!["user"]),
                ("sAMAccountName", vec![sam.as_str()]),
                ("displayName", vec![user]),
                ("userAccountControl", vec!["544"]),
            ],
        )
        .await;
    }
    let alice = format!("CN=alice,{base}");
    let bob = format!("CN=bob,{base}");
    add(
        ldap,
        &format!("CN=Devs,{base}"),
        vec![
            ("objectClass", vec!["group"]),
            ("member", vec![alice.as_str(), bob.as_str()]),
        ],
    )
    .await;
    add(
        ldap,
        &format!("CN=Ops,{base}"),
        vec![
            ("objectClass", vec!["group"]),
            ("member", vec![bob.as_str()]),
        ],
    )
    .await;
    base
}

async fn secrets(client: &kube::Client, ns: &str, password: &str) {
    let samba = env::samba();
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret = |name: &str, data: BTreeMap<String, String>| Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        string_data: Some(data),
        ..Default::default()
    };
    let bind = BTreeMap::from([
        (
            "username".to_owned(),
            format!("{}\\administrator", samba.domain.to_lowercase()),
        ),
        ("password".to_owned(), password.to_owned()),
    ]);
    let ca = BTreeMap::from([(
        "ca.crt".to_owned(),
        std::fs::read_to_string(&samba.ca_file).expect("CA"),
    )]);
    for s in [secret("bind", bind), secret("ca", ca)] {
        api.patch(
            s.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams::apply("tests").force(),
            &Patch::Apply(&s),
        )
        .await
        .expect("secret applied");
    }
}

async fn create_task(client: &kube::Client, ns: &str, base_dn: &str) -> Api<UserSynchronization> {
    let api: Api<UserSynchronization> = Api::namespaced(client.clone(), ns);
    let task: UserSynchronization = serde_json::from_value(serde_json::json!({
        "apiVersion": "usersync.io/v1alpha1",
        "kind": "UserSynchronization",
        "metadata": {"name": "corp"},
        "spec": {
            "targetGroup": "all-users",
            "server": {
                "urls": [env::samba().ldaps_url],
                "credentialsSecretRef": {"name": "bind"},
                "tls": {"caSecretRef": {"name": "ca"}},
            },
            "directory": {"baseDN": base_dn},
        },
    }))
    .expect("task");
    api.create(&PostParams::default(), &task)
        .await
        .expect("task created");
    api
}

fn start_operator(client: &kube::Client, ns: &str) -> tokio::task::JoinHandle<()> {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("usersync=debug,kube_runtime=info")
        .try_init();
    let options = usersync::controller::Options {
        namespace: Some(ns.to_owned()),
        concurrency: 2,
        read_options: Default::default(),
    };
    tokio::spawn(usersync::controller::run(client.clone(), options))
}

fn condition(task: &UserSynchronization, type_: &str) -> Option<(String, String)> {
    let status = task.status.as_ref()?;
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// Waits for the first run (`token` None) or for the run that answered run-now value `token`.
async fn wait_for_run(
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

fn by_display<'a>(groups: &'a [UserGroup], name: &str) -> &'a UserGroup {
    groups
        .iter()
        .find(|g| g.spec.display_name == name)
        .unwrap_or_else(|| panic!("UserGroup {name}"))
}

fn audit_writes(ns: &str) -> usize {
    let log = std::fs::read_to_string(env::kube().audit_log).unwrap_or_default();
    let needle = format!("\"namespace\":\"{ns}\"");
    log.lines()
        .filter(|l| l.contains("\"resource\":\"usergroups\"") && l.contains(&needle))
        .count()
}

async fn run_now(tasks: &Api<UserSynchronization>, token: &str) {
    let patch = serde_json::json!({"metadata": {"annotations": {"usersync.io/run-now": token}}});
    tasks
        .patch("corp", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("annotate");
}

#[tokio::test]
async fn sync_no_op_rename_and_removal() {
    let client = kube_client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "e2e").await;
    let mut ldap = samba_admin().await;
    let base = directory_subtree(&mut ldap, &ns.name).await;
    secrets(&client, &ns.name, &env::samba().admin_password).await;
    let tasks = create_task(&client, &ns.name, &base).await;
    let operator = start_operator(&client, &ns.name);
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);

    let task = wait_for_run(&tasks, None).await;
    assert_eq!(
        condition(&task, "Ready"),
        Some(("True".into(), "Synced".into())),
        "{:?}",
        task.status
    );
    let synced = groups.list(&Default::default()).await.expect("list").items;
    assert_eq!(
        synced.len(),
        3,
        "target group, Devs and Ops: {:?}",
        synced
            .iter()
            .map(|g| &g.spec.display_name)
            .collect::<Vec<_>>()
    );
    let target = by_display(&synced, "all-users");
    let devs = by_display(&synced, "Devs");
    assert_eq!(
        devs.spec.parent.as_deref(),
        Some(target.name_any().as_str())
    );
    let members: Vec<&str> = devs
        .spec
        .users
        .iter()
        .map(|u| u.display_name.as_deref().unwrap_or_default())
        .collect();
    assert_eq!(members, ["alice", "bob"]);
    assert!(devs.spec.source.as_ref().is_some_and(|s| {
        s.sid
            .as_deref()
            .is_some_and(|sid| sid.starts_with("S-1-5-21-"))
    }));
    assert_eq!(devs.status.as_ref().map(|s| s.user_count), Some(2));
    assert_eq!(
        devs.labels()
            .get("usersync.io/synchronization")
            .map(String::as_str),
        Some("corp")
    );
    assert!(
        devs.owner_references()
            .iter()
            .any(|o| o.kind == "UserSynchronization" && o.controller == Some(true))
    );
    let status = task.status.as_ref().expect("status");
    assert_eq!(status.observed_generation, task.metadata.generation);
    assert_eq!(
        status
            .last_run
            .as_ref()
            .map(|r| (r.users, r.groups, r.created)),
        Some((2, 2, 3))
    );

    // Nothing changed in the directory: a run writes no UserGroup.
    let writes = audit_writes(&ns.name);
    run_now(&tasks, "1").await;
    let task = wait_for_run(&tasks, Some("1")).await;
    assert_eq!(
        audit_writes(&ns.name),
        writes,
        "a no-op run writes no UserGroup"
    );
    assert_eq!(
        task.status
            .as_ref()
            .and_then(|s| s.last_handled_run_now.as_deref()),
        Some("1")
    );

    // A rename in the directory updates the same object.
    let devs_uid = devs.uid();
    ldap.modifydn(&format!("CN=Devs,{base}"), "CN=Developers", true, None)
        .await
        .and_then(|r| r.success())
        .expect("rename");
    ldap.modify(
        &format!("CN=Developers,{base}"),
        vec![Mod::Replace("description", HashSet::from(["renamed"]))],
    )
    .await
    .and_then(|r| r.success())
    .expect("describe");
    run_now(&tasks, "2").await;
    wait_for_run(&tasks, Some("2")).await;
    let synced = groups.list(&Default::default()).await.expect("list").items;
    let developers = by_display(&synced, "Developers");
    assert_eq!(developers.uid(), devs_uid, "same object after the rename");
    assert_eq!(developers.spec.description.as_deref(), Some("renamed"));

    // A group deleted in the directory is removed (maxDeletions 10% of 5 objects is 0: approve it).
    ldap.delete(&format!("CN=Ops,{base}"))
        .await
        .and_then(|r| r.success())
        .expect("delete Ops");
    run_now(&tasks, "3").await;
    let task = wait_for_run(&tasks, Some("3")).await;
    assert_eq!(
        condition(&task, "Stalled"),
        Some(("True".into(), "DeletionThresholdExceeded".into()))
    );
    assert_eq!(
        groups
            .list(&Default::default())
            .await
            .expect("list")
            .items
            .len(),
        3,
        "the brake removed nothing"
    );
    let approve = serde_json::json!({"metadata": {"annotations": {"usersync.io/approve-deletions": "once", "usersync.io/run-now": "4"}}});
    tasks
        .patch("corp", &PatchParams::default(), &Patch::Merge(&approve))
        .await
        .expect("approve");
    let task = wait_for_run(&tasks, Some("4")).await;
    assert_eq!(
        condition(&task, "Ready"),
        Some(("True".into(), "Synced".into()))
    );
    let left: Vec<String> = groups
        .list(&Default::default())
        .await
        .expect("list")
        .items
        .iter()
        .map(|g| g.spec.display_name.clone())
        .collect();
    assert!(!left.contains(&"Ops".to_owned()), "{left:?}");
    assert_eq!(left.len(), 2);
    operator.abort();
}

#[tokio::test]
async fn a_wrong_password_stalls_with_a_reason_and_keeps_what_was_synced() {
    let client = kube_client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "e2e-badpw").await;
    let mut ldap = samba_admin().await;
    let base = directory_subtree(&mut ldap, &ns.name).await;
    secrets(&client, &ns.name, &env::samba().admin_password).await;
    let tasks = create_task(&client, &ns.name, &base).await;
    let operator = start_operator(&client, &ns.name);
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);
    wait_for_run(&tasks, None).await;
    assert_eq!(
        groups
            .list(&Default::default())
            .await
            .expect("list")
            .items
            .len(),
        3
    );

    let wrong = "Wrong-Passw0rd-For-Test";
    secrets(&client, &ns.name, wrong).await;
    run_now(&tasks, "bad").await;
    let task = wait_for_run(&tasks, Some("bad")).await;
    assert_eq!(
        condition(&task, "Stalled"),
        Some(("True".into(), "InvalidCredentials".into()))
    );
    assert_eq!(condition(&task, "Ready").map(|c| c.0), Some("False".into()));
    assert_eq!(
        groups
            .list(&Default::default())
            .await
            .expect("list")
            .items
            .len(),
        3,
        "nothing synced is lost"
    );
    let status_text = serde_json::to_string(&task.status).expect("status serializes");
    assert!(
        !status_text.contains(wrong),
        "the password never reaches status"
    );
    operator.abort();
}
