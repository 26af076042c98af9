//! The cluster with a real node (`tests/env/node.sh`): an admin client, helm and kubectl against
//! it, the example task as a user applies it, the operator's containers as the node runs them, and
//! the audit log of that cluster.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::sync::{Mutex, MutexGuard};
use usersync::api::{ClusterDirectoryConnection, UserSynchronization};
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

/// The node marked unschedulable until dropped: pods already on it run on, a new one stays
/// Pending. What a failover looks like when the node or the scheduler cannot place a replacement.
pub struct Cordoned {
    node: String,
}

impl Cordoned {
    pub fn node() -> Cordoned {
        let node = kubectl(&["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"]);
        kubectl(&["cordon", &node]);
        Cordoned { node }
    }
}

impl Drop for Cordoned {
    fn drop(&mut self) {
        // Not `kubectl()`: a panic while the test unwinds would abort the other tests.
        let uncordoned = Command::new("kubectl")
            .args(["uncordon", &self.node])
            .env("KUBECONFIG", env::node().kubeconfig)
            .status();
        if !uncordoned.as_ref().is_ok_and(|s| s.success()) {
            eprintln!("could not uncordon {}: {uncordoned:?}", self.node);
        }
    }
}

/// Follows a pod's log into a file until the pod is gone (`kubectl logs -f`): what a failure
/// shows of a pod the test deletes. Killed when dropped.
pub struct FollowedLog {
    child: std::process::Child,
    pub path: std::path::PathBuf,
}

impl FollowedLog {
    pub fn start(ns: &str, pod: &str) -> FollowedLog {
        let path = std::env::temp_dir().join(format!("usersync-{ns}-{pod}.log"));
        let file = std::fs::File::create(&path).expect("log file");
        let child = Command::new("kubectl")
            .args(["-n", ns, "logs", "-f", pod])
            .env("KUBECONFIG", env::node().kubeconfig)
            .stdout(file)
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("kubectl logs -f");
        FollowedLog { child, path }
    }

    /// The last `lines` lines so far that come from the leader election or the shutdown.
    pub fn election_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        let kept: Vec<&str> = text
            .lines()
            .filter(|line| {
                [
                    "kube_lease_manager",
                    "controller::leader",
                    "controller::shutdown",
                ]
                .iter()
                .any(|target| line.contains(target))
            })
            .collect();
        kept[kept.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for FollowedLog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The chart values that point it at the image loaded into the node.
pub fn image_values() -> Vec<String> {
    let node = env::node();
    vec![
        format!("image.repository={}", node.image_repository),
        format!("image.tag={}", node.image_tag),
    ]
}

/// `examples/corp-ad-connection.yaml` applied as an administrator and a user would: the bind and CA
/// Secrets and the ClusterDirectoryConnection in the operator's namespace `system`, namespace `ns`
/// labelled so the connection serves it, and the task `corp-ad` there. The domain controller's
/// address is the one pods reach; the connection is named after `ns`, so tests do not share one.
pub async fn apply_example_task(
    client: &kube::Client,
    ns: &str,
    system: &str,
) -> Api<UserSynchronization> {
    let samba = env::samba();
    let ca = std::fs::read_to_string(&samba.ca_file).expect("Samba CA");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), system);
    let ca_secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "corp-ca"}, "stringData": {"ca.crt": ca},
    }))
    .expect("CA Secret");
    let text =
        std::fs::read_to_string(Path::new(WORKSPACE).join("examples/corp-ad-connection.yaml"))
            .expect("the example is readable");
    let mut docs = serde_norway::Deserializer::from_str(&text);
    let mut next = || docs.next().expect("the example's three documents");
    let mut bind: Secret = serde::Deserialize::deserialize(next()).expect("its Secret");
    let mut connection: ClusterDirectoryConnection =
        serde::Deserialize::deserialize(next()).expect("its connection");
    let mut task: UserSynchronization = serde::Deserialize::deserialize(next()).expect("its task");
    bind.metadata.namespace = Some(system.to_owned());
    let name = format!("corp-ad-{ns}");
    connection.metadata.name = Some(name.clone());
    connection.spec.server.urls = vec![
        samba
            .ldaps_url
            .replace("127.0.0.1", &env::node().host_address),
    ];
    task.metadata.namespace = Some(ns.to_owned());
    if let Some(r) = task.spec.connection_ref.as_mut() {
        r.name = name;
    }
    for secret in [ca_secret, bind] {
        let name = secret.metadata.name.clone().unwrap_or_default();
        let apply = PatchParams::apply("tests").force();
        secrets
            .patch(&name, &apply, &Patch::Apply(&secret))
            .await
            .expect("Secret applied");
    }
    Api::<ClusterDirectoryConnection>::all(client.clone())
        .create(&PostParams::default(), &connection)
        .await
        .expect("connection created");
    let label = serde_json::json!({"metadata": {"labels": {"usersync.io/directory": "corp-ad"}}});
    Api::<Namespace>::all(client.clone())
        .patch(ns, &PatchParams::default(), &Patch::Merge(&label))
        .await
        .expect("namespace labelled");
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
