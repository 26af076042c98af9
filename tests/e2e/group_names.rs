//! `groupNames`: directory groups under names of the admin's choosing, by DN or by directory id;
//! chosen later for a group synced before, the group moves to its name and its members go along.

use std::collections::BTreeMap;

use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use usersync::api::UserGroup;

use crate::support::kube::{Scenario, create_task_on, run_now, user_groups};
use crate::support::ldap::Server;
use crate::support::operator::start_operator;
use crate::support::wait::{assert_synced, wait_for_run};

/// The UserGroups as `name → (display name, parent, member names)`.
fn tree(groups: &[UserGroup]) -> BTreeMap<String, (String, Option<String>, Vec<String>)> {
    groups
        .iter()
        .map(|g| {
            let members = g.spec.users.iter().map(|u| u.name.clone()).collect();
            (
                g.name_any(),
                (g.spec.display_name.clone(), g.spec.parent.clone(), members),
            )
        })
        .collect()
}

async fn chosen_names_by_dn_and_by_id(server: Server) {
    let Scenario {
        client, ns, base, ..
    } = Scenario::on(server, "e2e-group-names").await;
    let tasks = create_task_on(server, &client, &ns.name, &base).await;
    let operator = start_operator(&client, &ns.name);
    assert_synced(&wait_for_run(&tasks, None).await);
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);
    let before = tree(&user_groups(&groups).await);
    // Named after the directory, as a person guesses.
    assert_eq!(before["devs"].0, "Devs", "{before:#?}");
    assert_eq!(before["ops"].0, "Ops", "{before:#?}");
    let ops = groups.get("ops").await.expect("ops");
    let ops_id = ops.spec.source.as_ref().expect("source").id.clone();
    let devs_uid = groups.get("devs").await.expect("devs").uid();

    // Devs by its DN (written in another case), Ops by its id.
    let devs_dn = server.group_dn(&base, "Devs").to_uppercase();
    let patch = serde_json::json!({"spec": {"groupNames": [
        {"group": devs_dn, "name": "developers"},
        {"group": ops_id, "name": "operations"},
    ]}});
    tasks
        .patch("corp", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("groupNames");
    // The spec change starts a run; the run asked for here comes after it.
    run_now(&tasks, "chosen").await;
    assert_synced(&wait_for_run(&tasks, Some("chosen")).await);
    let after = tree(&user_groups(&groups).await);
    assert!(
        !after.contains_key("devs") && !after.contains_key("ops"),
        "{after:#?}"
    );
    assert_eq!(
        (after["developers"].0.as_str(), &after["developers"].2),
        ("Devs", &before["devs"].2)
    );
    assert_eq!(
        (after["operations"].0.as_str(), &after["operations"].2),
        ("Ops", &before["ops"].2)
    );
    assert_eq!(after["developers"].1, before["devs"].1, "same place");
    assert_ne!(
        groups.get("developers").await.expect("developers").uid(),
        devs_uid,
        "a new object under the new name"
    );

    // Nothing more to do: the chosen names stay.
    run_now(&tasks, "again").await;
    let task = wait_for_run(&tasks, Some("again")).await;
    let last_run = task.status.and_then(|s| s.last_run).expect("summary");
    assert_eq!(
        (last_run.created, last_run.updated, last_run.removed),
        (0, 0, 0)
    );
    operator.abort();
}

#[tokio::test]
async fn samba() {
    chosen_names_by_dn_and_by_id(Server::Samba).await;
}

#[tokio::test]
async fn openldap() {
    chosen_names_by_dn_and_by_id(Server::OpenLdap).await;
}
