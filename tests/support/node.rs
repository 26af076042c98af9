//! The cluster with a real node (`tests/env/node.sh`): an admin client, helm and kubectl against
//! it, the example task as a user applies it, the operator's containers as the node runs them, and
//! the audit log of that cluster.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::sync::{Mutex, MutexGuard};
use usersync::api::UserSynchronization;
use usersync_testbed::env;

use super::command::run_ok;

/// Where the chart and the example live.
const WORKSPACE: &str = env!("CARGO_MANIFEST_DIR");

static TURNS: Mutex<()> = Mutex::const_new(());

/// Held for the whole test: every test here installs an operator that watches all namespaces of
/// the one node cluster, and two at once would both work on each other's tasks.
pub async fn take_node() -> MutexGuard<'static, ()> {
    TURNS.lock().await
}

/// An admin client for the node's cluster.
pub async fn node_client() -> kube::Client {
    let kubeconfig = Kubeconfig::read_from(env::node().kubeconfig).expect("node kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("node kubeconfig works");
    kube::Client::try_from(config).expect("client")
}

/// `helm ARGS` against the node's cluster, from the workspace; its stdout.
pub fn helm(args: &[&str]) -> String {
    run_ok(
        Command::new("helm")
            .args(args)
            .args(["--kubeconfig", &env::node().kubeconfig])
            .current_dir(WORKSPACE),
    )
}

/// `kubectl ARGS` against the node's cluster, from the workspace; its stdout.
pub fn kubectl(args: &[&str]) -> String {
    run_ok(
        Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", env::node().kubeconfig)
            .current_dir(WORKSPACE),
    )
}

/// The chart values that point it at the image loaded into the node.
pub fn image_values() -> Vec<String> {
    let node = env::node();
    vec![
        format!("image.repository={}", node.image_repository),
        format!("image.tag={}", node.image_tag),
    ]
}

/// `examples/corp-ad.yaml` applied to namespace `ns`, as a user would after creating the CA
/// Secret it names; the domain controller's address is the one pods reach. The task is `corp-ad`.
pub async fn apply_example_task(client: &kube::Client, ns: &str) -> Api<UserSynchronization> {
    let samba = env::samba();
    let ca = std::fs::read_to_string(&samba.ca_file).expect("Samba CA");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let ca_secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "corp-ca"}, "stringData": {"ca.crt": ca},
    }))
    .expect("CA Secret");
    secrets
        .create(&PostParams::default(), &ca_secret)
        .await
        .expect("CA Secret created");

    let text = std::fs::read_to_string(Path::new(WORKSPACE).join("examples/corp-ad.yaml"))
        .expect("the example is readable");
    let mut docs = serde_norway::Deserializer::from_str(&text);
    let mut bind: Secret = serde::Deserialize::deserialize(docs.next().expect("Secret"))
        .expect("the example's first document is its Secret");
    let mut task: UserSynchronization = serde::Deserialize::deserialize(docs.next().expect("task"))
        .expect("the example's second document is its task");
    bind.metadata.namespace = Some(ns.to_owned());
    task.metadata.namespace = Some(ns.to_owned());
    let url = samba
        .ldaps_url
        .replace("127.0.0.1", &env::node().host_address);
    // The example's Secret allows the example's server; this one is the node's way to it.
    let allowed = BTreeMap::from([("usersync.io/allowed-servers".to_owned(), url.clone())]);
    bind.metadata.annotations = Some(allowed);
    if let Some(server) = task.spec.server.as_mut() {
        server.urls = vec![url];
    }
    secrets
        .create(&PostParams::default(), &bind)
        .await
        .expect("bind Secret created");
    let tasks: Api<UserSynchronization> = Api::namespaced(client.clone(), ns);
    tasks
        .create(&PostParams::default(), &task)
        .await
        .expect("task created");
    tasks
}

