//! A connection cut in the middle of a read, at a chosen byte of the server's answer (OpenLDAP and
//! Samba AD, through a proxy, the whole fixture so that the cut falls well inside the searches):
//! the run fails, updates and deletes nothing, and the next run after the connection recovers
//! converges.

use kube::api::{Api, Patch, PatchParams};
use usersync::api::UserGroup;

use crate::support::audit::audit_writes;
use crate::support::kube::{Scenario, allow_servers, create_task_on, run_now, user_groups};
use crate::support::ldap::{Server, delete};
use crate::support::operator::start_operator;
use crate::support::proxy;
use crate::support::wait::{assert_synced, condition, wait_for_run};

#[tokio::test]
async fn a_read_of_openldap_cut_midway_changes_nothing_and_the_next_run_converges() {
    cut_midway(Server::OpenLdap, "e2e-cut").await;
}

#[tokio::test]
async fn a_read_of_samba_cut_midway_changes_nothing_and_the_next_run_converges() {
    cut_midway(Server::Samba, "e2e-cut-ad").await;
}

async fn cut_midway(server: Server, prefix: &str) {
    let Scenario {
        client,
        ns,
        mut ldap,
        base,
    } = Scenario::on(server, prefix).await;
    let (cut, proxied) = proxy::in_front_of(&server.ldaps_url()).await;
    let tasks = create_task_on(server, &client, &ns.name, &server.base_dn()).await;
    allow_servers(&client, &ns.name, "bind", std::slice::from_ref(&proxied)).await;
    let through_proxy = serde_json::json!({"spec": {
        "server": {"urls": [proxied]},
        "incremental": {"mode": "Disabled"},
        "maxDeletions": "100%",
    }});
    tasks
        .patch(
            "corp",
            &PatchParams::default(),
            &Patch::Merge(&through_proxy),
        )
        .await
        .expect("through the proxy");
    let operator = start_operator(&client, &ns.name);
    assert_synced(&wait_for_run(&tasks, None).await);
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);
    let synced = user_groups(&groups).await;
    let full_read = cut.largest_connection_bytes();
    assert!(full_read > 0, "the read went through the proxy");

    // The directory loses Ops and bob: the next run would delete one object and update others.
    delete(&mut ldap, &server.group_dn(&base, "Ops")).await;
    delete(&mut ldap, &server.user_dn(&base, "bob")).await;
    cut.cut_after(full_read / 2);
    let writes_before = audit_writes(&ns.name);
    run_now(&tasks, "cut").await;
    let failed = wait_for_run(&tasks, Some("cut")).await;
    let ready = condition(&failed, "Ready").expect("Ready");
    assert_eq!(ready.0, "False", "{:?}", failed.status);
    assert_eq!(
        condition(&failed, "Stalled").map(|c| c.0),
        Some("False".into()),
        "a cut connection is transient: {:?}",
        failed.status
    );
    assert_eq!(
        audit_writes(&ns.name),
        writes_before,
        "the cut run wrote UserGroups"
    );
    assert_eq!(
        user_groups(&groups).await.len(),
        synced.len(),
        "nothing removed"
    );

    cut.cut_after(-1);
    run_now(&tasks, "healed").await;
    let task = wait_for_run(&tasks, Some("healed")).await;
    assert_synced(&task);
    // This test's own groups, among the fixture's and other tests' (which have a Devs and an Ops of
    // their own): Ops is gone, Devs lost bob.
    let now = user_groups(&groups).await;
    let ours = |name: &str| {
        now.iter()
            .filter(|g| g.spec.display_name == name)
            .find(|g| {
                g.spec
                    .source
                    .as_ref()
                    .is_some_and(|s| s.dn.to_lowercase().ends_with(&base.to_lowercase()))
            })
    };
    assert!(ours("Ops").is_none(), "Ops is gone");
    let devs = ours("Devs").expect("Devs stays");
    assert!(
        devs.spec.users.iter().all(|u| u.name != "bob"),
        "{:?}",
        devs.spec.users
    );
    assert!(synced.iter().any(|g| g.spec.display_name == "Ops"));
    operator.abort();
}
