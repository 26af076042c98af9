//! The real binary SIGKILLed after the K-th UserGroup write, once in a first sync and once in an
//! approved run that deletes groups and shrinks a sharded group (killed among its shards): after a
//! restart the UserGroups equal a fresh sync of the same directory, no two objects share a
//! directory id, a hand-made UserGroup survives, and the approval lets exactly one run through.
//! And an apiserver killed and restarted in the middle of a first sync: the UserGroups equal a
//! fresh sync too.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use ldap3::Ldap;
use usersync::api::{SHARD_OF_LABEL, UserGroup, UserSynchronization};

use crate::support::audit::audit_writes;
use crate::support::control_plane::OwnControlPlane;
use crate::support::kube::{
    Scenario, approve_deletions, create_task_on, install_crds, kube_client, run_now, secrets_for,
    user_groups,
};
use crate::support::ldap::{Server, add, add_ou, delete};
use crate::support::namespace::TestNamespace;
use crate::support::operator::{spawn_operator, spawn_replica, start_operator};
use crate::support::wait::{assert_synced, condition, eventually, wait_for_run};

const SERVER: Server = Server::OpenLdap;
/// Members of the big group; with their long descriptions, enough for three objects of members.
const BIG: usize = 1500;
const SMALL_GROUPS: usize = 24;

/// `BIG` users, the group Big of all of them, and `SMALL_GROUPS` groups of ten.
async fn populate(ldap: &mut Ldap, base: &str) {
    let description = "a long description that makes each member's record large ".repeat(16);
    let mut users = Vec::with_capacity(BIG);
    for n in 0..BIG {
        let name = format!("k{n}");
        let dn = SERVER.user_dn(base, &name);
        let attrs = vec![
            ("objectClass", vec!["inetOrgPerson"]),
            ("uid", vec![name.as_str()]),
            ("cn", vec![name.as_str()]),
            ("sn", vec![name.as_str()]),
            ("description", vec![description.as_str()]),
        ];
        add(ldap, &dn, attrs).await;
        users.push(dn);
    }
    let refs: Vec<&str> = users.iter().map(String::as_str).collect();
    SERVER.add_group(ldap, base, "Big", &refs).await;
    for g in 0..SMALL_GROUPS {
        SERVER
            .add_group(ldap, base, &format!("g{g}"), &refs[g * 10..g * 10 + 10])
            .await;
    }
}

/// The namespace's UserGroups of the task, shards joined: name → (display name, parent, directory
/// id, member ids).
type Tree = BTreeMap<String, (String, Option<String>, Option<String>, Vec<String>)>;

async fn tree(groups: &Api<UserGroup>) -> Tree {
    let all = user_groups(groups).await;
    let ours = |g: &&UserGroup| {
        g.labels()
            .get("usersync.io/synchronization")
            .map(String::as_str)
            == Some("corp")
    };
    let mut tree = Tree::new();
    for base in all
        .iter()
        .filter(ours)
        .filter(|g| !g.labels().contains_key(SHARD_OF_LABEL))
    {
        let mut members: Vec<String> = base.spec.users.iter().map(|u| u.id.clone()).collect();
        for shard in all
            .iter()
            .filter(|s| s.labels().get(SHARD_OF_LABEL) == Some(&base.name_any()))
        {
            members.extend(shard.spec.users.iter().map(|u| u.id.clone()));
        }
        members.sort();
        let source = base.spec.source.as_ref().map(|s| s.id.clone());
        let value = (
            base.spec.display_name.clone(),
            base.spec.parent.clone(),
            source,
            members,
        );
        tree.insert(base.name_any(), value);
    }
    tree
}

/// Shard objects of the group Big.
fn big_shards(all: &[UserGroup]) -> usize {
    let Some(big) = all.iter().find(|g| g.spec.display_name == "Big") else {
        return 0;
    };
    all.iter()
        .filter(|g| g.labels().get(SHARD_OF_LABEL) == Some(&big.name_any()))
        .count()
}

/// No two of the task's objects stand for one directory id.
fn ids_are_unique(tree: &Tree) {
    let ids: Vec<&String> = tree
        .values()
        .filter_map(|(_, _, id, _)| id.as_ref())
        .collect();
    let unique: HashSet<&&String> = ids.iter().collect();
    assert_eq!(ids.len(), unique.len(), "two objects share a directory id");
}

/// UserGroup writes in `ns` so far.
fn writes(ns: &str) -> usize {
    audit_writes(ns)
}

/// Waits until `ns` has seen `k` more writes than `before`, then kills the operator at once.
async fn kill_after(operator: &mut tokio::process::Child, ns: &str, before: usize, k: usize) {
    eventually(Duration::from_secs(60), "the K-th write", || async {
        writes(ns) >= before + k
    })
    .await;
    operator.start_kill().expect("SIGKILL");
    operator.wait().await.expect("killed");
}

