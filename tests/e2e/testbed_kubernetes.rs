//! The local control plane is a real one: CRD admission with CEL, RBAC for ServiceAccounts and the
//! garbage collector all behave as on a production cluster.

use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use kube::{Resource, ResourceExt};
use usersync::api::{UserGroup, UserGroupSpec, UserSynchronization};

use crate::support::command::run_ok;
use crate::support::kube::{install_crds, kube_client};
use crate::support::namespace::TestNamespace;
use crate::support::wait::eventually;

fn task_json(name: &str, spec: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "usersync.io/v1alpha1",
        "kind": "UserSynchronization",
        "metadata": {"name": name},
        "spec": spec,
    })
}

fn valid_spec() -> serde_json::Value {
    serde_json::json!({
        "targetGroup": "all-users",
        "server": {"urls": ["ldaps://127.0.0.1:636"]},
        "directory": {"baseDN": "DC=corp,DC=example,DC=com"},
    })
}

async fn create_raw(
    api: &Api<UserSynchronization>,
    value: serde_json::Value,
) -> Result<UserSynchronization, kube::Error> {
    let obj: UserSynchronization = serde_json::from_value(value).expect("test object deserializes");
    api.create(&PostParams::default(), &obj).await
}

/// The message of a 422 Invalid rejection, or a panic when the apiserver accepted the object.
fn rejection(result: Result<UserSynchronization, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(status)) if status.code == 422 => status.message.clone(),
        Err(other) => panic!("expected 422 Invalid, got {other}"),
        Ok(obj) => panic!("the apiserver accepted an invalid object: {:?}", obj.spec),
    }
}

#[tokio::test]
async fn crds_install_and_admission_enforces_cel_rules() {
    let client = kube_client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "cel").await;
    let api: Api<UserSynchronization> = Api::namespaced(client.clone(), &ns.name);

    let created = create_raw(&api, task_json("valid", valid_spec()))
        .await
        .expect("a valid task is accepted");
    assert_eq!(
        created.spec.server.as_ref().map(|s| s.timeout_seconds),
        Some(30),
        "schema defaults are applied by the apiserver"
    );

    let mut both = valid_spec();
    both["schedule"] = "0 */6 * * *".into();
    both["interval"] = "15m".into();
    assert!(
        rejection(create_raw(&api, task_json("both", both)).await).contains("mutually exclusive")
    );

    let mut plain = valid_spec();
    plain["server"] =
        serde_json::json!({"urls": ["ldap://127.0.0.1:389"], "tls": {"mode": "None"}});
    assert!(
        rejection(create_raw(&api, task_json("plain", plain.clone())).await)
            .contains("allowInsecure")
    );
    plain["server"]["tls"]["allowInsecure"] = true.into();
    create_raw(&api, task_json("plain-allowed", plain))
        .await
        .expect("mode None with allowInsecure is accepted");

    for (name, bad) in [
        ("pct", serde_json::json!("150%")),
        ("neg", serde_json::json!(-1)),
        ("word", serde_json::json!("ten")),
    ] {
        let mut spec = valid_spec();
        spec["maxDeletions"] = bad;
        assert!(
            rejection(create_raw(&api, task_json(name, spec)).await).contains("maxDeletions"),
            "{name}"
        );
    }
    for (name, good) in [
        ("count", serde_json::json!(25)),
        ("percent", serde_json::json!("5%")),
    ] {
        let mut spec = valid_spec();
        spec["maxDeletions"] = good;
        create_raw(&api, task_json(name, spec))
            .await
            .expect("maxDeletions as int or percent is accepted");
    }

    // Durations out of range, and strings longer than any real one, never reach the operator.
    for (name, field, bad, words) in [
        (
            "huge-interval",
            "interval",
            "99999999999999999999h",
            "interval",
        ),
        ("long-interval", "interval", "8785h", "between 1s and 8784h"),
        (
            "short-interval",
            "interval",
            "500ms",
            "between 1s and 8784h",
        ),
        ("slow-run", "runTimeout", "25h", "between 1s and 24h"),
        (
            "long-schedule",
            "schedule",
            &format!("0 0 * * {}", "1,".repeat(200)),
            "schedule",
        ),
    ] {
        let mut spec = valid_spec();
        spec[field] = bad.into();
        assert!(
            rejection(create_raw(&api, task_json(name, spec)).await).contains(words),
            "{name}"
        );
    }
    let mut full = valid_spec();
    full["incremental"] = serde_json::json!({"fullSyncInterval": "0.5s"});
    assert!(
        rejection(create_raw(&api, task_json("short-full", full)).await)
            .contains("fullSyncInterval")
    );
    let mut attribute = valid_spec();
    attribute["directory"]["attributes"] = serde_json::json!({"member": "m".repeat(200)});
    assert!(
        rejection(create_raw(&api, task_json("long-attribute", attribute)).await)
            .contains("member")
    );

    let mut wrong_scheme = valid_spec();
    wrong_scheme["server"]["urls"] = serde_json::json!(["ldap://127.0.0.1:389"]);
    assert!(
        rejection(create_raw(&api, task_json("scheme", wrong_scheme)).await).contains("ldaps://")
    );

    let mut ntlm = valid_spec();
    ntlm["server"]["auth"] = "NTLM".into();
    assert!(
        rejection(create_raw(&api, task_json("ntlm-anonymous", ntlm.clone())).await)
            .contains("NTLM needs credentialsSecretRef")
    );
    ntlm["server"]["credentialsSecretRef"] = serde_json::json!({"name": "bind"});
    let created = create_raw(&api, task_json("ntlm", ntlm))
        .await
        .expect("NTLM with credentials is accepted");
    assert_eq!(
        created.spec.server.map(|s| s.auth),
        Some(usersync::api::BindMethod::Ntlm)
    );

    // A preset that cannot read the server's type.
    let mut mismatch = valid_spec();
    mismatch["server"]["type"] = "LDAP".into();
    mismatch["directory"]["preset"] = "ActiveDirectory".into();
    assert!(
        rejection(create_raw(&api, task_json("mismatch", mismatch.clone())).await)
            .contains("does not fit server.type")
    );
    mismatch["directory"]
        .as_object_mut()
        .map(|d| d.remove("preset"));
    create_raw(&api, task_json("ldap", mismatch))
        .await
        .expect("LDAP without a preset is accepted");

    // A task reads through an inline server or a connection: exactly one of them.
    let connection = serde_json::json!({"kind": "ClusterDirectoryConnection", "name": "corp"});
    let mut both = valid_spec();
    both["connectionRef"] = connection.clone();
    assert!(
        rejection(create_raw(&api, task_json("server-and-connection", both)).await)
            .contains("exactly one of server and connectionRef")
    );
    let mut neither = valid_spec();
    neither.as_object_mut().map(|spec| spec.remove("server"));
    assert!(
        rejection(create_raw(&api, task_json("no-server", neither.clone())).await)
            .contains("exactly one of server and connectionRef")
    );
    neither["connectionRef"] = connection;
    let created = create_raw(&api, task_json("through", neither))
        .await
        .expect("a task naming a connection is accepted");
    let r = created.spec.connection_ref.expect("connectionRef");
    assert_eq!(
        r.kind,
        usersync::api::ConnectionKind::ClusterDirectoryConnection
    );
}

