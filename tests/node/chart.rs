//! `helm install --wait` and `helm upgrade --wait` of the chart with the locally built image: the
//! pod runs under the chart's security settings and memory limit, syncs from inside the cluster,
//! and upgrades finish with one replica and with two, the standby taking over from a deleted leader.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use usersync::api::{SHARD_OF_LABEL, UserGroup, UserSynchronization};

use crate::support::namespace::TestNamespace;
use crate::support::node::{
    Cordoned, FollowedLog, apply_example_task, container, helm, image_values, leader, node_client,
    ready_pods, take_node, until, writers_in_turn,
};

/// A Helm release in a namespace of its own, uninstalled when dropped: the next test must not find
/// a second operator working on its tasks.
pub struct Release {
    pub ns: TestNamespace,
    pub name: String,
}

impl Release {
    /// `helm install --wait` with the node's image and `values`.
    pub async fn install(client: &kube::Client, values: &[&str]) -> Release {
        let ns = TestNamespace::new(client, "usersync-system").await;
        let name = format!("us-{}", &ns.name[ns.name.len() - 8..]);
        let release = Release { ns, name };
        release.helm_with_values("install", values);
        release
    }

    /// `helm upgrade --wait` to `values` (on top of the image).
    pub fn upgrade(&self, values: &[&str]) {
        self.helm_with_values("upgrade", values);
    }

    fn helm_with_values(&self, verb: &str, values: &[&str]) {
        let image = image_values();
        let mut args = vec![
            verb,
            &self.name,
            "charts/usersync",
            "--namespace",
            &self.ns.name,
            "--wait",
            "--timeout",
            "180s",
        ];
        for value in image
            .iter()
            .map(String::as_str)
            .chain(values.iter().copied())
        {
            args.extend(["--set", value]);
        }
        helm(&args);
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        // Not `helm()`: a failing uninstall must not turn a test's own failure into a double panic.
        let uninstalled = std::process::Command::new("helm")
            .args([
                "uninstall",
                &self.name,
                "--namespace",
                &self.ns.name,
                "--wait",
            ])
            .args(["--kubeconfig", &usersync_testbed::env::node().kubeconfig])
            .output();
        if !uninstalled.is_ok_and(|out| out.status.success()) {
            eprintln!("helm uninstall {} failed", self.name);
        }
    }
}

/// Waits until the task `corp-ad` has finished a run that `done` accepts, and returns it.
pub async fn task_where(
    tasks: &Api<UserSynchronization>,
    what: &str,
    done: impl Fn(&UserSynchronization) -> bool,
) -> UserSynchronization {
    until(Duration::from_secs(120), what, || async {
        let task = tasks.get("corp-ad").await.expect("task");
        done(&task).then_some(task)
    })
    .await
}

/// Asks the task `corp-ad` for a run (run-now `token`) and waits until that run has synced.
pub async fn run_now_until_synced(
    tasks: &Api<UserSynchronization>,
    token: &str,
) -> UserSynchronization {
    let patch = serde_json::json!({"metadata": {"annotations": {"usersync.io/run-now": token}}});
    tasks
        .patch("corp-ad", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("ask for a run");
    task_where(tasks, "the asked-for run syncs", |t| {
        let status = t.status.as_ref();
        status.and_then(|s| s.last_handled_run_now.as_deref()) == Some(token) && synced(t)
    })
    .await
}

/// Ready is True with reason Synced.
pub fn synced(task: &UserSynchronization) -> bool {
    let conditions = task.status.as_ref().map(|s| s.conditions.as_slice());
    conditions
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True" && c.reason == "Synced")
}

#[tokio::test]
async fn helm_install_runs_the_image_on_the_node_and_syncs_from_the_pod() {
    let _turn = take_node().await;
    let client = node_client().await;
    let release = Release::install(&client, &["resources.limits.memory=200Mi"]).await;

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &release.ns.name);
    let listed = deployments
        .list(&Default::default())
        .await
        .expect("Deployments");
    let [deployment] = listed.items.as_slice() else {
        panic!("one Deployment: {listed:?}");
    };
    let available = deployment
        .status
        .clone()
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .any(|c| c.type_.as_deref() == Some("Available") && c.status.as_deref() == Some("True"));
    assert!(
        available,
        "helm --wait returned before the Deployment was Available"
    );
    let pods = ready_pods(&client, &release.ns.name).await;
    assert_eq!(pods.len(), 1, "{pods:?}");

    // What the kernel enforces, read from the container's process and cgroup.
    let running = container(&client, &release.ns.name, &pods[0]).await;
    assert_eq!(running.uids, "65532 65532 65532 65532", "{running:?}");
    assert_eq!(
        running.effective_capabilities, "0000000000000000",
        "{running:?}"
    );
    assert!(
        running.root_mount.split(',').any(|o| o == "ro"),
        "{running:?}"
    );
    assert_eq!(running.memory_limit_bytes, 200 * 1024 * 1024, "{running:?}");

    let identity = TestNamespace::new(&client, "identity").await;
    let tasks = apply_example_task(&client, &identity.name, &release.ns.name).await;
    let task = task_where(&tasks, "the example task is synced", synced).await;
    let summary = task.status.and_then(|s| s.last_run).expect("a run summary");
    assert!(summary.users > 3000, "{summary:?}");
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &identity.name);
    let written = groups.list(&Default::default()).await.expect("UserGroups");
    assert!(written.items.len() as i64 >= summary.groups, "{summary:?}");
    assert_predictable_names(&written.items);
    // Every write came from the pod, with its own ServiceAccount token.
    assert_eq!(writers_in_turn(&identity.name), pods);
}

