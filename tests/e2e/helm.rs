//! The Helm chart installs on the real apiserver, and its ServiceAccount's RBAC is enough to run the
//! operator (in-process, authenticated with that ServiceAccount's token) and no more than it needs.

use std::process::Command;

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams};
use usersync::api::{ClusterDirectoryConnection, UserGroup, UserSynchronization};
use usersync::controller::leader::LeaderElection;
use usersync_testbed::env;

use crate::support::command::run_ok;
use crate::support::connection::cluster_connection;
use crate::support::kube::{
    create_task, install_crds, kube_client, secrets, service_account_client, user_groups,
};
use crate::support::ldap::{Server, subtree_on};
use crate::support::namespace::TestNamespace;
use crate::support::operator::InProcess;
use crate::support::wait::{assert_synced, condition, wait_for_run};

fn helm(args: &[&str]) -> String {
    run_ok(
        Command::new("helm")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR")),
    )
}

/// `helm install` of the chart into a fresh namespace; returns it and the release name.
async fn install_chart(admin: &kube::Client, values: &[&str]) -> (TestNamespace, String) {
    // Installed first so helm and the other tests find them in place instead of racing to create them.
    install_crds(admin).await;
    let system = TestNamespace::new(admin, "usersync-system").await;
    let release = format!("us-{}", &system.name[system.name.len() - 8..]);
    let kubeconfig = env::kube().kubeconfig;
    let mut args = vec![
        "install",
        &release,
        "charts/usersync",
        "--namespace",
        &system.name,
        "--kubeconfig",
        &kubeconfig,
        "--wait=false",
    ];
    for value in values {
        args.extend(["--set", value]);
    }
    helm(&args);
    (system, release)
}

fn uninstall_chart(system: &TestNamespace, release: &str) {
    helm(&[
        "uninstall",
        release,
        "--namespace",
        &system.name,
        "--kubeconfig",
        &env::kube().kubeconfig,
    ]);
}

fn forbidden<T>(result: Result<T, kube::Error>) -> bool {
    matches!(result, Err(kube::Error::Api(s)) if s.code == 403)
}

#[tokio::test]
async fn the_chart_service_account_runs_the_operator_with_least_privilege() {
    let admin = kube_client().await;
    let (system, release) = install_chart(&admin, &[]).await;
    let account = format!("{release}-usersync");

    let operator_client = service_account_client(&admin, &system.name, &account).await;
    let ns = TestNamespace::new(&admin, "e2e-helm").await;
    let mut ldap = Server::Samba.admin().await;
    let base = subtree_on(Server::Samba, &mut ldap, &ns.name).await;
    // The chart's default: Secrets only in the release namespace, where a cluster connection
    // keeps them; the task in its own namespace names the connection.
    secrets(&admin, &system.name, &env::samba().admin_password).await;
    let connection = cluster_connection(&admin, &system.name, &ns.name).await;
    let tasks = create_task(&admin, &ns.name, &base).await;
    let through = serde_json::json!({"spec": {
        "server": null,
        "connectionRef": {"kind": "ClusterDirectoryConnection", "name": connection},
    }});
    tasks
        .patch("corp", &PatchParams::default(), &Patch::Merge(&through))
        .await
        .expect("the task reads through the connection");
    // As the chart runs it: with leader election on a Lease in the release namespace.
    let mut options = InProcess::watching(&ns.name);
    options.connection_namespace = system.name.clone();
    options.secret_namespaces = Some(vec![system.name.clone()]);
    options.leader_election = Some(LeaderElection {
        namespace: system.name.clone(),
        lease_name: "usersync-leader".into(),
        identity: "chart-test".into(),
        lease_duration: std::time::Duration::from_secs(15),
    });
    let operator = options.start(&operator_client);

    let task = wait_for_run(&tasks, None).await;
    assert_synced(&task);
    let groups: Api<UserGroup> = Api::namespaced(admin.clone(), &ns.name);
    assert_eq!(user_groups(&groups).await.len(), 3);
    operator.abort();

    // Least privilege: the operator may read a Secret of its own namespace, never list them, read
    // none in the task's namespace, and has no business with pods.
    let secrets_api: Api<Secret> = Api::namespaced(operator_client.clone(), &system.name);
    secrets_api.get("bind").await.expect("get a named Secret");
    assert!(
        forbidden(secrets_api.list(&ListParams::default()).await),
        "listing Secrets is refused"
    );
    secrets(&admin, &ns.name, &env::samba().admin_password).await;
    let task_secrets: Api<Secret> = Api::namespaced(operator_client.clone(), &ns.name);
    assert!(
        forbidden(task_secrets.get("bind").await),
        "a Secret outside the release namespace is refused"
    );
    let _ = Api::<ClusterDirectoryConnection>::all(admin.clone())
        .delete(&connection, &Default::default())
        .await;
    let pods: Api<Pod> = Api::namespaced(operator_client, &ns.name);
    assert!(
        forbidden(pods.list(&ListParams::default()).await),
        "pods are none of its business"
    );
    uninstall_chart(&system, &release);
}

