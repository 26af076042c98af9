//! Extra user fields (`directory.userAttributes`): the console's user record (department, title,
//! office, employee id, manager) on each listed user, kept current by incremental runs.

use std::collections::{BTreeMap, HashSet};

use kube::api::{Api, Patch, PatchParams};
use ldap3::Mod;
use usersync::api::UserGroup;

use crate::support::kube::{Scenario, by_display, create_task_on, run_now, user_groups};
use crate::support::ldap::{Server, modify};
use crate::support::operator::start_operator;
use crate::support::wait::{assert_synced, wait_for_run};

/// The task's field names and, on `server`, the attributes they come from.
fn mapping(server: Server) -> BTreeMap<&'static str, &'static str> {
    let (department, office, employee_id) = match server {
        Server::Samba => ("department", "physicalDeliveryOfficeName", "employeeID"),
        Server::OpenLdap => ("departmentNumber", "roomNumber", "employeeNumber"),
    };
    BTreeMap::from([
        ("department", department),
        ("title", "title"),
        ("office", office),
        ("employeeId", employee_id),
        ("manager", "manager"),
    ])
}

async fn extra_fields_follow_the_directory(server: Server) {
    let Scenario {
        client,
        ns,
        mut ldap,
        base,
    } = Scenario::on(server, "e2e-user-fields").await;
    let alice = server.user_dn(&base, "alice");
    let bob = server.user_dn(&base, "bob");
    let fields = mapping(server);
    let set = |attribute: &'static str, value: &str| {
        Mod::Replace(attribute.to_owned(), HashSet::from([value.to_owned()]))
    };
    let mods = vec![
        set(fields["department"], "Engineering"),
        set("title", "Lead Engineer"),
        set(fields["office"], "Bratislava, 4th floor"),
        set(fields["employeeId"], "E-1001"),
        set("manager", &bob),
    ];
    modify(&mut ldap, &alice, mods).await;

    let tasks = create_task_on(server, &client, &ns.name, &base).await;
    let listed: Vec<serde_json::Value> = fields
        .iter()
        .map(|(field, attribute)| serde_json::json!({"field": field, "attribute": attribute}))
        .collect();
    let patch = serde_json::json!({"spec": {"directory": {"userAttributes": listed}}});
    tasks
        .patch("corp", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("userAttributes");
    let operator = start_operator(&client, &ns.name);
    assert_synced(&wait_for_run(&tasks, None).await);
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);
    let user = |groups: &[UserGroup], name: &str| {
        let devs = by_display(groups, "Devs");
        let found = devs
            .spec
            .users
            .iter()
            .find(|u| u.display_name.as_deref() == Some(name));
        found
            .map(|u| u.attributes.clone())
            .expect("listed by display name")
    };
    let synced = user_groups(&groups).await;
    let expected = BTreeMap::from([
        ("department".to_owned(), "Engineering".to_owned()),
        ("title".to_owned(), "Lead Engineer".to_owned()),
        ("office".to_owned(), "Bratislava, 4th floor".to_owned()),
        ("employeeId".to_owned(), "E-1001".to_owned()),
        ("manager".to_owned(), bob.clone()),
    ]);
    let mut got = user(&synced, "alice");
    // The directory may spell the manager's DN in its own case.
    got.entry("manager".into())
        .and_modify(|m| *m = m.to_lowercase());
    let mut want = expected.clone();
    want.entry("manager".into())
        .and_modify(|m| *m = m.to_lowercase());
    assert_eq!(got, want);
    assert!(user(&synced, "bob").is_empty(), "bob has none of them");

    // A changed title reaches the UserGroups on the next (incremental) run.
    modify(&mut ldap, &alice, vec![set("title", "Principal Engineer")]).await;
    run_now(&tasks, "title").await;
    let task = wait_for_run(&tasks, Some("title")).await;
    assert_synced(&task);
    let read = task.status.and_then(|s| s.last_run).expect("summary");
    assert_eq!(read.directory_read, "Incremental");
    let synced = user_groups(&groups).await;
    assert_eq!(user(&synced, "alice")["title"], "Principal Engineer");
    operator.abort();
}

#[tokio::test]
async fn samba() {
    extra_fields_follow_the_directory(Server::Samba).await
}

#[tokio::test]
async fn openldap() {
    extra_fields_follow_the_directory(Server::OpenLdap).await
}
