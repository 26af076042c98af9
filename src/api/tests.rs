use super::*;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The task exactly as the API contract shows it must parse, keep its values and render back the
/// same field names.
const CONTRACT_EXAMPLE: &str = r#"
apiVersion: usersync.io/v1alpha1
kind: UserSynchronization
metadata: {name: corp-ad, namespace: identity}
spec:
  description: "Sync CORP users"
  suspend: false
  runOnCreate: true
  schedule: "0 */6 * * *"
  timeZone: Europe/Bratislava
  targetGroup: all-users
  collisionPolicy: Skip
  userExtinctionPolicy: Remove
  groupExtinctionPolicy: Remove
  maxDeletions: "10%"
  dryRun: false
  server:
    type: ActiveDirectory
    urls: ["ldaps://dc1.corp.example.com", "ldaps://dc2.corp.example.com:636"]
    credentialsSecretRef: {name: corp-ad-bind}
    tls:
      mode: LDAPS
      caSecretRef: {name: corp-ca, key: ca.crt}
      insecureSkipVerify: false
    timeoutSeconds: 30
  directory:
    preset: ActiveDirectory
    baseDN: "DC=corp,DC=example,DC=com"
    groups: []
    excludes: []
    userFilter: ""
    groupFilter: ""
    ignoreDisabledUsers: false
    nestedGroups: Preserve
    attributes: {}
    pageSize: 500
"#;

#[test]
fn contract_example_parses_with_its_values() {
    let task: UserSynchronization =
        serde_norway::from_str(CONTRACT_EXAMPLE).expect("contract example parses");
    let spec = &task.spec;
    let server = spec
        .server
        .as_ref()
        .expect("the example names its server inline");
    assert_eq!(spec.target_group, "all-users");
    assert_eq!(spec.schedule.as_deref(), Some("0 */6 * * *"));
    assert_eq!(spec.collision_policy, CollisionPolicy::Skip);
    assert_eq!(server.server_type, ServerType::ActiveDirectory);
    assert_eq!(server.urls.len(), 2);
    assert_eq!(server.tls.mode, TlsMode::Ldaps);
    assert_eq!(
        server.tls.ca_secret_ref.as_ref().map(|r| r.key.as_str()),
        Some("ca.crt")
    );
    assert_eq!(spec.directory.base_dn, "DC=corp,DC=example,DC=com");
    assert_eq!(spec.directory.nested_groups, NestedGroups::Preserve);
    assert_eq!(spec.directory.page_size, 500);
}

#[test]
fn enum_values_use_the_contract_spelling() {
    let render = |v: serde_json::Value| v.as_str().map(str::to_owned);
    assert_eq!(
        render(serde_json::to_value(ServerType::Ldap).unwrap()).as_deref(),
        Some("LDAP")
    );
    assert_eq!(
        render(serde_json::to_value(TlsMode::StartTls).unwrap()).as_deref(),
        Some("StartTLS")
    );
    assert_eq!(
        render(serde_json::to_value(TlsMode::Plaintext).unwrap()).as_deref(),
        Some("None")
    );
    assert_eq!(
        render(serde_json::to_value(DirectoryPreset::OpenLdap).unwrap()).as_deref(),
        Some("OpenLDAP")
    );
    assert_eq!(
        render(serde_json::to_value(DirectoryPreset::Rfc2307).unwrap()).as_deref(),
        Some("RFC2307")
    );
    assert_eq!(
        render(serde_json::to_value(DirectoryPreset::FreeIpa).unwrap()).as_deref(),
        Some("FreeIPA")
    );
}

#[test]
fn minimal_task_gets_the_documented_defaults() {
    let task: UserSynchronizationSpec = serde_norway::from_str(
        "targetGroup: all\nserver: {urls: ['ldaps://dc']}\ndirectory: {baseDN: 'DC=corp'}\n",
    )
    .expect("minimal spec parses");
    assert!(task.run_on_create);
    assert!(!task.suspend && !task.dry_run);
    assert_eq!(task.max_deletions, IntOrString::String("10%".into()));
    let server = task.server.as_ref().expect("inline server");
    assert_eq!(server.timeout_seconds, 30);
    assert_eq!(server.tls.mode, TlsMode::Ldaps);
    assert_eq!(task.user_extinction_policy, ExtinctionPolicy::Remove);
    assert_eq!(task.directory.preset, None, "the server's type chooses it");
    let server = task.server.as_ref().expect("inline server");
    assert_eq!(
        server.server_type.default_preset(),
        DirectoryPreset::ActiveDirectory
    );
}

#[test]
fn user_group_renders_contract_field_names() {
    let group = UserGroupSpec {
        display_name: "Účtovníctvo".into(),
        parent: Some("corp-ad-all-users-0f9e8d".into()),
        source: Some(DirectorySource {
            dn: "CN=x".into(),
            id: "g".into(),
            sid: Some("S-1-5-21-1".into()),
        }),
        users: vec![
            GroupUser {
                name: "jdoe".into(),
                dn: "CN=J".into(),
                id: "u".into(),
                ..Default::default()
            }
            .into(),
        ],
        ..Default::default()
    };
    let json = serde_json::to_value(&group).unwrap();
    assert_eq!(json["displayName"], "Účtovníctvo");
    assert_eq!(json["source"]["sid"], "S-1-5-21-1");
    assert_eq!(json["users"][0]["name"], "jdoe");
    assert_eq!(json["users"][0]["disabled"], false);
}

