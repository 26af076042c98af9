//! End to end with OpenLDAP (StartTLS with the CA from a ConfigMap, entryUUID identities, groupOfNames):
//! the operator syncs a subtree of its own into UserGroups and follows changes.

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use ldap3::Mod;
use usersync::api::{UserGroup, UserSynchronization};
use usersync_testbed::env;

use crate::support::kube::{
    Scenario, by_display, install_crds, kube_client, run_now, testbed_servers, user_groups,
};
use crate::support::ldap::{Server, ldap_connect};
use crate::support::namespace::TestNamespace;
use crate::support::operator::start_operator;
use crate::support::wait::{assert_synced, wait_for_run};

#[tokio::test]
async fn openldap_subtree_syncs_and_follows_membership_changes() {
    let slapd = env::slapd();
    let client = kube_client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "e2e-ldap").await;

    let mut ldap = ldap_connect(&slapd.url, &slapd.ca_file, true).await;
    ldap.simple_bind(&slapd.admin_dn, &slapd.admin_password)
        .await
        .and_then(|r| r.success())
        .expect("bind");
    let base = format!("ou={},{}", ns.name, slapd.base_dn);
    let add = |dn: String, attrs: Vec<(&'static str, Vec<String>)>| (dn, attrs);
    let entries = vec![
        add(
            base.clone(),
            vec![
                ("objectClass", vec!["organizationalUnit".into()]),
                ("ou", vec![ns.name.clone()]),
            ],
        ),
        add(
            format!("uid=zofia,{base}"),
            vec![
                ("objectClass", vec!["inetOrgPerson".into()]),
                ("uid", vec!["zofia".into()]),
                ("cn", vec!["Žofia Kováčová".into()]),
                ("sn", vec!["Kováčová".into()]),
                ("displayName", vec!["Žofia Kováčová".into()]),
            ],
        ),
        add(
            format!("uid=jan,{base}"),
            vec![
                ("objectClass", vec!["inetOrgPerson".into()]),
                ("uid", vec!["jan".into()]),
                ("cn", vec!["Jan".into()]),
                ("sn", vec!["Novák".into()]),
            ],
        ),
        add(
            format!("cn=Účtovníctvo,{base}"),
            vec![
                ("objectClass", vec!["groupOfNames".into()]),
                ("member", vec![format!("uid=zofia,{base}")]),
            ],
        ),
    ];
    for (dn, attrs) in entries {
        let attrs: Vec<(&str, HashSet<&str>)> = attrs
            .iter()
            .map(|(k, v)| (*k, v.iter().map(String::as_str).collect()))
            .collect();
        ldap.add(&dn, attrs)
            .await
            .and_then(|r| r.success())
            .unwrap_or_else(|e| panic!("add {dn}: {e}"));
    }

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let data = BTreeMap::from([
        ("username".to_owned(), slapd.admin_dn.clone()),
        ("password".to_owned(), slapd.admin_password.clone()),
    ]);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("ldap".into()),
            annotations: Some(BTreeMap::from([(
                "usersync.io/allowed-servers".to_owned(),
                testbed_servers().join(","),
            )])),
            ..Default::default()
        },
        string_data: Some(data),
        ..Default::default()
    };
    secrets
        .patch(
            "ldap",
            &PatchParams::apply("tests").force(),
            &Patch::Apply(&secret),
        )
        .await
        .expect("secret");
    // The CA comes from a ConfigMap here (the Samba tests use a Secret).
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns.name);
    let ca = ConfigMap {
        metadata: ObjectMeta {
            name: Some("ldap-ca".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "bundle.pem".to_owned(),
            std::fs::read_to_string(&slapd.ca_file).expect("CA"),
        )])),
        ..Default::default()
    };
    maps.create(&PostParams::default(), &ca)
        .await
        .expect("CA ConfigMap");
    let tasks: Api<UserSynchronization> = Api::namespaced(client.clone(), &ns.name);
    let task: UserSynchronization = serde_json::from_value(serde_json::json!({
        "apiVersion": "usersync.io/v1alpha1", "kind": "UserSynchronization",
        "metadata": {"name": "corp"},
        "spec": {
            "targetGroup": "people",
            "server": {
                "type": "LDAP",
                "urls": [slapd.url],
                "credentialsSecretRef": {"name": "ldap"},
                "tls": {"mode": "StartTLS", "caConfigMapRef": {"name": "ldap-ca", "key": "bundle.pem"}},
            },
            "directory": {"preset": "OpenLDAP", "baseDN": base},
        },
    }))
    .expect("task");
    tasks
        .create(&PostParams::default(), &task)
        .await
        .expect("task created");
    let operator = start_operator(&client, &ns.name);

    let task = wait_for_run(&tasks, None).await;
    assert_synced(&task);
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);
    let synced = user_groups(&groups).await;
    let accounting = by_display(&synced, "Účtovníctvo");
    assert_eq!(accounting.spec.users.len(), 1);
    assert_eq!(
        accounting.spec.users[0].display_name.as_deref(),
        Some("Žofia Kováčová")
    );
    assert_eq!(accounting.spec.users[0].id.len(), 36, "entryUUID identity");
    let people = by_display(&synced, "people");
    assert_eq!(
        people
            .spec
            .users
            .iter()
            .map(|u| u.name.as_str())
            .collect::<Vec<_>>(),
        ["jan"],
        "jan is in no group"
    );

    ldap.modify(
        &format!("cn=Účtovníctvo,{base}"),
        vec![Mod::Add(
            "member",
            HashSet::from([format!("uid=jan,{base}").as_str()]),
        )],
    )
    .await
    .and_then(|r| r.success())
    .expect("add jan");
    run_now(&tasks, "member-added").await;
    wait_for_run(&tasks, Some("member-added")).await;
    let synced = user_groups(&groups).await;
    let names: Vec<&str> = by_display(&synced, "Účtovníctvo")
        .spec
        .users
        .iter()
        .map(|u| u.name.as_str())
        .collect();
    assert_eq!(names, ["jan", "zofia"]);
    assert!(by_display(&synced, "people").spec.users.is_empty());
    operator.abort();
}