#[tokio::test]
async fn connections_are_admitted_by_the_same_rules_as_a_task_s_server() {
    use usersync::api::{ClusterDirectoryConnection, DirectoryConnection};
    let client = kube_client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "cel-connections").await;
    let namespaced: Api<DirectoryConnection> = Api::namespaced(client.clone(), &ns.name);
    let cluster: Api<ClusterDirectoryConnection> = Api::all(client.clone());
    let post = |api: &str, kind: &str, name: &str, spec: serde_json::Value| {
        let object = serde_json::json!({
            "apiVersion": "usersync.io/v1alpha1", "kind": kind,
            "metadata": {"name": name}, "spec": spec,
        });
        let (api, object) = (api.to_owned(), object);
        let (namespaced, cluster) = (namespaced.clone(), cluster.clone());
        async move {
            let params = kube::api::PostParams::default();
            match api.as_str() {
                "namespaced" => namespaced
                    .create(&params, &serde_json::from_value(object).expect("object"))
                    .await
                    .map(|_| ()),
                _ => cluster
                    .create(&params, &serde_json::from_value(object).expect("object"))
                    .await
                    .map(|_| ()),
            }
        }
    };
    let refused = |result: Result<(), kube::Error>| match result {
        Err(kube::Error::Api(status)) if status.code == 422 => status.message,
        other => panic!("expected a 422 rejection, got {other:?}"),
    };
    let scheme = serde_json::json!({"urls": ["ldap://dc"]});
    let message = refused(post("namespaced", "DirectoryConnection", "scheme", scheme).await);
    assert!(message.contains("ldaps://"), "{message}");
    let no_namespaces = serde_json::json!({"urls": ["ldaps://dc"], "allowedNamespaces": {}});
    let name = format!("none-{}", ns.name);
    let message = refused(
        post(
            "cluster",
            "ClusterDirectoryConnection",
            &name,
            no_namespaces,
        )
        .await,
    );
    assert!(
        message.contains("allowedNamespaces needs names or a selector"),
        "{message}"
    );
    let every = serde_json::json!({"urls": ["ldaps://dc"], "allowedNamespaces": {"selector": {}}});
    let name = format!("every-{}", ns.name);
    post("cluster", "ClusterDirectoryConnection", &name, every)
        .await
        .expect("an empty selector (every namespace) is accepted");
    let _ = cluster.delete(&name, &Default::default()).await;
    post(
        "namespaced",
        "DirectoryConnection",
        "corp",
        serde_json::json!({"urls": ["ldaps://dc"]}),
    )
    .await
    .expect("a namespaced connection needs only its server");
}

