//! A group too large for one object continues in shard objects labelled `usersync.io/shard-of`;
//! readers join them, and an unchanged directory still writes nothing. Reads the standard fixture's
//! 3100-member group from the real Samba AD DC.

mod support;

use std::collections::BTreeMap;

use kube::ResourceExt;
use kube::api::{Api, PostParams};
use support::e2e::{
    assert_synced, audit_writes, base_and_shards, joined_member_ids, run_now, secrets,
    start_operator_with, user_groups, wait_for_run,
};
use support::{TestNamespace, install_crds, kube_client};
use usersync::api::{UserGroup, UserSynchronization};
use usersync_testbed::env;
use usersync_testbed::fixture::names;

#[tokio::test]
async fn a_big_group_is_split_into_shards_and_joined_back() {
    let client = kube_client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "e2e-shards").await;
    secrets(&client, &ns.name, &env::samba().admin_password).await;
    let corp = format!("OU=Corp,{}", env::samba().base_dn);
    let tasks: Api<UserSynchronization> = Api::namespaced(client.clone(), &ns.name);
    let task: UserSynchronization = serde_json::from_value(serde_json::json!({
        "apiVersion": "usersync.io/v1alpha1", "kind": "UserSynchronization",
        "metadata": {"name": "corp"},
        "spec": {
            "targetGroup": "all-users",
            "server": {"urls": [env::samba().ldaps_url], "credentialsSecretRef": {"name": "bind"}, "tls": {"caSecretRef": {"name": "ca"}}},
            "directory": {"baseDN": corp, "groups": [format!("CN={},OU=Groups,{corp}", names::ALL_STAFF)]},
        },
    }))
    .expect("task");
    tasks
        .create(&PostParams::default(), &task)
        .await
        .expect("task created");
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