/// "Use LDAP instead of Active Directory": `server.type: LDAP` alone reads OpenLDAP with its preset.
#[tokio::test]
async fn the_ldap_server_type_alone_reads_openldap() {
    let Scenario {
        client, ns, base, ..
    } = Scenario::on(Server::OpenLdap, "e2e-ldap-type").await;
    let tasks: Api<UserSynchronization> = Api::namespaced(client.clone(), &ns.name);
    let task: UserSynchronization = serde_json::from_value(serde_json::json!({
        "apiVersion": "usersync.io/v1alpha1", "kind": "UserSynchronization",
        "metadata": {"name": "corp"},
        "spec": {
            "targetGroup": "all-users",
            "server": {"type": "LDAP", "urls": [env::slapd().ldaps_url],
                       "credentialsSecretRef": {"name": "bind"}, "tls": {"caSecretRef": {"name": "ca"}}},
            "directory": {"baseDN": base},
        },
    }))
    .expect("task");
    let created = tasks
        .create(&kube::api::PostParams::default(), &task)
        .await
        .expect("task");
    assert_eq!(
        created.spec.directory.preset, None,
        "no preset is stored for it"
    );
    let operator = start_operator(&client, &ns.name);
    assert_synced(&wait_for_run(&tasks, None).await);
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);
    let synced = user_groups(&groups).await;
    let devs = by_display(&synced, "Devs");
    assert_eq!(devs.spec.users.len(), 2);
    assert_eq!(
        devs.spec.source.as_ref().map(|s| s.id.len()),
        Some(36),
        "entryUUID"
    );
    operator.abort();
}
