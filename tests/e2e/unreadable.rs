//! An entry that cannot be used does not stall its task: on OpenLDAP a user that loses its login
//! name (renamed to `cn=bob`, its `uid` deleted) is counted, named on status and in a Warning Event,
//! and stays listed in its groups exactly as it was; once fixed, it is synced again.

use std::collections::HashSet;

use kube::api::Api;
use ldap3::Mod;
use usersync::api::{GroupUser, UserGroup};

use crate::support::kube::{Scenario, by_display, create_task_on, events, run_now, user_groups};
use crate::support::ldap::{Server, modify, rename};
use crate::support::operator::start_operator;
use crate::support::wait::{assert_synced, wait_for_run};

/// Bob as each of his groups lists him.
async fn bob_in(groups: &Api<UserGroup>) -> Vec<(String, GroupUser)> {
    let all = user_groups(groups).await;
    ["Devs", "Ops"]
        .iter()
        .filter_map(|name| {
            let group = by_display(&all, name);
            let bob = group.spec.users.iter().find(|u| u.name == "bob")?;
            Some(((*name).to_owned(), (**bob).clone()))
        })
        .collect()
}

#[tokio::test]
async fn a_user_whose_entry_became_unreadable_stays_listed_as_it_was() {
    let Scenario {
        client,
        ns,
        mut ldap,
        base,
    } = Scenario::on(Server::OpenLdap, "e2e-unreadable").await;
    let tasks = create_task_on(Server::OpenLdap, &client, &ns.name, &base).await;
    let operator = start_operator(&client, &ns.name);
    assert_synced(&wait_for_run(&tasks, None).await);
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);
    let before = bob_in(&groups).await;
    assert_eq!(before.len(), 2, "bob is in Devs and Ops: {before:?}");

    // Bob loses his login name: renamed with the old RDN's value deleted, he has no uid any more.
    let bob = Server::OpenLdap.user_dn(&base, "bob");
    rename(&mut ldap, &bob, "cn=bob", None).await;
    let renamed = format!("cn=bob,{base}");
    run_now(&tasks, "unreadable").await;
    let task = wait_for_run(&tasks, Some("unreadable")).await;
    assert_synced(&task);
    let status = task.status.expect("status");
    let last_run = status.last_run.expect("last run");
    assert_eq!(last_run.unreadable_entries, 1, "{last_run:?}");
    assert_eq!(last_run.removed, 0);
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .expect("Ready");
    assert!(
        ready.message.contains("1 directory entries cannot be used")
            && ready.message.contains(&renamed)
            && ready.message.contains("uid"),
        "{}",
        ready.message
    );
    assert_eq!(bob_in(&groups).await, before, "bob is listed as he was");
    let warned = events(&client, &ns.name).await.into_iter().any(|e| {
        e.reason.as_deref() == Some("UnreadableEntries")
            && e.type_.as_deref() == Some("Warning")
            && e.note.is_some_and(|n| n.contains(&renamed))
    });
    assert!(warned, "a Warning Event names the entry");

    // Fixed, the entry is read again: bob is listed under his new DN.
    let add_uid = vec![Mod::Add("uid", HashSet::from(["bob"]))];
    modify(&mut ldap, &renamed, add_uid).await;
    run_now(&tasks, "fixed").await;
    let task = wait_for_run(&tasks, Some("fixed")).await;
    assert_synced(&task);
    let last_run = task.status.and_then(|s| s.last_run).expect("last run");
    assert_eq!(last_run.unreadable_entries, 0);
    let after = bob_in(&groups).await;
    assert_eq!(after.len(), 2);
    assert!(
        after
            .iter()
            .all(|(_, u)| u.dn.eq_ignore_ascii_case(&renamed) && u.id == before[0].1.id),
        "{after:?}"
    );
    operator.abort();
}