#[tokio::test]
async fn helm_upgrade_finishes_with_one_and_two_replicas_and_the_standby_takes_over() {
    let _turn = take_node().await;
    let client = node_client().await;
    let release = Release::install(&client, &[]).await;
    let system = release.ns.name.clone();
    let identity = TestNamespace::new(&client, "identity").await;
    let tasks = apply_example_task(&client, &identity.name, &system).await;
    task_where(&tasks, "the first run", synced).await;
    let first = ready_pods(&client, &system).await;

    // A changed value rolls the one pod: the new one must be Ready while the old one still leads.
    release.upgrade(&["logLevel=debug"]);
    let rolled = ready_pods(&client, &system).await;
    assert_eq!(rolled.len(), 1, "{rolled:?}");
    assert_ne!(rolled, first, "the upgrade replaced the pod");
    let new_leader = rolled[0].clone();
    until(Duration::from_secs(60), "the new pod leads", || async {
        (leader(&client, &system).await.as_deref() == Some(new_leader.as_str())).then_some(())
    })
    .await;

    release.upgrade(&["logLevel=debug", "replicaCount=2"]);
    let both = ready_pods(&client, &system).await;
    assert_eq!(both.len(), 2, "a standby is Ready too: {both:?}");
    let leading = leader(&client, &system).await.expect("a leader");
    let standby = both
        .iter()
        .find(|p| **p != leading)
        .expect("a standby")
        .clone();
    // A leader lets a run in progress finish before it lets go: wait until none is, so that what
    // is timed below is the hand-over alone.
    task_where(&tasks, "no run in progress", |t| {
        let conditions = t.status.as_ref().map(|s| s.conditions.as_slice());
        conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Reconciling" && c.status == "False")
    })
    .await;

    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), &system);
    let (leader_log, standby_log) = (
        FollowedLog::start(&system, &leading),
        FollowedLog::start(&system, &standby),
    );
    // The leader's replacement stays Pending until the standby has taken over: a replacement that
    // starts within a second may take the free Lease first, which is a hand-over too, but not the
    // one this step shows.
    let cordoned = Cordoned::node();
    pods.delete(&leading, &DeleteParams::default())
        .await
        .expect("delete the leader");
    // Sooner than the 15 s Lease could expire: the leader released it on its way out, and the
    // standby, watching the Lease, took it at once.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(12);
    loop {
        let holder = leader(&client, &system).await;
        if holder.as_deref() == Some(standby.as_str()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the standby leads: not within 12s; the Lease names {holder:?}; pods {:?}\n\
             --- the old leader's log:\n{}\n--- the standby's:\n{}",
            ready_pods(&client, &system).await,
            leader_log.election_tail(15),
            standby_log.election_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop((leader_log, standby_log, cordoned));
    run_now_until_synced(&tasks, "after-failover").await;

    // One writer at a time: each pod's writes come in one stretch, and the standby wrote last.
    let turns = writers_in_turn(&identity.name);
    let mut seen = turns.clone();
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen.len(),
        turns.len(),
        "writers took turns more than once: {turns:?}"
    );
    assert_eq!(turns.last(), Some(&standby), "{turns:?}");
}

/// The quick start's names, as a person guesses them: the root is `targetGroup`, and each group
/// is its directory name alone, or (where another group of the domain has that name) that name and
/// its id's suffix.
fn assert_predictable_names(groups: &[UserGroup]) {
    use usersync::planner::names::{carries_suffix_of, plain_name};
    let names: Vec<String> = groups.iter().map(|g| g.name_any()).collect();
    for expected in ["all-users", "all-staff", "team-0001", "engineering"] {
        assert!(names.iter().any(|n| n == expected), "{expected}: {names:?}");
    }
    for group in groups
        .iter()
        .filter(|g| !g.labels().contains_key(SHARD_OF_LABEL))
    {
        let Some(source) = &group.spec.source else {
            continue;
        };
        let name = group.name_any();
        let plain = plain_name(&group.spec.display_name);
        assert!(
            plain.as_deref() == Some(name.as_str()) || carries_suffix_of(&name, &source.id),
            "{name} for {:?}",
            group.spec.display_name
        );
    }
}
