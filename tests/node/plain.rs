//! `kubectl apply --server-side -k` of `deploy/` on a cluster that has never seen usersync: one
//! apply creates the namespace, the CRDs and the operator, whose pod runs and syncs. The image is
//! pointed at the node's copy by a kustomization on top, as users point it at their registry.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams};

use crate::chart::{synced, task_where};
use crate::support::namespace::TestNamespace;
use crate::support::node::{
    apply_example_task, kubectl, node_client, ready_pods, take_node, until,
};

const CRDS: [&str; 2] = ["usersynchronizations.usersync.io", "usergroups.usersync.io"];

/// Removes what earlier tests left of usersync (the chart's CRDs), so the cluster is as fresh as
/// a new one for the apply.
async fn without_usersync(client: &kube::Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for crd in CRDS {
        let _ = crds.delete(crd, &DeleteParams::default()).await;
    }
    until(Duration::from_secs(120), "no usersync left", || async {
        let mut gone = namespaces
            .get_opt("usersync-system")
            .await
            .expect("get")
            .is_none();
        for crd in CRDS {
            gone &= crds.get_opt(crd).await.expect("get CRD").is_none();
        }
        gone.then_some(())
    })
    .await;
}

/// Deletes the overlay's objects when dropped, the CRDs and the operator's namespace with them.
struct Applied(std::path::PathBuf);

impl Drop for Applied {
    fn drop(&mut self) {
        let deleted = std::process::Command::new("kubectl")
            .args(["delete", "--wait", "--ignore-not-found", "-k"])
            .arg(&self.0)
            .env("KUBECONFIG", usersync_testbed::env::node().kubeconfig)
            .output();
        if !deleted.is_ok_and(|out| out.status.success()) {
            eprintln!("kubectl delete -k {} failed", self.0.display());
        }
    }
}

#[tokio::test]
async fn plain_manifests_apply_on_a_fresh_cluster_and_run() {
    let _turn = take_node().await;
    let client = node_client().await;
    without_usersync(&client).await;

    let node = usersync_testbed::env::node();
    // Inside the workspace: kustomize takes a base only by a relative path.
    let overlay = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/node-overlay");
    std::fs::create_dir_all(&overlay).expect("overlay dir");
    let kustomization = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../deploy\n\
         images:\n  - name: usersync\n    newName: {}\n    newTag: {}\n",
        node.image_repository, node.image_tag
    );
    std::fs::write(overlay.join("kustomization.yaml"), kustomization).expect("kustomization");
    let overlay_arg = overlay.display().to_string();
    kubectl(&["apply", "--server-side", "-k", &overlay_arg]);
    let _applied = Applied(overlay.clone());
    kubectl(&[
        "--namespace",
        "usersync-system",
        "rollout",
        "status",
        "deployment/usersync",
        "--timeout=180s",
    ]);
    let pods = ready_pods(&client, "usersync-system").await;
    assert_eq!(pods.len(), 1, "{pods:?}");

    let identity = TestNamespace::new(&client, "identity").await;
    let tasks = apply_example_task(&client, &identity.name, "usersync-system").await;
    let task = task_where(&tasks, "the example task is synced", synced).await;
    assert!(
        task.status
            .and_then(|s| s.last_run)
            .is_some_and(|r| r.users > 3000)
    );
}
