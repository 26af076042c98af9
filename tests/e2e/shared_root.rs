//! `targetGroup` names the root exactly, and tasks share roots: a Samba task creates `all-users`,
//! an OpenLDAP task hangs its own group below it, a third task hangs below a root made by hand,
//! which nothing writes. Groups carry their directory names, suffixed only where another task
//! holds the name. Deleting the task that made the shared root removes only its own objects; the
//! root goes with the last task that uses it.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use usersync::api::{UserGroup, UserGroupSpec, UserSynchronization};

use crate::support::audit::audit_write_lines;
use crate::support::kube::{Scenario, names_of_task, prefixed_secrets_for, user_groups};
use crate::support::ldap::{Server, subtree_on};
use crate::support::operator::{start_operator, take_turn};
use crate::support::wait::eventually;

/// A task syncing `base` of `server` below `target`, with the Secrets `<secrets>-bind`/`-ca`.
fn task(
    name: &str,
    server: Server,
    base: &str,
    target: &str,
    secrets: &str,
) -> UserSynchronization {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "usersync.io/v1alpha1", "kind": "UserSynchronization",
        "metadata": {"name": name},
        "spec": {
            "targetGroup": target,
            "server": {
                "type": if server == Server::Samba { "ActiveDirectory" } else { "LDAP" },
                "urls": [server.ldaps_url()],
                "credentialsSecretRef": {"name": format!("{secrets}-bind")},
                "tls": {"caSecretRef": {"name": format!("{secrets}-ca")}},
            },
            "directory": {"baseDN": base},
        },
    }))
    .expect("task")
}

async fn wait_synced(tasks: &Api<UserSynchronization>, name: &str) {
    eventually(Duration::from_secs(90), "the task synced", || async {
        let task = tasks.get(name).await.expect("task");
        task.status.is_some_and(|s| s.last_sync_time.is_some())
    })
    .await;
}

/// The UserGroups as `name → (display name, parent)`.
fn tree(groups: &[UserGroup]) -> BTreeMap<String, (String, Option<String>)> {
    groups
        .iter()
        .map(|g| {
            (
                g.name_any(),
                (g.spec.display_name.clone(), g.spec.parent.clone()),
            )
        })
        .collect()
}

#[tokio::test]
async fn two_directories_share_one_root_and_are_deleted_independently() {
    let _turn = take_turn().await;
    let Scenario {
        client, ns, base, ..
    } = Scenario::on(Server::Samba, "e2e-shared-root").await;
    let mut openldap = Server::OpenLdap.admin().await;
    let ldap_base = subtree_on(Server::OpenLdap, &mut openldap, &ns.name).await;
    prefixed_secrets_for(Server::Samba, &client, &ns.name, "samba").await;
    prefixed_secrets_for(Server::OpenLdap, &client, &ns.name, "ldap").await;
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);
    // A root made by hand (or by GitOps), before any task.
    let hand_made = groups
        .create(
            &PostParams::default(),
            &UserGroup::new(
                "staff",
                UserGroupSpec {
                    display_name: "Staff".into(),
                    ..Default::default()
                },
            ),
        )
        .await
        .expect("hand-made root");
    let hand_made_writes = audit_write_lines(&ns.name, 0).len();

    let tasks: Api<UserSynchronization> = Api::namespaced(client.clone(), &ns.name);
    let operator = start_operator(&client, &ns.name);
    let create = |t: UserSynchronization| {
        let tasks = tasks.clone();
        async move {
            tasks
                .create(&PostParams::default(), &t)
                .await
                .expect("task")
        }
    };
    create(task("corp", Server::Samba, &base, "all-users", "samba")).await;
    wait_synced(&tasks, "corp").await;
    // One after the other: two tasks that plan the same new name at once both want it, and the
    // one whose create comes second fails that run with a conflict (and is named on the next).
    create(task(
        "partner",
        Server::OpenLdap,
        &ldap_base,
        "all-users",
        "ldap",
    ))
    .await;
    wait_synced(&tasks, "partner").await;
    create(task(
        "people",
        Server::OpenLdap,
        &ldap_base,
        "staff",
        "ldap",
    ))
    .await;
    wait_synced(&tasks, "people").await;

    let all = user_groups(&groups).await;
    let tree = tree(&all);
    let row = |display: &str, parent: &str| (display.to_owned(), Some(parent.to_owned()));
    // The first task made the root and named its groups after the directory alone.
    assert_eq!(tree["all-users"], ("all-users".to_owned(), None));
    assert_eq!(tree["devs"], row("Devs", "all-users"), "{tree:#?}");
    assert_eq!(tree["ops"], row("Ops", "all-users"));
    // The others hang a group of their own below the root they found.
    assert_eq!(tree["partner"], row("partner", "all-users"));
    assert_eq!(tree["people"], row("people", "staff"));
    let suffixed: Vec<(&String, &(String, Option<String>))> = tree
        .iter()
        .filter(|(name, (display, _))| display == "Devs" && *name != "devs")
        .collect();
    assert_eq!(suffixed.len(), 2, "{tree:#?}");
    for (name, (_, parent)) in suffixed {
        assert!(name.starts_with("devs-"), "{name}");
        assert!(matches!(parent.as_deref(), Some("partner" | "people")));
    }
    // The hand-made root was never written; the shared one carries both tasks' references.
    let staff = groups.get("staff").await.expect("staff");
    assert_eq!(staff.resource_version(), hand_made.resource_version());
    assert!(
        audit_write_lines(&ns.name, 0)
            .iter()
            .skip(hand_made_writes)
            .all(|w| !w.contains(" staff ")),
        "a write to the hand-made root"
    );
    let root = groups.get("all-users").await.expect("root");
    let owners: Vec<String> = root
        .owner_references()
        .iter()
        .map(|o| o.name.clone())
        .collect();
    assert_eq!(owners, ["corp", "partner"]);
    let managers: Vec<&str> = root
        .managed_fields()
        .iter()
        .filter_map(|m| m.manager.as_deref())
        .collect();
    assert!(
        managers.contains(&usersync::api::SHARED_ROOT_MANAGER),
        "the reference is kept apart from the maker's fields: {managers:?}"
    );

    // The first task goes: its objects go, the root its neighbour uses stays, and so does all of
    // the neighbour's tree.
    let partner_names = names_of_task(&client, &ns.name, "partner").await;
    let corp_names = names_of_task(&client, &ns.name, "corp").await;
    tasks
        .delete("corp", &DeleteParams::background())
        .await
        .expect("delete corp");
    eventually(
        Duration::from_secs(60),
        "corp's objects are gone",
        || async {
            let left: Vec<String> = user_groups(&groups)
                .await
                .iter()
                .map(|g| g.name_any())
                .collect();
            corp_names
                .iter()
                .filter(|n| *n != "all-users")
                .all(|n| !left.contains(n))
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let left: Vec<String> = user_groups(&groups)
        .await
        .iter()
        .map(|g| g.name_any())
        .collect();
    assert!(left.contains(&"all-users".to_owned()), "{left:?}");
    assert!(partner_names.iter().all(|n| left.contains(n)), "{left:?}");

    // The last task that uses it goes: the root goes too; the hand-made root stays.
    tasks
        .delete("partner", &DeleteParams::background())
        .await
        .expect("delete partner");
    eventually(
        Duration::from_secs(60),
        "the shared root is gone",
        || async { groups.get_opt("all-users").await.expect("get").is_none() },
    )
    .await;
    assert!(groups.get_opt("staff").await.expect("get").is_some());
    operator.abort();
}