#[tokio::test]
async fn a_chart_limited_to_listed_namespaces_syncs_there_and_nowhere_else() {
    let admin = kube_client().await;
    install_crds(&admin).await;
    let mut ldap = Server::Samba.admin().await;
    let mut namespaces = Vec::new();
    let mut task_apis = Vec::new();
    for prefix in ["e2e-watched-a", "e2e-watched-b", "e2e-unwatched"] {
        let ns = TestNamespace::new(&admin, prefix).await;
        let base = subtree_on(Server::Samba, &mut ldap, &ns.name).await;
        secrets(&admin, &ns.name, &env::samba().admin_password).await;
        task_apis.push(create_task(&admin, &ns.name, &base).await);
        namespaces.push(ns);
    }
    let watched = format!(
        "watchNamespaces={{{},{}}}",
        namespaces[0].name, namespaces[1].name
    );
    // The tasks keep their Secrets in their own namespaces: the operator is told it may read them.
    let secret_reads = watched.replace("watchNamespaces", "secretNamespaces");
    let (system, release) = install_chart(
        &admin,
        &[&watched, &secret_reads, "leaderElection.enabled=false"],
    )
    .await;
    let operator_client =
        service_account_client(&admin, &system.name, &format!("{release}-usersync")).await;
    // One run at a time across both namespaces: the limit is shared, and both still get their turn.
    let mut options = InProcess::watching(&namespaces[0].name);
    options.namespaces = vec![namespaces[0].name.clone(), namespaces[1].name.clone()];
    options.concurrency = 1;
    options.secret_namespaces = Some(options.namespaces.clone());
    let operator = options.start(&operator_client);

    for (tasks, ns) in task_apis.iter().zip(&namespaces).take(2) {
        let task = wait_for_run(tasks, None).await;
        assert_eq!(
            condition(&task, "Ready"),
            Some(("True".into(), "Synced".into())),
            "{}: {:?}",
            ns.name,
            task.status
        );
        let groups: Api<UserGroup> = Api::namespaced(admin.clone(), &ns.name);
        assert_eq!(user_groups(&groups).await.len(), 3, "{}", ns.name);
    }
    let unwatched = task_apis[2].get("corp").await.expect("task");
    assert!(
        unwatched.status.is_none(),
        "a task outside the watched namespaces is left alone: {:?}",
        unwatched.status
    );
    let groups: Api<UserGroup> = Api::namespaced(admin.clone(), &namespaces[2].name);
    assert!(user_groups(&groups).await.is_empty());
    operator.abort();

    // The chart granted Roles in the listed namespaces only: no ClusterRole to fall back on.
    let elsewhere: Api<UserSynchronization> =
        Api::namespaced(operator_client.clone(), &namespaces[2].name);
    assert!(forbidden(elsewhere.list(&ListParams::default()).await));
    let everywhere: Api<UserSynchronization> = Api::all(operator_client);
    assert!(forbidden(everywhere.list(&ListParams::default()).await));
    uninstall_chart(&system, &release);
}

#[tokio::test]
async fn plain_manifests_apply_on_a_bare_cluster() {
    install_crds(&kube_client().await).await;
    let kubeconfig = env::kube().kubeconfig;
    let stdout = run_ok(
        Command::new("kubectl")
            .args([
                "--kubeconfig",
                &kubeconfig,
                "apply",
                "--server-side",
                "-k",
                "deploy/",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR")),
    );
    for kind in [
        "namespace/usersync-system",
        "customresourcedefinition",
        "clusterrole",
        "deployment.apps/usersync",
    ] {
        assert!(stdout.contains(kind), "{kind} missing from: {stdout}");
    }
    // The CRDs stay: other tests use them.
    let _ = Command::new("kubectl")
        .args(["--kubeconfig", &kubeconfig, "delete", "--wait=false"])
        .args([
            "-f",
            "deploy/02-operator.yaml",
            "-f",
            "deploy/00-namespace.yaml",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
}