#[test]
fn crds_carry_short_names_and_printer_columns() {
    let crds = crds();
    let names: Vec<_> = crds
        .iter()
        .map(|c| c.spec.names.short_names.clone().unwrap_or_default())
        .collect();
    let expected = ["usync", "ug", "dirconn", "cdirconn"].map(|n| vec![n.to_owned()]);
    assert_eq!(names, expected);
    let columns = |i: usize| -> Vec<String> {
        crds[i].spec.versions[0]
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.clone())
            .collect()
    };
    let task_columns = [
        "Ready",
        "Reason",
        "Last Sync",
        "Next Sync",
        "Users",
        "Groups",
        "Age",
    ];
    assert_eq!(columns(0), task_columns);
    assert_eq!(
        columns(1),
        ["Display Name", "Parent", "Shard Of", "Users", "Age"]
    );
    let connection_columns = ["Ready", "Server", "Vendor", "Feed", "Age"];
    assert_eq!(columns(2), connection_columns);
    assert_eq!(columns(3), connection_columns);
    let scopes: Vec<_> = crds.iter().map(|c| c.spec.scope.as_str()).collect();
    assert_eq!(
        scopes,
        ["Namespaced", "Namespaced", "Namespaced", "Cluster"]
    );
}

#[test]
fn a_connection_holds_a_task_s_server_section_at_the_top_of_its_spec() {
    let connection: ClusterDirectoryConnection = serde_norway::from_str(
        "apiVersion: usersync.io/v1alpha1\nkind: ClusterDirectoryConnection\n\
         metadata: {name: corp}\n\
         spec:\n  urls: ['ldaps://dc1']\n  credentialsSecretRef: {name: bind}\n\
         \x20 tls: {caSecretRef: {name: ca}}\n  allowedNamespaces: {names: [team-a]}\n",
    )
    .expect("cluster connection parses");
    assert_eq!(connection.spec.server.urls, ["ldaps://dc1"]);
    assert_eq!(connection.spec.server.timeout_seconds, 30);
    assert_eq!(connection.spec.allowed_namespaces.names, ["team-a"]);
    let task: UserSynchronizationSpec = serde_norway::from_str(
        "targetGroup: all\nconnectionRef: {kind: ClusterDirectoryConnection, name: corp}\n\
         directory: {baseDN: 'DC=corp'}\n",
    )
    .expect("a task naming a connection parses");
    assert!(task.server.is_none());
    let r = task.connection_ref.expect("connectionRef");
    assert_eq!(
        (r.kind, r.name.as_str()),
        (ConnectionKind::ClusterDirectoryConnection, "corp")
    );
}

#[test]
fn the_server_section_keeps_its_rules_where_a_connection_flattens_it() {
    let crd = ClusterDirectoryConnection::crd();
    let schema = serde_json::to_value(&crd.spec.versions[0].schema).expect("schema");
    let spec = &schema["openAPIV3Schema"]["properties"]["spec"];
    let rules = spec["x-kubernetes-validations"].to_string();
    assert!(rules.contains("urls must use ldaps://"), "{rules}");
    assert!(spec["properties"]["urls"].is_object());
    let required = spec["required"].to_string();
    assert!(
        required.contains("urls") && required.contains("allowedNamespaces"),
        "{required}"
    );
}

#[test]
fn a_spec_digest_covers_every_field_and_member() {
    use sha2::Digest;
    let jdoe = std::sync::Arc::new(GroupUser {
        name: "jdoe".into(),
        dn: "uid=jdoe,dc=example,dc=org".into(),
        id: "1f6c".into(),
        ..Default::default()
    });
    let mut spec = UserGroupSpec {
        display_name: "Devs".into(),
        users: vec![jdoe.clone()],
        ..Default::default()
    };
    // The head's JSON, then each member's SHA-256 of its JSON.
    let mut expected = sha2::Sha256::new();
    expected.update(br#"{"displayName":"Devs"}"#);
    expected.update(sha2::Sha256::digest(
        serde_json::to_vec(&*jdoe).expect("json"),
    ));
    let hex: String = expected
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(spec.digest(), format!("sha256:{hex}"));
    assert_eq!(spec.digest_with(|u| u.digest()), spec.digest());

    let mut seen = std::collections::HashSet::new();
    assert!(seen.insert(spec.digest()));
    spec.parent = Some("corp-all-users-0a1b2c".into());
    assert!(seen.insert(spec.digest()), "the parent counts");
    spec.users.push(jdoe.clone());
    assert!(seen.insert(spec.digest()), "every member counts");
    spec.users[1] = std::sync::Arc::new(GroupUser {
        disabled: true,
        ..(*jdoe).clone()
    });
    assert!(seen.insert(spec.digest()), "every member's fields count");
    spec.users.reverse();
    assert!(seen.insert(spec.digest()), "the order counts");
}

#[test]
fn a_member_digest_comes_with_the_length_of_its_json() {
    use sha2::Digest;
    let user = GroupUser {
        name: "zoë \"z\" o'neil".into(),
        dn: "uid=zoe\\,x,dc=example,dc=org".into(),
        id: "1f6c".into(),
        email: Some("zoë@example.org".into()),
        ..Default::default()
    };
    let json = serde_json::to_vec(&user).expect("json");
    let (digest, len) = user.digest_and_len();
    assert_eq!(len, json.len());
    assert_eq!(digest, <[u8; 32]>::from(sha2::Sha256::digest(&json)));
    assert_eq!(
        crate::planner::shard::json_bytes(&std::sync::Arc::new(user)),
        len + 1
    );
}
