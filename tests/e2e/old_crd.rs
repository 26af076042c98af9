//! A cluster whose UserGroup CRD is still an earlier version's, with a status subresource (the
//! operator upgraded before its CRDs, as `helm upgrade` does: Helm never upgrades CRDs). There the
//! apiserver drops a status sent with the object, so the count goes through the subresource: the
//! counts are right in `kubectl get ug`, a run that changes nothing writes nothing, and a changed
//! group gets its count with its members. A control plane of its own holds that CRD.

use std::collections::HashSet;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceSubresourceStatus, CustomResourceSubresources,
};
use kube::ResourceExt;
use kube::api::Api;
use ldap3::Mod;
use usersync::api::UserGroup;

use crate::support::control_plane::OwnControlPlane;
use crate::support::kube::{
    by_display, create_task_on, install_crds_with, printed, run_now, secrets_for, user_groups,
};
use crate::support::ldap::{Server, modify, subtree_on};
use crate::support::namespace::TestNamespace;
use crate::support::operator::start_operator;
use crate::support::wait::{assert_synced, wait_for_run};

const SERVER: Server = Server::OpenLdap;

/// The UserGroup CRD as versions before the count moved into the object had it.
fn with_status_subresource(crd: &mut CustomResourceDefinition) {
    if crd.spec.names.kind != "UserGroup" {
        return;
    }
    for version in &mut crd.spec.versions {
        version.subresources = Some(CustomResourceSubresources {
            status: Some(CustomResourceSubresourceStatus(serde_json::json!({}))),
            scale: None,
        });
    }
}

#[tokio::test]
async fn counts_go_through_the_status_subresource_of_an_earlier_crd() {
    let (plane, client) = OwnControlPlane::start("old-crd").await;
    install_crds_with(&client, with_status_subresource).await;
    let ns = TestNamespace::new(&client, "e2e-old-crd").await;
    let mut ldap = SERVER.admin().await;
    let base = subtree_on(SERVER, &mut ldap, &ns.name).await;
    secrets_for(SERVER, &client, &ns.name, &SERVER.credentials().1).await;
    let tasks = create_task_on(SERVER, &client, &ns.name, &base).await;
    let operator = start_operator(&client, &ns.name);
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);

    assert_synced(&wait_for_run(&tasks, None).await);
    let synced = user_groups(&groups).await;
    assert_eq!(synced.len(), 3, "target group, Devs and Ops");
    for group in &synced {
        assert_eq!(
            group.status.as_ref().map(|s| s.user_count),
            Some(group.spec.users.len() as i64),
            "{}",
            group.spec.display_name
        );
    }
    assert_eq!(
        by_display(&synced, "Devs")
            .status
            .as_ref()
            .map(|s| s.user_count),
        Some(2)
    );
    let path = format!(
        "/apis/usersync.io/v1alpha1/namespaces/{}/usergroups",
        ns.name
    );
    let rows = printed(&client, &path).await;
    let counts: Vec<(String, i64)> = rows
        .iter()
        .map(|row| {
            let name = row["Display Name"].as_str().unwrap_or_default().to_owned();
            (name, row["Users"].as_i64().unwrap_or(-1))
        })
        .collect();
    for (name, count) in &counts {
        let group = by_display(&synced, name);
        assert_eq!(
            *count,
            group.spec.users.len() as i64,
            "kubectl get ug: {counts:?}"
        );
    }
    let first = plane.write_lines(&ns.name);
    let status = |line: &String| line.split(' ').nth(2) == Some("status");
    let status_writes = first.iter().filter(|l| status(l)).count();
    assert_eq!(
        status_writes,
        synced.len(),
        "one count write per object: {first:?}"
    );

    // Nothing changed: nothing is written, the counts neither.
    run_now(&tasks, "1").await;
    assert_synced(&wait_for_run(&tasks, Some("1")).await);
    assert_eq!(
        plane.write_lines(&ns.name),
        first,
        "a no-op run writes nothing"
    );

    // Bob leaves Devs: Devs is written, and its count with it.
    let bob = SERVER.user_dn(&base, "bob");
    let devs_dn = SERVER.group_dn(&base, "Devs");
    let member = Mod::Delete("member", HashSet::from([bob.as_str()]));
    modify(&mut ldap, &devs_dn, vec![member]).await;
    run_now(&tasks, "2").await;
    assert_synced(&wait_for_run(&tasks, Some("2")).await);
    let synced = user_groups(&groups).await;
    let devs = by_display(&synced, "Devs");
    assert_eq!(devs.spec.users.len(), 1);
    assert_eq!(devs.status.as_ref().map(|s| s.user_count), Some(1));
    let written = plane.write_lines(&ns.name)[first.len()..].to_vec();
    assert!(
        written
            .iter()
            .all(|l| l.split(' ').nth(1) == Some(devs.name_any().as_str())),
        "only Devs is written: {written:?}"
    );
    assert!(written.iter().any(status), "its count too: {written:?}");
    operator.abort();
}