#[tokio::test]
async fn service_account_without_rbac_is_refused() {
    let admin = kube_client().await;
    install_crds(&admin).await;
    let ns = TestNamespace::new(&admin, "rbac").await;
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), &ns.name);
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some("no-rights".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    accounts
        .create(&PostParams::default(), &account)
        .await
        .expect("ServiceAccount is created");
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let issued: TokenRequest = accounts
        .create_subresource("token", "no-rights", &PostParams::default(), &request)
        .await
        .expect("the token issuer signs a ServiceAccount token");
    let token = issued
        .status
        .and_then(|s| s.token)
        .expect("token in status");

    let mut config = kube::Config::infer().await.expect("kubeconfig");
    config.auth_info = kube::config::AuthInfo {
        token: Some(token.into()),
        ..Default::default()
    };
    let as_account = kube::Client::try_from(config).expect("client with the ServiceAccount token");
    let groups: Api<UserGroup> = Api::namespaced(as_account, &ns.name);
    let group = UserGroup::new(
        "denied",
        UserGroupSpec {
            display_name: "Denied".into(),
            ..Default::default()
        },
    );
    match groups.create(&PostParams::default(), &group).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 403, "{}", status.message);
            assert!(
                status
                    .message
                    .contains(&format!("system:serviceaccount:{}:no-rights", ns.name)),
                "{}",
                status.message
            );
        }
        other => panic!("a ServiceAccount without RBAC must be refused, got {other:?}"),
    }
}

#[tokio::test]
async fn deleting_the_owner_garbage_collects_owned_user_groups() {
    let client = kube_client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "gc").await;
    let tasks: Api<UserSynchronization> = Api::namespaced(client.clone(), &ns.name);
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);
    let owner = create_raw(&tasks, task_json("owner", valid_spec()))
        .await
        .expect("owner is created");
    let reference = OwnerReference {
        api_version: UserSynchronization::api_version(&()).into_owned(),
        kind: UserSynchronization::kind(&()).into_owned(),
        name: owner.name_any(),
        uid: owner.uid().expect("created object has a uid"),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let mut owned = UserGroup::new(
        "owned",
        UserGroupSpec {
            display_name: "Owned".into(),
            ..Default::default()
        },
    );
    owned.metadata.owner_references = Some(vec![reference]);
    groups
        .create(&PostParams::default(), &owned)
        .await
        .expect("owned UserGroup is created");
    let unowned = UserGroup::new(
        "unowned",
        UserGroupSpec {
            display_name: "Unowned".into(),
            ..Default::default()
        },
    );
    groups
        .create(&PostParams::default(), &unowned)
        .await
        .expect("unowned UserGroup is created");

    tasks
        .delete("owner", &DeleteParams::background())
        .await
        .expect("owner is deleted");
    // The garbage collector notices new resource types on its discovery resync, up to 30s.
    eventually(
        Duration::from_secs(90),
        "owned UserGroup is garbage-collected",
        || async { matches!(groups.get_opt("owned").await, Ok(None)) },
    )
    .await;
    assert!(
        groups
            .get_opt("unowned")
            .await
            .expect("get works")
            .is_some(),
        "only owned objects are collected"
    );
}

/// The pinned versions in tests/env/versions.sh, as `NAME=value` lines.
fn pinned_version(name: &str) -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/env/versions.sh"
    ))
    .expect("versions.sh");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{name} is pinned in versions.sh"))
        .to_owned()
}

#[tokio::test]
async fn built_tools_and_apiserver_have_the_pinned_versions() {
    let client = kube_client().await;
    let kubernetes = pinned_version("KUBERNETES_VERSION");
    let server = client
        .apiserver_version()
        .await
        .expect("apiserver answers /version");
    assert_eq!(server.git_version, kubernetes);
    // The k8s-openapi feature in Cargo.toml must match the apiserver the tests run against.
    let mut feature = String::new();
    k8s_openapi::k8s_if_1_37! { feature += "v1_37"; }
    assert_eq!(
        feature, "v1_37",
        "the k8s-openapi feature matches the apiserver"
    );
    assert_eq!(server.minor, "37");

    let kubectl: serde_json::Value = serde_json::from_str(&run_ok(
        std::process::Command::new("kubectl").args(["version", "--client", "-o", "json"]),
    ))
    .expect("kubectl version is JSON");
    assert_eq!(kubectl["clientVersion"]["gitVersion"], kubernetes.as_str());
    let helm = run_ok(std::process::Command::new("helm").args(["version", "--short"]));
    assert!(
        helm.starts_with(&pinned_version("HELM_VERSION")),
        "helm version: {helm}"
    );
}