/// The operator's pods in `ns` that are Ready, by name.
pub async fn ready_pods(client: &kube::Client, ns: &str) -> Vec<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let listed = pods
        .list(&ListParams::default().labels("app.kubernetes.io/name=usersync"))
        .await
        .expect("list pods");
    let mut ready: Vec<String> = listed
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            let conditions = p.status.as_ref().and_then(|s| s.conditions.as_ref());
            conditions.is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .filter_map(|p| p.metadata.name)
        .collect();
    ready.sort();
    ready
}

/// Which pod holds the operator's Lease in `ns`, if any.
pub async fn leader(client: &kube::Client, ns: &str) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns);
    let lease = leases
        .get_opt("usersync-leader")
        .await
        .expect("get Lease")?;
    lease.spec?.holder_identity
}

/// What the node's kernel says about the operator's container in `pod`.
#[derive(Debug)]
pub struct Container {
    /// Real, effective, saved and filesystem uid.
    pub uids: String,
    pub effective_capabilities: String,
    /// The mount options of its root filesystem.
    pub root_mount: String,
    pub memory_limit_bytes: u64,
}

/// Finds the container's process through containerd and reads it from /proc and its memory cgroup.
pub async fn container(client: &kube::Client, ns: &str, pod: &str) -> Container {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let found = pods.get(pod).await.expect("pod");
    let statuses = found.status.and_then(|s| s.container_statuses);
    let id = statuses
        .and_then(|s| s.into_iter().find(|c| c.name == "usersync"))
        .and_then(|c| c.container_id)
        .expect("the usersync container has an id");
    let id = id
        .strip_prefix("containerd://")
        .expect("containerd runs it");
    let socket = Path::new(&env::node().dir).join("containerd.sock");
    let tasks = run_ok(Command::new("ctr").arg("--address").arg(socket).args([
        "--namespace",
        "k8s.io",
        "tasks",
        "ls",
    ]));
    let pid = tasks
        .lines()
        .find_map(|l| {
            let mut fields = l.split_whitespace();
            (fields.next() == Some(id)).then(|| fields.next().map(str::to_owned))?
        })
        .expect("containerd runs the container");
    let proc_file = |name: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/{name}")).expect("the process is readable")
    };
    let status = proc_file("status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .expect("field in /proc status")
    };
    let root_mount = proc_file("mountinfo")
        .lines()
        .find_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            (fields.get(4) == Some(&"/")).then(|| fields[5].to_owned())
        })
        .expect("a root mount");
    let memory_cgroup = proc_file("cgroup")
        .lines()
        .find_map(|l| l.split_once(":memory:").map(|(_, path)| path.to_owned()))
        .expect("a memory cgroup");
    let limit = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/memory{memory_cgroup}/memory.limit_in_bytes"
    ))
    .expect("the memory cgroup is readable");
    Container {
        uids: field("Uid:"),
        effective_capabilities: field("CapEff:"),
        root_mount,
        memory_limit_bytes: limit.trim().parse().expect("a number"),
    }
}

/// The pods that wrote to `ns` (UserGroups, tasks and their status, Events), in the order of their
/// writes, each run of writes by one pod as one entry: read from the pods' bound ServiceAccount
/// tokens, which the audit log records.
pub fn writers_in_turn(ns: &str) -> Vec<String> {
    let log = std::fs::read_to_string(env::node().audit_log).unwrap_or_default();
    let mut turns: Vec<String> = Vec::new();
    for line in log.lines() {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let verb = event["verb"].as_str().unwrap_or_default();
        if event["objectRef"]["namespace"] != ns
            || event["stage"] != "ResponseComplete"
            || !matches!(verb, "create" | "update" | "patch" | "delete")
        {
            continue;
        }
        let Some(pod) = event["user"]["extra"]["authentication.kubernetes.io/pod-name"][0].as_str()
        else {
            continue;
        };
        if turns.last().map(String::as_str) != Some(pod) {
            turns.push(pod.to_owned());
        }
    }
    turns
}

/// Polls `check` every 500 ms until it returns `Some`, for up to `timeout`.
pub async fn until<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
