//! The kubelet stopping the operator's pod (SIGTERM, then the grace period) in the middle of a run:
//! the run finishes and reports before the container exits, and the next run finds nothing to
//! repair.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, LogParams};

use crate::chart::{Release, run_now_until_synced, synced, task_where};
use crate::support::namespace::TestNamespace;
use crate::support::node::{apply_example_task, node_client, ready_pods, take_node, until};

/// Follows the container's log until it exits, collecting the lines.
fn follow_log(pods: &Api<Pod>, pod: &str) -> (Arc<Mutex<String>>, tokio::task::JoinHandle<()>) {
    let log = Arc::new(Mutex::new(String::new()));
    let (pods, pod, collected) = (pods.clone(), pod.to_owned(), log.clone());
    let following = tokio::spawn(async move {
        let params = LogParams {
            follow: true,
            container: Some("usersync".into()),
            ..Default::default()
        };
        let stream = pods.log_stream(&pod, &params).await.expect("log stream");
        let mut lines = stream.lines();
        while let Some(Ok(line)) = lines.next().await {
            let mut text = collected.lock().expect("log");
            text.push_str(&line);
            text.push('\n');
        }
    });
    (log, following)
}

fn contains(log: &Mutex<String>, text: &str) -> bool {
    log.lock().expect("log").contains(text)
}

#[tokio::test]
async fn a_run_in_progress_when_the_kubelet_stops_the_pod_finishes_and_reports() {
    let _turn = take_node().await;
    let client = node_client().await;
    // Members fetched 100 at a time: a run over the whole domain that lasts a while.
    let release = Release::install(&client, &["memberRange=100"]).await;
    let system = release.ns.name.clone();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &system);
    let [pod] = ready_pods(&client, &system)
        .await
        .try_into()
        .expect("one pod");
    let grace = pods.get(&pod).await.expect("pod").spec.expect("spec");
    assert_eq!(
        grace.termination_grace_period_seconds,
        Some(60),
        "the chart's default"
    );
    let (log, following) = follow_log(&pods, &pod);

    let identity = TestNamespace::new(&client, "identity").await;
    let tasks = apply_example_task(&client, &identity.name, &system).await;
    until(
        Duration::from_secs(60),
        "a run starts in the pod",
        || async { contains(&log, "run started").then_some(()) },
    )
    .await;
    assert!(
        !contains(&log, "run finished"),
        "the run was over before the pod was stopped"
    );
    pods.delete(&pod, &DeleteParams::default())
        .await
        .expect("delete the pod");
    tokio::time::timeout(Duration::from_secs(90), following)
        .await
        .expect("the container exits within its grace period")
        .expect("the log was followed");

    // In this order: the run began, the signal came, the run finished and reported.
    let log = log.lock().expect("log").clone();
    let started = log.find("run started").expect("run started");
    let signalled = log
        .find("shutdown requested")
        .unwrap_or_else(|| panic!("{log}"));
    let finished = log.find("run finished").unwrap_or_else(|| panic!("{log}"));
    assert!(started < signalled && signalled < finished, "{log}");
    let task = task_where(&tasks, "the interrupted run reported", synced).await;
    let first = task.status.and_then(|s| s.last_run).expect("summary");
    assert!(first.created > 0, "{first:?}");

    // The replacement pod's run has nothing left to do.
    let task = run_now_until_synced(&tasks, "after-restart").await;
    let next = task.status.and_then(|s| s.last_run).expect("summary");
    assert_eq!(
        (next.created, next.updated, next.removed),
        (0, 0, 0),
        "the interrupted run left work behind: {next:?}"
    );
}
