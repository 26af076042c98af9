//! Each run's Event says what that run did: runs with different outcomes get Events of their own
//! (the first run's note never stands for a later one), and runs with the same note add to one
//! Event's series.

use k8s_openapi::api::events::v1::Event;
use ldap3::Mod;

use crate::support::kube::{Scenario, create_task, events, run_now};
use crate::support::ldap::{Server, modify};
use crate::support::operator::start_operator;
use crate::support::wait::{assert_synced, wait_for_run};

async fn synced_events(client: &kube::Client, ns: &str) -> Vec<Event> {
    events(client, ns)
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("Synced"))
        .collect()
}

#[tokio::test]
async fn each_run_reports_what_it_did() {
    let Scenario {
        client,
        ns,
        mut ldap,
        base,
    } = Scenario::new("e2e-events").await;
    let tasks = create_task(&client, &ns.name, &base).await;
    let operator = start_operator(&client, &ns.name);
    assert_synced(&wait_for_run(&tasks, None).await);

    // A change: the second run updates an object, and says so in an Event of its own.
    let devs = Server::Samba.group_dn(&base, "Devs");
    let described = vec![Mod::Replace(
        "description",
        std::collections::HashSet::from(["x"]),
    )];
    modify(&mut ldap, &devs, described).await;
    run_now(&tasks, "changed").await;
    assert_synced(&wait_for_run(&tasks, Some("changed")).await);
    let notes: Vec<String> = synced_events(&client, &ns.name)
        .await
        .into_iter()
        .filter_map(|e| e.note)
        .collect();
    assert!(
        notes.iter().any(|n| n.contains("3 created, 0 updated"))
            && notes.iter().any(|n| n.contains("0 created, 1 updated")),
        "{notes:?}"
    );

    // Nothing changes twice: the same note, one Event with a series of two.
    for token in ["same-1", "same-2"] {
        run_now(&tasks, token).await;
        assert_synced(&wait_for_run(&tasks, Some(token)).await);
    }
    let unchanged: Vec<Event> = synced_events(&client, &ns.name)
        .await
        .into_iter()
        .filter(|e| {
            e.note
                .as_deref()
                .is_some_and(|n| n.contains("0 created, 0 updated"))
        })
        .collect();
    assert_eq!(unchanged.len(), 1, "{unchanged:?}");
    assert_eq!(unchanged[0].series.as_ref().map(|s| s.count), Some(2));
    assert_eq!(
        unchanged[0].reporting_controller.as_deref(),
        Some("usersync")
    );
    operator.abort();
}
