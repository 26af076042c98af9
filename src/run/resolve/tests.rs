use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::*;
use crate::api::{AllowedNamespaces, ConnectionKind, DirectoryConnectionStatus};

fn secret(name: &str, allowed: Option<&str>) -> Secret {
    let mut secret = Secret::default();
    secret.metadata.name = Some(name.to_owned());
    secret.metadata.annotations = allowed
        .map(|urls| BTreeMap::from([(ALLOWED_SERVERS_ANNOTATION.to_owned(), urls.to_owned())]));
    secret.string_data = Some(BTreeMap::from([
        ("username".to_owned(), "CORP\\sync".to_owned()),
        ("password".to_owned(), "secret".to_owned()),
    ]));
    secret
}

fn server(url: &str) -> ServerSpec {
    serde_json::from_value(serde_json::json!({
        "urls": [url], "credentialsSecretRef": {"name": "bind"},
    }))
    .expect("server")
}

fn task(server_or_connection: serde_json::Value) -> UserSynchronizationSpec {
    let mut spec = serde_json::json!({"targetGroup": "all", "directory": {"baseDN": "DC=corp"}});
    let (key, value) = match server_or_connection.get("urls") {
        Some(_) => ("server", server_or_connection),
        None => ("connectionRef", server_or_connection),
    };
    spec[key] = value;
    serde_json::from_value(spec).expect("task")
}

fn cluster_connection(allowed: &[&str], status: Option<DirectoryConnectionStatus>) -> Connection {
    Connection {
        kind: ConnectionKind::ClusterDirectoryConnection,
        name: "corp".into(),
        server: server("ldaps://dc1"),
        secret_namespace: None,
        allowed: Some(AllowedNamespaces {
            names: allowed.iter().map(|n| (*n).to_owned()).collect(),
            selector: None,
        }),
        generation: Some(2),
        status,
    }
}

fn enforcing() -> Policy {
    Policy {
        connection_namespace: "usersync-system".into(),
        secret_namespaces: Some(vec!["usersync-system".into(), "team-a".into()]),
        inline_servers: InlineServers::AllowedBySecret,
        enforce: true,
    }
}

async fn resolved(
    namespace: &str,
    spec: &UserSynchronizationSpec,
    objects: &InObjects<'_>,
    policy: &Policy,
) -> Result<Resolved, ResolveError> {
    resolve(namespace, spec, objects, Given::default(), policy).await
}

const THROUGH: &str = r#"{"kind": "ClusterDirectoryConnection", "name": "corp"}"#;

#[tokio::test]
async fn an_inline_server_needs_its_secret_to_allow_every_url() {
    let secrets = [secret("bind", Some("ldaps://dc1"))];
    let objects = InObjects {
        secrets: &secrets,
        config_maps: &[],
        connections: &[],
    };
    let allowed = task(serde_json::to_value(server("ldaps://dc1")).expect("json"));
    let done = resolved("team-a", &allowed, &objects, &enforcing()).await;
    let done = done.expect("an allowed server resolves");
    assert_eq!(
        done.material.credentials.map(|c| c.username),
        Some("CORP\\sync".into())
    );
    let rogue = task(serde_json::json!({"urls": ["ldaps://dc1", "ldaps://rogue"],
                                        "credentialsSecretRef": {"name": "bind"}}));
    let refused = resolved("team-a", &rogue, &objects, &enforcing()).await;
    match refused {
        Err(ResolveError::ServersNotAllowed { urls, .. }) => assert_eq!(urls, ["ldaps://rogue"]),
        other => panic!("{other:?}"),
    }
    // The CLI's files are its user's own: nothing is refused there.
    let files = resolved("team-a", &rogue, &objects, &Policy::files()).await;
    assert!(files.is_ok());
}

#[tokio::test]
async fn secrets_are_read_only_in_the_namespaces_the_operator_was_given() {
    let secrets = [secret("bind", Some("ldaps://dc1"))];
    let objects = InObjects {
        secrets: &secrets,
        config_maps: &[],
        connections: &[],
    };
    let spec = task(serde_json::to_value(server("ldaps://dc1")).expect("json"));
    let refused = resolved("team-b", &spec, &objects, &enforcing()).await;
    assert_eq!(
        refused.map(|_| ()).map_err(|e| e.reason()),
        Err("ReferenceNotAllowed")
    );
}