/// The same task synced fresh into a namespace of its own.
async fn fresh_sync(client: &kube::Client, base: &str) -> Tree {
    let ns = TestNamespace::new(client, "e2e-fresh").await;
    secrets_for(SERVER, client, &ns.name, &SERVER.credentials().1).await;
    let tasks = create_task_on(SERVER, client, &ns.name, base).await;
    let operator = start_operator(client, &ns.name);
    assert_synced(&wait_for_run(&tasks, None).await);
    operator.abort();
    tree(&Api::namespaced(client.clone(), &ns.name)).await
}

#[tokio::test]
async fn a_killed_operator_leaves_nothing_a_restart_does_not_repair() {
    let Scenario {
        client,
        ns,
        mut ldap,
        base,
    } = Scenario::on(SERVER, "e2e-killed").await;
    populate(&mut ldap, &base).await;
    let tasks = create_task_on(SERVER, &client, &ns.name, &base).await;
    let brake = serde_json::json!({"spec": {"maxDeletions": 1}});
    tasks
        .patch("corp", &PatchParams::default(), &Patch::Merge(&brake))
        .await
        .expect("maxDeletions");
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);
    let hand_made: UserGroup = serde_json::from_value(serde_json::json!({
        "apiVersion": "usersync.io/v1alpha1", "kind": "UserGroup",
        "metadata": {"name": "made-by-hand"}, "spec": {"displayName": "made by hand"},
    }))
    .expect("UserGroup");
    groups
        .create(&PostParams::default(), &hand_made)
        .await
        .expect("hand-made");
    // Two writes a second (the rate is also the burst): the kill lands where it is aimed.
    // Big's 1,500 members fit in one object of the default size: smaller ones make it a sharded group.
    let paced = [
        "--write-rate",
        "2",
        "--reference-poll-seconds",
        "1",
        "--shard-bytes",
        "100000",
    ];
    let unpaced = ["--shard-bytes", "100000"];

    // A first sync killed after 25 writes, then a restart.
    let before = writes(&ns.name);
    let (mut operator, log) = spawn_operator(&ns.name, &paced, "info");
    kill_after(&mut operator, &ns.name, before, 25).await;
    let _ = std::fs::remove_file(log);
    let killed: UserSynchronization = tasks.get("corp").await.expect("task");
    assert!(
        killed.status.and_then(|s| s.last_sync_time).is_none(),
        "killed before the first sync finished"
    );
    let partial = tree(&groups).await.len();
    let (operator, log) = spawn_operator(&ns.name, &unpaced, "info");
    assert_synced(&wait_for_run(&tasks, None).await);
    drop(operator);
    let _ = std::fs::remove_file(log);
    let synced = tree(&groups).await;
    ids_are_unique(&synced);
    let shards = big_shards(&user_groups(&groups).await);
    assert!(shards >= 2, "Big has {shards} shards");
    assert!(
        partial < synced.len(),
        "{partial} of {} groups when killed",
        synced.len()
    );
    assert_eq!(synced, fresh_sync(&client, &base).await, "as a fresh sync");
    assert!(groups.get_opt("made-by-hand").await.expect("get").is_some());

    // Half the small groups go, and so do the users past the first 300 (Big shrinks, its shards
    // go): removals, braked, then approved and killed among Big's objects.
    for g in 0..SMALL_GROUPS / 2 {
        delete(&mut ldap, &SERVER.group_dn(&base, &format!("g{g}"))).await;
    }
    for n in 300..BIG {
        delete(&mut ldap, &SERVER.user_dn(&base, &format!("k{n}"))).await;
    }
    let (mut operator, log) = spawn_operator(&ns.name, &paced, "info");
    run_now(&tasks, "shrink").await;
    let braked = wait_for_run(&tasks, Some("shrink")).await;
    assert_eq!(
        condition(&braked, "Stalled"),
        Some(("True".into(), "DeletionThresholdExceeded".into()))
    );
    let before = writes(&ns.name);
    // The approval alone starts the approved run.
    approve_deletions(&tasks, "once").await;
    // The base object is written first, then the shards that go: killed among them.
    kill_after(&mut operator, &ns.name, before, 3).await;
    let _ = std::fs::remove_file(log);
    let killed: UserSynchronization = tasks.get("corp").await.expect("task");
    assert_ne!(
        killed
            .status
            .and_then(|s| s.last_handled_approval)
            .as_deref(),
        Some("once"),
        "killed before the approved run finished"
    );
    let midway = user_groups(&groups).await;
    let shards_left = big_shards(&midway);
    let small_left = midway
        .iter()
        .filter(|g| g.spec.display_name.starts_with('g'))
        .count();
    let (operator, log) = spawn_operator(&ns.name, &unpaced, "info");
    eventually(
        Duration::from_secs(90),
        "the approved run completes",
        || async {
            let task: UserSynchronization = tasks.get("corp").await.expect("task");
            condition(&task, "Ready") == Some(("True".into(), "Synced".into()))
                && task.status.and_then(|s| s.last_handled_approval).as_deref() == Some("once")
        },
    )
    .await;
    let shrunk = tree(&groups).await;
    ids_are_unique(&shrunk);
    let after = user_groups(&groups).await;
    let shards_after = big_shards(&after);
    assert!(
        shards_left > shards_after,
        "killed while Big's objects were rewritten: {shards} shards before, {shards_left} left \
         then, {shards_after} now"
    );
    assert_eq!(
        small_left, SMALL_GROUPS,
        "no group was deleted before the kill"
    );
    assert_eq!(shrunk, fresh_sync(&client, &base).await, "as a fresh sync");
    assert!(groups.get_opt("made-by-hand").await.expect("get").is_some());

    // The approval was used: the next removal is braked again.
    delete(&mut ldap, &SERVER.group_dn(&base, "g20")).await;
    delete(&mut ldap, &SERVER.group_dn(&base, "g21")).await;
    run_now(&tasks, "after").await;
    let braked = wait_for_run(&tasks, Some("after")).await;
    assert_eq!(
        condition(&braked, "Stalled"),
        Some(("True".into(), "DeletionThresholdExceeded".into())),
        "the approval let one run through, not two"
    );
    drop(operator);
    let _ = std::fs::remove_file(log);
}

