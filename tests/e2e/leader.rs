//! Two replicas with leader election on a real Lease, each with a ServiceAccount of its own so the
//! apiserver's audit log tells their writes apart: only the leader ever writes, both are ready, and
//! when the leader goes away the other takes over. A leader paused past its lease writes nothing
//! once the other has begun.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams};
use usersync::api::UserGroup;
use usersync::controller::leader::LeaderElection;

use crate::support::audit::{audit_write_times, audit_writers};
use crate::support::kube::{
    Scenario, create_task, replica_account, run_now, service_account_client,
    service_account_kubeconfig, user_groups,
};
use crate::support::operator::{InProcess, http_get, spawn_replica, take_turn};
use crate::support::wait::{assert_synced, condition, eventually, wait_for_run};

/// The replica that is not `first`.
fn other_replica(first: &str) -> &'static str {
    if first == "replica-a" {
        "replica-b"
    } else {
        "replica-a"
    }
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt("usersync-leader")
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
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
        replica_account(&client, &ns.name, identity).await;
        let replica_client = service_account_client(&client, &ns.name, identity).await;
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
    let standby = other_replica(&first);
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

/// Sends `signal` (STOP, CONT) to a process.
fn signal(process: &tokio::process::Child, signal: &str) {
    let pid = process.id().expect("running").to_string();
    crate::support::command::run_ok(
        std::process::Command::new("kill").args([format!("-{signal}"), pid]),
    );
}

/// A leader paused (SIGSTOP) in the middle of a run for longer than its lease, then resumed: the
/// standby took over meanwhile, and the old leader writes nothing after the new leader's first write
/// (by the audit log), because each write first asks the fence its lease renewals keep open. The
/// margin between its last write and the new leader's first is measured.
#[tokio::test]
async fn a_leader_paused_past_its_lease_writes_nothing_after_the_new_leader_starts() {
    let _turn = take_turn().await;
    let Scenario {
        client, ns, base, ..
    } = Scenario::new("e2e-paused").await;
    let tasks = create_task(&client, &ns.name, &base).await;
    let user = |identity: &str| format!("system:serviceaccount:{}:{identity}", ns.name);
    let mut replicas = std::collections::BTreeMap::new();
    for identity in ["replica-a", "replica-b"] {
        replica_account(&client, &ns.name, identity).await;
        let kubeconfig = service_account_kubeconfig(&client, &ns.name, identity).await;
        let listen = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .to_string();
        let args = [
            "--leader-election-namespace",
            &ns.name,
            "--lease-duration-seconds",
            "4",
            "--write-rate",
            "2",
            "--listen",
            &listen,
        ];
        let kubeconfig = kubeconfig.to_str().expect("path");
        let envs = [("POD_NAME", identity), ("KUBECONFIG", kubeconfig)];
        replicas.insert(
            identity,
            spawn_replica(&ns.name, identity, &args, "info", &envs),
        );
    }
    assert_synced(&wait_for_run(&tasks, None).await);
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns.name);
    let first = holder(&leases).await.expect("the lease has a holder");
    let standby = other_replica(&first);

    // The leader restores deleted objects one write a second; it is paused after the first.
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);
    let names: Vec<String> = user_groups(&groups)
        .await
        .iter()
        .map(|g| g.name_any())
        .collect();
    for name in &names {
        groups
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete");
    }
    eventually(
        Duration::from_secs(30),
        "the leader's first restore",
        || async { !user_groups(&groups).await.is_empty() },
    )
    .await;
    signal(&replicas[first.as_str()].0, "STOP");

    eventually(
        Duration::from_secs(30),
        "the standby takes the lease",
        || async { holder(&leases).await.as_deref() == Some(standby) },
    )
    .await;
    run_now(&tasks, "new-leader").await;
    assert_synced(&wait_for_run(&tasks, Some("new-leader")).await);
    signal(&replicas[first.as_str()].0, "CONT");
    // Resumed, the old leader finds its lease gone and stops; nothing it had in flight is written.
    let (old, log) = replicas.get_mut(first.as_str()).expect("old leader");
    let exited = tokio::time::timeout(Duration::from_secs(30), old.wait()).await;
    let log = std::fs::read_to_string(log).unwrap_or_default();
    let status = exited.unwrap_or_else(|_| panic!("the old leader stopped: {log}"));
    // With an error, so that its pod shows one and restarts.
    assert_eq!(status.ok().and_then(|s| s.code()), Some(1), "{log}");
    assert_eq!(user_groups(&groups).await.len(), names.len());

    let writes = audit_write_times(&ns.name);
    let last_old = writes
        .iter()
        .filter(|(u, _)| *u == user(&first))
        .map(|(_, t)| *t)
        .max();
    let first_new = writes
        .iter()
        .filter(|(u, _)| *u == user(standby))
        .map(|(_, t)| *t)
        .min();
    let (Some(last_old), Some(first_new)) = (last_old, first_new) else {
        panic!("both replicas wrote: {writes:?}");
    };
    let margin = first_new.duration_since(last_old);
    println!(
        "margin between the paused leader's last write and the new leader's first: {margin:#}"
    );
    assert!(
        last_old < first_new,
        "the old leader wrote {margin:#} after the new leader's first write"
    );
    assert!(
        log.contains("LeaseNotCurrent") && log.contains("lost the leader lease"),
        "the old leader's fence refused a write, and it stopped: {log}"
    );
}
