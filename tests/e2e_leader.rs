//! Two replicas with leader election on a real Lease: one runs the task, and when it goes away the
//! other takes over.

mod support;

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use support::e2e::{
    Scenario, condition, create_task, operator_options, run_now, start_operator_options,
    wait_for_run,
};
use usersync::controller::leader::LeaderElection;

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
async fn one_replica_leads_and_the_other_takes_over() {
    let Scenario {
        client,
        ns,
        ldap: _,
        base,
    } = Scenario::new("e2e-leader").await;
    let tasks = create_task(&client, &ns.name, &base).await;

    let replica = |identity: &str| {
        let mut options = operator_options(&ns.name);
        options.leader_election = Some(LeaderElection {
            namespace: ns.name.clone(),
            lease_name: "usersync-leader".into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(4),
        });
        start_operator_options(&client, options)
    };
    let mut a = Some(replica("replica-a"));
    let mut b = Some(replica("replica-b"));
    let task = wait_for_run(&tasks, None).await;
    assert_eq!(
        condition(&task, "Ready"),
        Some(("True".into(), "Synced".into()))
    );

    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns.name);
    let first = holder(&leases).await.expect("the lease has a holder");
    // Stop the leader: the other replica gets the lease and answers the next run-now.
    let leader = if first == "replica-a" { &mut a } else { &mut b };
    leader.take().expect("leader handle").abort();
    run_now(&tasks, "after-failover").await;
    let task = wait_for_run(&tasks, Some("after-failover")).await;
    assert_eq!(
        condition(&task, "Ready"),
        Some(("True".into(), "Synced".into()))
    );
    let second = holder(&leases).await.expect("the lease has a holder");
    assert_ne!(first, second, "the other replica took over");
    for handle in [a, b].into_iter().flatten() {
        handle.abort();
    }
}