#[tokio::test]
async fn a_cluster_connection_serves_the_namespaces_it_allows_with_its_own_secret() {
    // The connection's Secret needs no annotation: the connection names its servers.
    let secrets = [secret("bind", None)];
    let connections = [cluster_connection(&["team-a"], None)];
    let objects = InObjects {
        secrets: &secrets,
        config_maps: &[],
        connections: &connections,
    };
    let spec = task(serde_json::from_str(THROUGH).expect("ref"));
    let done = resolved("team-a", &spec, &objects, &enforcing())
        .await
        .expect("allowed");
    assert_eq!(done.server.urls, ["ldaps://dc1"]);
    assert_eq!(done.via.as_deref(), Some("ClusterDirectoryConnection corp"));
    let refused = resolved("team-b", &spec, &objects, &enforcing()).await;
    assert_eq!(
        refused.map(|_| ()).map_err(|e| e.reason()),
        Err("ConnectionNotAllowed")
    );
    let missing = task(serde_json::json!({"kind": "ClusterDirectoryConnection", "name": "gone"}));
    let refused = resolved("team-a", &missing, &objects, &enforcing()).await;
    assert_eq!(
        refused.map(|_| ()).map_err(|e| e.reason()),
        Err("ConnectionNotFound")
    );
}

fn not_ready(observed: i64) -> DirectoryConnectionStatus {
    DirectoryConnectionStatus {
        observed_generation: Some(observed),
        conditions: vec![Condition {
            type_: "Ready".into(),
            status: "False".into(),
            reason: "InvalidCredentials".into(),
            message: "dc1 rejected the credentials of CORP\\sync".into(),
            observed_generation: Some(observed),
            last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
        }],
        ..Default::default()
    }
}

#[tokio::test]
async fn a_broken_connection_is_reported_until_its_spec_changes() {
    let secrets = [secret("bind", None)];
    let spec = task(serde_json::from_str(THROUGH).expect("ref"));
    let broken = [cluster_connection(&["team-a"], Some(not_ready(2)))];
    let objects = InObjects {
        secrets: &secrets,
        config_maps: &[],
        connections: &broken,
    };
    match resolved("team-a", &spec, &objects, &enforcing()).await {
        Err(e @ ResolveError::ConnectionNotReady { .. }) => {
            assert!(e.is_transient());
            assert!(e.to_string().contains("InvalidCredentials"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    // A check of an older spec says nothing of the current one.
    let changed = [cluster_connection(&["team-a"], Some(not_ready(1)))];
    let objects = InObjects {
        secrets: &secrets,
        config_maps: &[],
        connections: &changed,
    };
    assert!(
        resolved("team-a", &spec, &objects, &enforcing())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn the_look_between_runs_changes_with_the_connection_s_readiness() {
    let secrets = [secret("bind", None)];
    let spec = task(serde_json::from_str(THROUGH).expect("ref"));
    let ready = version(&spec, &secrets, &[cluster_connection(&["team-a"], None)]).await;
    let broken = [cluster_connection(&["team-a"], Some(not_ready(2)))];
    let broken = version(&spec, &secrets, &broken).await;
    let gone = version(&spec, &secrets, &[]).await;
    assert!(
        ready != broken && broken != gone && ready != gone,
        "{ready} {broken} {gone}"
    );
}

async fn version(
    spec: &UserSynchronizationSpec,
    secrets: &[Secret],
    connections: &[Connection],
) -> String {
    let objects = InObjects {
        secrets,
        config_maps: &[],
        connections,
    };
    look("team-a", spec, &objects, &enforcing())
        .await
        .expect("look")
        .version
}

#[tokio::test]
async fn inline_servers_are_read_as_the_operator_was_told() {
    let secrets = [secret("bind", Some("ldaps://dc1"))];
    let objects = InObjects {
        secrets: &secrets,
        config_maps: &[],
        connections: &[],
    };
    let with_secret = task(serde_json::to_value(server("ldaps://dc1")).expect("json"));
    let anonymous = task(serde_json::json!({"urls": ["ldaps://anywhere"]}));
    let reason = |r: Result<Resolved, ResolveError>| r.map(|_| ()).map_err(|e| e.reason());
    let mut policy = enforcing();
    let refused = Err("InlineServerNotAllowed");
    assert_eq!(
        reason(resolved("team-a", &with_secret, &objects, &policy).await),
        Ok(())
    );
    assert_eq!(
        reason(resolved("team-a", &anonymous, &objects, &policy).await),
        refused
    );
    policy.inline_servers = InlineServers::Any;
    assert_eq!(
        reason(resolved("team-a", &anonymous, &objects, &policy).await),
        Ok(())
    );
    policy.inline_servers = InlineServers::None;
    assert_eq!(
        reason(resolved("team-a", &with_secret, &objects, &policy).await),
        refused
    );
    // The CLI reads what its user's files say.
    assert_eq!(
        reason(resolved("team-a", &anonymous, &objects, &Policy::files()).await),
        Ok(())
    );
}