/// The apiserver killed after the K-th UserGroup write of a first sync, and again in a run that
/// deletes groups and shrinks a sharded one, each time down for three seconds, then started again:
/// the operator (the real binary) rides it out, and its UserGroups equal a fresh sync of the same
/// directory.
#[tokio::test]
async fn an_apiserver_killed_midway_leaves_nothing_a_restart_does_not_repair() {
    let (plane, client) = OwnControlPlane::start("restart").await;
    let mut ldap = SERVER.admin().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "e2e-restart").await;
    let base = add_ou(&mut ldap, &SERVER.base_dn(), &ns.name).await;
    populate(&mut ldap, &base).await;
    secrets_for(SERVER, &client, &ns.name, &SERVER.credentials().1).await;
    let tasks = create_task_on(SERVER, &client, &ns.name, &base).await;
    let kubeconfig = plane.kubeconfig();
    let envs = [("KUBECONFIG", kubeconfig.to_str().expect("path"))];
    let args = ["--write-rate", "2", "--reference-poll-seconds", "1"];
    let (mut operator, log) = spawn_replica(&ns.name, "operator", &args, "info", &envs);
    eventually(Duration::from_secs(60), "the K-th write", || async {
        plane.writes(&ns.name) >= 10
    })
    .await;
    let running: UserSynchronization = tasks.get("corp").await.expect("task");
    assert!(
        running.status.and_then(|s| s.last_sync_time).is_none(),
        "the first sync is still running"
    );
    plane.script("restart-apiserver");
    let task = wait_for_run(&tasks, None).await;
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        operator.try_wait().expect("state").is_none(),
        "the operator rode out the apiserver's restart: {logs}"
    );
    if condition(&task, "Ready") != Some(("True".into(), "Synced".into())) {
        // The run the restart cut short failed; the next one (after its back-off) converges.
        run_now(&tasks, "after-restart").await;
        assert_synced(&wait_for_run(&tasks, Some("after-restart")).await);
    }
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);
    let synced = tree(&groups).await;
    ids_are_unique(&synced);
    assert_eq!(
        synced,
        fresh_sync(&kube_client().await, &base).await,
        "as a fresh sync"
    );

    // A run that deletes groups and shrinks Big, the apiserver killed after its third write.
    let unbraked = serde_json::json!({"spec": {"maxDeletions": "100%"}});
    tasks
        .patch("corp", &PatchParams::default(), &Patch::Merge(&unbraked))
        .await
        .expect("maxDeletions");
    for g in 0..SMALL_GROUPS / 2 {
        delete(&mut ldap, &SERVER.group_dn(&base, &format!("g{g}"))).await;
    }
    for n in 300..BIG {
        delete(&mut ldap, &SERVER.user_dn(&base, &format!("k{n}"))).await;
    }
    let before = plane.writes(&ns.name);
    run_now(&tasks, "deletes").await;
    eventually(
        Duration::from_secs(60),
        "the deleting run's third write",
        || async { plane.writes(&ns.name) >= before + 3 },
    )
    .await;
    let running: UserSynchronization = tasks.get("corp").await.expect("task");
    assert_ne!(
        running
            .status
            .and_then(|s| s.last_handled_run_now)
            .as_deref(),
        Some("deletes"),
        "the deleting run is still going"
    );
    plane.script("restart-apiserver");
    eventually(
        Duration::from_secs(120),
        "a run after the restart converges",
        || async {
            let task: UserSynchronization = tasks.get("corp").await.expect("task");
            let handled = task
                .status
                .as_ref()
                .and_then(|s| s.last_handled_run_now.clone());
            handled.as_deref() == Some("deletes")
                && condition(&task, "Ready") == Some(("True".into(), "Synced".into()))
        },
    )
    .await;
    assert!(
        operator.try_wait().expect("state").is_none(),
        "the operator stays up"
    );
    let shrunk = tree(&groups).await;
    ids_are_unique(&shrunk);
    assert!(shrunk.len() < synced.len());
    assert_eq!(
        shrunk,
        fresh_sync(&kube_client().await, &base).await,
        "as a fresh sync"
    );
    operator.kill().await.expect("stop the operator");
    let _ = std::fs::remove_file(log);
    drop(ns);
}
