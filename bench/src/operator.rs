//! usersync as deployed: the release binary running `usersync run` against the apiserver, one task per
//! namespace, driven by the run-now annotation.

use std::collections::BTreeMap;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use usersync::api::{UserGroup, UserSynchronization};

use crate::measure::{Sample, peak_rss, reset_peak_rss};
use crate::target::Target;

pub const TASK: &str = "bench";

pub struct Operator {
    child: Child,
    metrics_port: u16,
}

impl Operator {
    pub fn start(
        binary: &str,
        namespace: &str,
        kubeconfig: &str,
        log: &std::path::Path,
        member_range: Option<usize>,
    ) -> Result<Operator, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let log = std::fs::File::create(log).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(binary);
        cmd.args(["run", "--namespace", namespace, "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["--reference-poll-seconds", "3600"])
            // As many writes in flight as floor B has: the comparison is of the work per write.
            .args(["--write-concurrency", &crate::WRITES_AT_ONCE.to_string()])
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        if let Some(range) = member_range {
            cmd.args(["--member-range", &range.to_string()]);
        }
        let child = cmd.spawn().map_err(|e| format!("{binary}: {e}"))?;
        Ok(Operator {
            child,
            metrics_port: port,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn reset_peak(&self) {
        reset_peak_rss(self.pid());
    }

    pub fn peak_rss_kib(&self) -> Option<u64> {
        peak_rss(self.pid())
    }

    /// The metrics listener, waiting while the operator starts (slowly under a profiler).
    async fn connect_metrics(&self) -> Result<tokio::net::TcpStream, String> {
        let started = Instant::now();
        loop {
            match tokio::net::TcpStream::connect(("127.0.0.1", self.metrics_port)).await {
                Ok(stream) => return Ok(stream),
                Err(e) if started.elapsed() > Duration::from_secs(60) => {
                    return Err(format!("metrics: {e}"));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// `usersync_directory_entries_read_total` from /metrics.
    pub async fn entries_read(&self) -> Result<u64, String> {
        let mut stream = self.connect_metrics().await?;
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| format!("metrics: {e}"))?;
        let mut body = String::new();
        stream
            .read_to_string(&mut body)
            .await
            .map_err(|e| format!("metrics: {e}"))?;
        body.lines()
            .find_map(|l| l.strip_prefix("usersync_directory_entries_read_total "))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| "no entries counter in /metrics".to_owned())
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn create_namespace(client: &kube::Client, name: &str) -> Result<(), String> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .map(drop)
        .map_err(|e| format!("namespace {name}: {e}"))
}

/// A fresh namespace with the task's Secrets.
pub async fn prepare_namespace(
    client: &kube::Client,
    name: &str,
    target: &Target,
) -> Result<(), String> {
    create_namespace(client, name).await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), name);
    let ca = std::fs::read_to_string(&target.ca_file).map_err(|e| e.to_string())?;
    for (secret, data) in [
        (
            "bind",
            BTreeMap::from([
                ("username".to_owned(), target.bind.clone()),
                ("password".to_owned(), target.password.clone()),
            ]),
        ),
        ("ca", BTreeMap::from([("ca.crt".to_owned(), ca)])),
    ] {
        // The bind Secret opts in to being sent to the directory's server.
        let annotations = (secret == "bind").then(|| {
            BTreeMap::from([("usersync.io/allowed-servers".to_owned(), target.url.clone())])
        });
        let object = Secret {
            metadata: ObjectMeta {
                name: Some(secret.into()),
                annotations,
                ..Default::default()
            },
            string_data: Some(data),
            ..Default::default()
        };
        secrets
            .create(&PostParams::default(), &object)
            .await
            .map_err(|e| format!("secret {secret}: {e}"))?;
    }
    Ok(())
}

/// Creates the task and waits for its first run to finish.
pub async fn first_run(
    tasks: &Api<UserSynchronization>,
    target: &Target,
) -> Result<Sample, String> {
    let task: UserSynchronization =
        serde_json::from_value(target.task(TASK)).map_err(|e| e.to_string())?;
    let started = Instant::now();
    tasks
        .create(&PostParams::default(), &task)
        .await
        .map_err(|e| format!("task: {e}"))?;
    wait(tasks, started, |s| s.last_sync_time.is_some()).await
}

/// Asks for a run with the run-now annotation and waits until it finished.
pub async fn run_now(tasks: &Api<UserSynchronization>, token: &str) -> Result<Sample, String> {
    let patch = serde_json::json!({"metadata": {"annotations": {"usersync.io/run-now": token}}});
    let started = Instant::now();
    tasks
        .patch(TASK, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| format!("run-now: {e}"))?;
    wait(tasks, started, |s| {
        s.last_handled_run_now.as_deref() == Some(token)
    })
    .await
}

async fn wait(
    tasks: &Api<UserSynchronization>,
    started: Instant,
    done: impl Fn(&usersync::api::UserSynchronizationStatus) -> bool,
) -> Result<Sample, String> {
    loop {
        let task = tasks.get(TASK).await.map_err(|e| format!("task: {e}"))?;
        if let Some(status) = task.status.as_ref().filter(|s| done(s)) {
            let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
            if ready.is_none_or(|c| c.status != "True") {
                return Err(format!("the run did not succeed: {ready:?}"));
            }
            let run = status.last_run.as_ref();
            return Ok(Sample {
                wall_seconds: started.elapsed().as_secs_f64(),
                note: run
                    .map(|r| {
                        format!(
                            "run {:.2} s: {} created, {} updated, {} removed",
                            r.duration_seconds, r.created, r.updated, r.removed
                        )
                    })
                    .unwrap_or_default(),
                ..Default::default()
            });
        }
        if started.elapsed() > Duration::from_secs(1800) {
            return Err("no run finished within 30 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Seconds from `started` until the UserGroup `group` lists the user `dn` with `display_name`.
pub async fn until_member_shows(
    groups: &Api<UserGroup>,
    group: &str,
    dn: &str,
    display_name: &str,
    started: Instant,
) -> Result<f64, String> {
    loop {
        let object = groups
            .get(group)
            .await
            .map_err(|e| format!("{group}: {e}"))?;
        let shown = object.spec.users.iter().any(|u| {
            u.dn.eq_ignore_ascii_case(dn) && u.display_name.as_deref() == Some(display_name)
        });
        if shown {
            return Ok(started.elapsed().as_secs_f64());
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err(format!("{group} never showed the new name of {dn}"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
