//! `--write-rate` paces UserGroup writes: a first run that writes W objects (one write each) at R
//! writes a second (bursts of R) cannot finish sooner than (W - R) / R seconds. Unpaced, the same run
//! takes a fraction of a second.

use std::num::NonZeroU32;
use std::time::Instant;

use kube::api::Api;
use usersync::api::UserGroup;

use crate::support::audit::audit_writes;
use crate::support::kube::{Scenario, create_task_on, user_groups};
use crate::support::ldap::Server;
use crate::support::operator::InProcess;
use crate::support::wait::{assert_synced, wait_for_run};

const RATE: u32 = 2;

#[tokio::test]
async fn writes_are_paced_at_the_configured_rate() {
    let Scenario {
        client,
        ns,
        base,
        mut ldap,
    } = Scenario::on(Server::OpenLdap, "e2e-rate").await;
    // Enough objects that pacing shows: the subtree's two groups, five more, their OU and the root.
    let alice = Server::OpenLdap.user_dn(&base, "alice");
    for team in ["Red", "Green", "Blue", "Gold", "Grey"] {
        Server::OpenLdap
            .add_group(&mut ldap, &base, team, &[&alice])
            .await;
    }
    let mut options = InProcess::watching(&ns.name);
    options.write_rate = NonZeroU32::new(RATE);
    let tasks = create_task_on(Server::OpenLdap, &client, &ns.name, &base).await;
    let started = Instant::now();
    let operator = options.start(&client);

    let task = wait_for_run(&tasks, None).await;
    let elapsed = started.elapsed().as_secs_f64();
    assert_synced(&task);
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);
    let objects = user_groups(&groups).await.len();
    let writes = audit_writes(&ns.name);
    // One write for each UserGroup.
    assert!(
        writes == objects && objects >= 8,
        "{writes} writes, {objects} objects"
    );
    let floor = (writes as f64 - f64::from(RATE)) / f64::from(RATE);
    assert!(
        elapsed >= floor,
        "{writes} writes at {RATE}/s took {elapsed:.2} s, less than {floor:.2} s"
    );
    operator.abort();
}
