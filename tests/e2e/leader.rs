//! Two replicas with leader election on a real Lease, each with a ServiceAccount of its own so the
//! apiserver's audit log tells their writes apart: only the leader ever writes, both are ready, and
//! when the leader goes away the other takes over.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};
use kube::api::{Api, ObjectMeta, PostParams};
use usersync::controller::leader::LeaderElection;

use crate::support::audit::audit_writers;
use crate::support::kube::{Scenario, create_task, run_now, service_account_client};
use crate::support::operator::{InProcess, http_get, take_turn};
use crate::support::wait::{condition, wait_for_run};

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt("usersync-leader")
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

/// A ServiceAccount allowed everything in `ns` (the replicas' rights are not under test here).
async fn replica_account(admin: &kube::Client, ns: &str, name: &str) -> kube::Client {
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), ns);
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    accounts
        .create(&PostParams::default(), &account)
        .await
        .expect("ServiceAccount");
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), ns);
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: "cluster-admin".into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: name.into(),
            namespace: Some(ns.into()),
            ..Default::default()
        }]),
    };
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .expect("RoleBinding");
    service_account_client(admin, ns, name).await
}

#[tokio::test]
async fn only_the_leader_writes_and_the_other_takes_over() {
    let _turn = take_turn().await;
    let Scenario {
        client,
        ns,
        ldap: _,
        base,
    } = Scenario::new("e2e-leader").await;
    let tasks = create_task(&client, &ns.name, &base).await;

    let user = |identity: &str| format!("system:serviceaccount:{}:{identity}", ns.name);
    let mut replicas = Vec::new();
    let mut endpoints = std::collections::BTreeMap::new();
    for identity in ["replica-a", "replica-b"] {
        let replica_client = replica_account(&client, &ns.name, identity).await;
        let mut options = InProcess::watching(&ns.name);
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        options.listen = Some(addr);
        endpoints.insert(identity, addr);
        options.leader_election = Some(LeaderElection {
            namespace: ns.name.clone(),
            lease_name: "usersync-leader".into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(4),
        });
        replicas.push((identity, Some(options.start(&replica_client))));
    }
    let task = wait_for_run(&tasks, None).await;
    assert_eq!(
        condition(&task, "Ready"),
        Some(("True".into(), "Synced".into()))
    );
    for token in ["again-1", "again-2"] {
        run_now(&tasks, token).await;
        wait_for_run(&tasks, Some(token)).await;
    }

    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns.name);
    let first = holder(&leases).await.expect("the lease has a holder");
    let standby = if first == "replica-a" {
        "replica-b"
    } else {
        "replica-a"
    };
    // Both are ready: the standby too, idle, so that a rolling update does not wait on the lease.
    for (identity, addr) in &endpoints {
        let (status_line, _) = http_get(*addr, "/readyz").await;
        assert_eq!(status_line, "HTTP/1.1 200 OK", "{identity} is ready");
    }
    let writers = audit_writers(&ns.name);
    assert!(
        writers.get(&user(&first)).is_some_and(|&n| n >= 4),
        "the leader wrote the UserGroups, statuses and Events: {writers:?}"
    );
    assert_eq!(
        writers.get(&user(standby)),
        None,
        "the standby wrote nothing: {writers:?}"
    );

    // Stop the leader: the other replica gets the lease and answers the next run-now.
    for (identity, handle) in &mut replicas {
        if *identity == first {
            handle.take().expect("leader handle").abort();
        }
    }
    let leader_writes = audit_writers(&ns.name)[&user(&first)];
    run_now(&tasks, "after-failover").await;
    let task = wait_for_run(&tasks, Some("after-failover")).await;
    assert_eq!(
        condition(&task, "Ready"),
        Some(("True".into(), "Synced".into()))
    );
    let second = holder(&leases).await.expect("the lease has a holder");
    assert_eq!(second, standby, "the other replica took over");
    let writers = audit_writers(&ns.name);
    assert_eq!(
        writers[&user(&first)],
        leader_writes,
        "the old leader wrote nothing more"
    );
    assert!(writers.contains_key(&user(standby)), "{writers:?}");
    for (_, handle) in replicas {
        if let Some(handle) = handle {
            handle.abort();
        }
    }
}
