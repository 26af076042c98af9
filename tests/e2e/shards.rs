//! A group too large for one object continues in shard objects labelled `usersync.io/shard-of`;
//! readers join them, and an unchanged directory still writes nothing. Reads the standard fixture's
//! 3100-member group from the real Samba AD DC.

use std::collections::BTreeMap;

use kube::ResourceExt;
use kube::api::{Api, PostParams};
use usersync::api::{UserGroup, UserSynchronization};
use usersync::planner::shard::DEFAULT_SHARD_BYTES;
use usersync_testbed::env;
use usersync_testbed::fixture::names;

use crate::support::audit::audit_writes;
use crate::support::cli::{cli_dry_run, samba_task_file};
use crate::support::kube::{
    base_and_shards, edit_by_hand, install_crds, joined_member_ids, kube_client, printed, run_now,
    secrets, user_groups,
};
use crate::support::namespace::TestNamespace;
use crate::support::operator::start_operator_with;
use crate::support::wait::{assert_synced, wait_for_run};

/// The task syncing the big group, as the cluster gets it (the CLI reads the same from a file).
fn all_staff_task() -> serde_json::Value {
    let corp = format!("OU=Corp,{}", env::samba().base_dn);
    serde_json::json!({
        "apiVersion": "usersync.io/v1alpha1", "kind": "UserSynchronization",
        "metadata": {"name": "corp"},
        "spec": {
            "targetGroup": "all-users",
            "server": {"urls": [env::samba().ldaps_url], "credentialsSecretRef": {"name": "bind"}, "tls": {"caSecretRef": {"name": "ca"}}},
            "directory": {"baseDN": corp, "groups": [format!("CN={},OU=Groups,{corp}", names::ALL_STAFF)]},
        },
    })
}

async fn create_all_staff_task(client: &kube::Client, ns: &str) -> Api<UserSynchronization> {
    secrets(client, ns, &env::samba().admin_password).await;
    let tasks: Api<UserSynchronization> = Api::namespaced(client.clone(), ns);
    let task: UserSynchronization = serde_json::from_value(all_staff_task()).expect("task");
    tasks
        .create(&PostParams::default(), &task)
        .await
        .expect("task created");
    tasks
}

#[tokio::test]
async fn a_big_group_is_split_into_shards_and_joined_back() {
    let client = kube_client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "e2e-shards").await;
    let tasks = create_all_staff_task(&client, &ns.name).await;
    // About 100 kB of members per object: the 3100 members need several.
    let operator = start_operator_with(&client, &ns.name, 100_000, None);

    let task = wait_for_run(&tasks, None).await;
    assert_synced(&task);
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);
    let all = user_groups(&groups).await;
    let (base, shards) = base_and_shards(&all, names::ALL_STAFF);
    assert!(shards.len() >= 3, "{} shards", shards.len());
    for object in std::iter::once(base).chain(shards.iter().copied()) {
        assert!(
            serde_json::to_vec(object).expect("serializes").len() < 200_000,
            "each object stays small"
        );
    }
    let ids = joined_member_ids(base, &shards);
    assert_eq!(
        ids.len(),
        3100,
        "the joined member list is complete, without duplicates"
    );
    assert_eq!(base.status.as_ref().map(|s| s.user_count), Some(3100));
    // `kubectl get ug` tells the shards from the groups.
    let path = format!(
        "/apis/usersync.io/v1alpha1/namespaces/{}/usergroups",
        ns.name
    );
    for row in printed(&client, &path).await {
        let name = row["Name"].as_str().unwrap_or_default();
        let shard_of = row["Shard Of"].as_str().unwrap_or_default();
        let is_shard = shards.iter().any(|s| s.name_any() == name);
        let expected = if is_shard {
            base.name_any()
        } else {
            String::new()
        };
        assert_eq!(shard_of, expected, "{row:?}");
    }
    let per_object: BTreeMap<String, usize> = shards
        .iter()
        .map(|s| (s.name_any(), s.spec.users.len()))
        .collect();
    assert!(per_object.values().all(|&n| n > 0), "{per_object:?}");

    let writes = audit_writes(&ns.name);
    run_now(&tasks, "again").await;
    wait_for_run(&tasks, Some("again")).await;
    assert_eq!(
        audit_writes(&ns.name),
        writes,
        "joined shards compare equal: no writes"
    );
    operator.abort();
}

/// `usersync sync --dry-run` lists metadata only and rebuilds a sharded group from what the run
/// would write when the base object and every shard carry matching digests; a shard edited by
/// someone else makes it download the group and plan to put it back.
#[tokio::test]
async fn a_preview_rebuilds_a_sharded_group_from_its_digests() {
    let client = kube_client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "e2e-shards-preview").await;
    let tasks = create_all_staff_task(&client, &ns.name).await;
    // The shard size the CLI uses: the 3100 members still need more than one object.
    let operator = start_operator_with(&client, &ns.name, DEFAULT_SHARD_BYTES, None);
    assert_synced(&wait_for_run(&tasks, None).await);
    operator.abort();
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);
    let all = user_groups(&groups).await;
    let (_, shards) = base_and_shards(&all, names::ALL_STAFF);
    assert!(!shards.is_empty(), "the big group has shards");

    let file = samba_task_file(&ns.name, all_staff_task());
    let dry_run = || cli_dry_run(&file);
    let after_sync = dry_run();
    assert!(after_sync.contains("(0 downloaded)"), "{after_sync}");
    assert!(
        after_sync.contains("create 0, update 0, remove 0"),
        "{after_sync}"
    );

    // One member taken out of a shard by another field manager.
    let shard = shards[0];
    let fewer = &shard.spec.users[1..];
    edit_by_hand(
        &groups,
        &shard.name_any(),
        serde_json::json!({ "users": fewer }),
    )
    .await;
    let edited = dry_run();
    assert!(!edited.contains("(0 downloaded)"), "{edited}");
    assert!(edited.contains("create 0, update 1, remove 0"), "{edited}");
}
