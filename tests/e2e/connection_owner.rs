//! A cluster-wide connection among several installs of the operator: checked only by one that may
//! read its Secrets, and its Events where the apiserver takes Events about cluster-scoped objects.

use std::time::Duration;

use kube::api::{Api, DeleteParams, ListParams};
use usersync::api::{ClusterDirectoryConnection, DirectoryConnectionStatus};

use crate::support::connection::cluster_connection;
use crate::support::kube::Scenario;
use crate::support::operator::InProcess;
use crate::support::wait::eventually;

fn condition_of(status: &DirectoryConnectionStatus, type_: &str) -> Option<(String, String)> {
    let c = status.conditions.iter().find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone()))
}

/// An install limited to some namespaces shares the cluster with others: a ClusterDirectoryConnection
/// whose Secrets it may not read is not its to check, so it never reports it broken for that
/// (other tests' operators, which may read them, check it meanwhile and find it working).
#[tokio::test]
async fn a_cluster_connection_is_checked_only_by_an_install_that_may_read_its_secrets() {
    let Scenario { client, ns, .. } = Scenario::new("e2e-conn-owner").await;
    let name = cluster_connection(&client, &ns.name, &ns.name).await;
    let connections: Api<ClusterDirectoryConnection> = Api::all(client.clone());
    let ready = || async {
        let status = connections.get(&name).await.ok().and_then(|c| c.status);
        status.and_then(|s| condition_of(&s, "Ready"))
    };
    let limited = InProcess {
        secret_namespaces: Some(vec!["somewhere-else".to_owned()]),
        connection_check: Duration::from_secs(1),
        ..InProcess::watching("somewhere-else")
    }
    .start(&client);
    // Checked by an install that may not read the Secrets, it would fail with this reason, and
    // again every second while failing.
    for _ in 0..60 {
        let seen = ready().await;
        assert!(
            seen.as_ref()
                .is_none_or(|(_, reason)| reason != "ReferenceNotAllowed"),
            "the limited install reported the connection: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let whole = InProcess {
        connection_check: Duration::from_secs(1),
        ..InProcess::watching(&ns.name)
    }
    .start(&client);
    eventually(
        Duration::from_secs(60),
        "the connection checked",
        || async { ready().await.is_some_and(|(status, _)| status == "True") },
    )
    .await;
    // Its Event is in `default`, the one namespace the apiserver takes Events about
    // cluster-scoped objects in.
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(client.clone(), "default");
    eventually(
        Duration::from_secs(30),
        "an Event about the connection",
        || async {
            let listed = events.list(&ListParams::default()).await;
            listed.is_ok_and(|l| {
                l.items.iter().any(|e| {
                    e.reason.as_deref() == Some("Connected")
                        && e.regarding.as_ref().and_then(|r| r.name.as_deref())
                            == Some(name.as_str())
                })
            })
        },
    )
    .await;
    limited.abort();
    whole.abort();
    let _ = connections.delete(&name, &DeleteParams::default()).await;
}
