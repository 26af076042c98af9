//! The test bed's apiserver: an admin client, the CRDs, the Secrets and the task a test syncs with,
//! and the UserGroups it reads back.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use ldap3::Ldap;
use usersync::api::{UserGroup, UserGroupSpec, UserSynchronization};

use super::ldap::{Server, subtree_on};
use super::namespace::TestNamespace;
use usersync_testbed::env;

/// An admin client for the test bed's apiserver.
pub async fn kube_client() -> kube::Client {
    usersync_testbed::env::kube();
    kube::Client::try_default()
        .await
        .expect("KUBECONFIG from the test bed works")
}

/// Installs the CRDs from `crds/` by server-side apply and waits until they are served.
pub async fn install_crds(client: &kube::Client) {
    install_crds_with(client, |_| {}).await;
}

/// [`install_crds`], each CRD changed by `edit` first (into an earlier version's, say).
pub async fn install_crds_with(
    client: &kube::Client,
    edit: impl Fn(&mut CustomResourceDefinition),
) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/usersync.io.yaml");
    let text = std::fs::read_to_string(path).expect("crds/ is readable");
    let params = PatchParams::apply("usersync-tests").force();
    for doc in serde_norway::Deserializer::from_str(&text) {
        let mut crd: CustomResourceDefinition =
            serde::Deserialize::deserialize(doc).expect("crds/ holds CRDs");
        edit(&mut crd);
        let name = crd.metadata.name.clone().expect("CRD has a name");
        api.patch(&name, &params, &Patch::Apply(&crd))
            .await
            .expect("CRD applies");
        let established = await_condition(api.clone(), &name, conditions::is_crd_established());
        tokio::time::timeout(Duration::from_secs(30), established)
            .await
            .expect("CRD is established within 30s")
            .expect("CRD watch works");
    }
}

/// A client authenticated as the ServiceAccount `name` (with a fresh token), as a pod would be.
pub async fn service_account_client(
    admin: &kube::Client,
    namespace: &str,
    name: &str,
) -> kube::Client {
    let token = service_account_token(admin, namespace, name).await;
    let mut config = kube::Config::infer().await.expect("kubeconfig");
    config.auth_info = kube::config::AuthInfo {
        token: Some(token.into()),
        ..Default::default()
    };
    kube::Client::try_from(config).expect("client")
}

/// A kubeconfig file for the ServiceAccount `name` (with a fresh token), for a process of its own.
pub async fn service_account_kubeconfig(
    admin: &kube::Client,
    namespace: &str,
    name: &str,
) -> std::path::PathBuf {
    let token = service_account_token(admin, namespace, name).await;
    let mut kubeconfig =
        kube::config::Kubeconfig::read_from(usersync_testbed::env::kube().kubeconfig)
            .expect("the test bed's kubeconfig");
    for named in &mut kubeconfig.auth_infos {
        named.auth_info = Some(kube::config::AuthInfo {
            token: Some(token.clone().into()),
            ..Default::default()
        });
    }
    let path = std::env::temp_dir().join(format!("{namespace}-{name}.kubeconfig"));
    // JSON is YAML too.
    std::fs::write(&path, serde_json::to_vec(&kubeconfig).expect("kubeconfig")).expect("written");
    path
}

/// A fresh token of the ServiceAccount `name`.
async fn service_account_token(admin: &kube::Client, namespace: &str, name: &str) -> String {
    use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
    use k8s_openapi::api::core::v1::ServiceAccount;
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), namespace);
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let issued: TokenRequest = accounts
        .create_subresource("token", name, &PostParams::default(), &request)
        .await
        .expect("token issued");
    issued.status.and_then(|s| s.token).expect("token")
}

/// A rule of a Role: `verbs` on `resources` of API group `group`.
pub fn rule(
    group: &str,
    resources: &[&str],
    verbs: &[&str],
) -> k8s_openapi::api::rbac::v1::PolicyRule {
    k8s_openapi::api::rbac::v1::PolicyRule {
        api_groups: Some(vec![group.into()]),
        resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        ..Default::default()
    }
}

/// A ServiceAccount `name` in `ns` with a Role of its own that holds `rules`, and its binding.
pub async fn account_with_rules(
    admin: &kube::Client,
    ns: &str,
    name: &str,
    rules: Vec<k8s_openapi::api::rbac::v1::PolicyRule>,
) {
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding, RoleRef, Subject};
    let meta = || ObjectMeta {
        name: Some(name.into()),
        ..Default::default()
    };
    let role = Role {
        metadata: meta(),
        rules: Some(rules),
    };
    Api::<Role>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &role)
        .await
        .expect("Role");
    let account = ServiceAccount {
        metadata: meta(),
        ..Default::default()
    };
    Api::<ServiceAccount>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &account)
        .await
        .expect("ServiceAccount");
    let binding = RoleBinding {
        metadata: meta(),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: name.into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: name.into(),
            namespace: Some(ns.into()),
            ..Default::default()
        }]),
    };
    Api::<RoleBinding>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &binding)
        .await
        .expect("RoleBinding");
}

/// A ServiceAccount `name` allowed everything in `ns`, for replicas whose rights are not under test
/// (the audit log tells their writes apart by it).
pub async fn replica_account(admin: &kube::Client, ns: &str, name: &str) {
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), ns);
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    accounts
        .create(&PostParams::default(), &account)
        .await
        .expect("ServiceAccount");
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), ns);
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: "cluster-admin".into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: name.into(),
            namespace: Some(ns.into()),
            ..Default::default()
        }]),
    };
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .expect("RoleBinding");
}

/// The Samba task's `bind` Secret with this password, and its `ca` Secret.
pub async fn secrets(client: &kube::Client, ns: &str, password: &str) {
    secrets_for(Server::Samba, client, ns, password).await
}

/// The `bind` Secret (the server's administrator, with this password) and the `ca` Secret.
pub async fn secrets_for(server: Server, client: &kube::Client, ns: &str, password: &str) {
    let ca = std::fs::read_to_string(server.ca_file()).expect("CA");
    bind_and_ca_secrets(client, ns, &server.credentials().0, password, &ca).await
}

/// The `bind` Secret (`username`, `password`) and the `ca` Secret (`ca.crt`) tasks refer to.
pub async fn bind_and_ca_secrets(
    client: &kube::Client,
    ns: &str,
    username: &str,
    password: &str,
    ca_pem: &str,
) {
    secret_pair(client, ns, ("bind", "ca"), (username, password), ca_pem).await
}

/// `<prefix>-bind` and `<prefix>-ca` for the administrator of `server`: Secrets of a second
/// directory beside the first one's in the same namespace.
pub async fn prefixed_secrets_for(server: Server, client: &kube::Client, ns: &str, prefix: &str) {
    let ca = std::fs::read_to_string(server.ca_file()).expect("CA");
    let (username, password) = server.credentials();
    let names = (&*format!("{prefix}-bind"), &*format!("{prefix}-ca"));
    secret_pair(client, ns, names, (&username, &password), &ca).await
}

async fn secret_pair(
    client: &kube::Client,
    ns: &str,
    (bind_name, ca_name): (&str, &str),
    (username, password): (&str, &str),
    ca_pem: &str,
) {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    // The bind Secret lets tasks with an inline server use it with the test bed's directories;
    // a test that points a task elsewhere allows that server itself (`allow_servers`).
    let allowed = BTreeMap::from([(
        "usersync.io/allowed-servers".to_owned(),
        testbed_servers().join(","),
    )]);
    let secret = |name: &str, data: BTreeMap<String, String>| Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            annotations: (name == bind_name).then(|| allowed.clone()),
            ..Default::default()
        },
        string_data: Some(data),
        ..Default::default()
    };
    let bind = BTreeMap::from([
        ("username".to_owned(), username.to_owned()),
        ("password".to_owned(), password.to_owned()),
    ]);
    let ca = BTreeMap::from([("ca.crt".to_owned(), ca_pem.to_owned())]);
    for s in [secret(bind_name, bind), secret(ca_name, ca)] {
        api.patch(
            s.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams::apply("tests").force(),
            &Patch::Apply(&s),
        )
        .await
        .expect("secret applied");
    }
}

/// Every URL of the test bed's directories.
pub fn testbed_servers() -> Vec<String> {
    let (samba, slapd, ds389) = (env::samba(), env::slapd(), env::ds389());
    vec![
        samba.url,
        samba.ldaps_url,
        slapd.url,
        slapd.ldaps_url,
        ds389.url,
        ds389.ldaps_url,
    ]
}

/// Lets tasks with an inline server send Secret `name`'s credentials to `urls` too (as the
/// Secret's owner would, with its `usersync.io/allowed-servers` annotation).
pub async fn allow_servers(client: &kube::Client, ns: &str, name: &str, urls: &[String]) {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret = api.get(name).await.expect("Secret to allow servers on");
    let key = "usersync.io/allowed-servers";
    let mut allowed: Vec<String> = secret
        .metadata
        .annotations
        .and_then(|a| a.get(key).cloned())
        .map(|v| v.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    allowed.extend(urls.iter().cloned());
    let patch = serde_json::json!({"metadata": {"annotations": {key: allowed.join(",")}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("Secret annotated");
}

/// The task `corp` syncing `base_dn` of Samba.
pub async fn create_task(
    client: &kube::Client,
    ns: &str,
    base_dn: &str,
) -> Api<UserSynchronization> {
    create_task_on(Server::Samba, client, ns, base_dn).await
}

/// The task `corp` syncing `base_dn` of `server` into the target group `all-users`.
pub async fn create_task_on(
    server: Server,
    client: &kube::Client,
    ns: &str,
    base_dn: &str,
) -> Api<UserSynchronization> {
    let api: Api<UserSynchronization> = Api::namespaced(client.clone(), ns);
    let task: UserSynchronization = serde_json::from_value(serde_json::json!({
        "apiVersion": "usersync.io/v1alpha1",
        "kind": "UserSynchronization",
        "metadata": {"name": "corp"},
        "spec": {
            "targetGroup": "all-users",
            "server": {
                "type": match server {
                    Server::Samba => "ActiveDirectory",
                    Server::OpenLdap => "LDAP",
                },
                "urls": [server.ldaps_url()],
                "credentialsSecretRef": {"name": "bind"},
                "tls": {"caSecretRef": {"name": "ca"}},
            },
            "directory": {"preset": server.preset(), "baseDN": base_dn},
        },
    }))
    .expect("task");
    api.create(&PostParams::default(), &task)
        .await
        .expect("task created");
    api
}

/// Asks the task `corp` for a run, answered with `token` on status.
pub async fn run_now(tasks: &Api<UserSynchronization>, token: &str) {
    let patch = serde_json::json!({"metadata": {"annotations": {"usersync.io/run-now": token}}});
    tasks
        .patch("corp", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("annotate");
}

/// Approves one run past the deletion brake of the task `corp`, with `token`.
pub async fn approve_deletions(tasks: &Api<UserSynchronization>, token: &str) {
    let patch =
        serde_json::json!({"metadata": {"annotations": {"usersync.io/approve-deletions": token}}});
    tasks
        .patch("corp", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("approve");
}

/// Every Event in namespace `ns`.
pub async fn events(client: &kube::Client, ns: &str) -> Vec<k8s_openapi::api::events::v1::Event> {
    Api::namespaced(client.clone(), ns)
        .list(&Default::default())
        .await
        .expect("events")
        .items
}

/// A test's own namespace (CRDs installed) and its own OU in a directory holding alice, bob, Devs and
/// Ops, with the `bind` and `ca` Secrets in place.
pub struct Scenario {
    pub client: kube::Client,
    pub ns: TestNamespace,
    pub ldap: Ldap,
    pub base: String,
}

impl Scenario {
    /// On Samba.
    pub async fn new(prefix: &str) -> Scenario {
        Scenario::on(Server::Samba, prefix).await
    }

    pub async fn on(server: Server, prefix: &str) -> Scenario {
        let client = kube_client().await;
        install_crds(&client).await;
        let ns = TestNamespace::new(&client, prefix).await;
        let mut ldap = server.admin().await;
        let base = subtree_on(server, &mut ldap, &ns.name).await;
        secrets_for(server, &client, &ns.name, &server.credentials().1).await;
        Scenario {
            client,
            ns,
            ldap,
            base,
        }
    }
}

/// directory id (the target group: "target") → (spec, userCount) of every UserGroup in the
/// namespace. Keyed by id, not by name: a name is chosen once, when the object is created, so a
/// group renamed in the directory keeps its old object name.
pub async fn contents(api: &Api<UserGroup>) -> BTreeMap<String, (UserGroupSpec, Option<i64>)> {
    user_groups(api)
        .await
        .into_iter()
        .map(|g| {
            let count = g.status.as_ref().map(|s| s.user_count);
            let id = g
                .spec
                .source
                .as_ref()
                .map_or_else(|| "target".to_owned(), |s| s.id.clone());
            (id, (g.spec, count))
        })
        .collect()
}

/// What a new task of the same settings writes from a full read of `base`, in a namespace of its
/// own: what incremental or pushed runs must have ended with.
pub async fn fresh_contents(
    server: Server,
    client: &kube::Client,
    base: &str,
) -> BTreeMap<String, (UserGroupSpec, Option<i64>)> {
    let fresh_ns = TestNamespace::new(client, "e2e-fresh").await;
    secrets_for(server, client, &fresh_ns.name, &server.credentials().1).await;
    let fresh_tasks = create_task_on(server, client, &fresh_ns.name, base).await;
    let operator = super::operator::start_operator(client, &fresh_ns.name);
    let task = super::wait::wait_for_run(&fresh_tasks, None).await;
    operator.abort();
    let read = task
        .status
        .and_then(|s| s.last_run)
        .map(|r| r.directory_read);
    assert_eq!(read.as_deref(), Some("Full"), "a new task reads everything");
    contents(&Api::namespaced(client.clone(), &fresh_ns.name)).await
}

/// Asserts that two namespaces' [`contents`] hold the same objects, object for object.
pub fn assert_same_contents(
    server: Server,
    got: &BTreeMap<String, (UserGroupSpec, Option<i64>)>,
    fresh: &BTreeMap<String, (UserGroupSpec, Option<i64>)>,
) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        fresh.keys().collect::<Vec<_>>(),
        "{server:?}: the same objects"
    );
    for (id, (spec, count)) in fresh {
        assert_eq!(
            got.get(id),
            Some(&(spec.clone(), *count)),
            "{server:?}: {}",
            spec.display_name
        );
    }
}

/// Every UserGroup the API returns (shards included).
pub async fn user_groups(api: &Api<UserGroup>) -> Vec<UserGroup> {
    api.list(&Default::default())
        .await
        .expect("list UserGroups")
        .items
}

/// Names of the UserGroups the task `task` wrote (its label), shards included.
pub async fn names_of_task(
    client: &kube::Client,
    ns: &str,
    task: &str,
) -> std::collections::BTreeSet<String> {
    let api: Api<UserGroup> = Api::namespaced(client.clone(), ns);
    let selector = format!("{}={task}", usersync::api::SYNCHRONIZATION_LABEL);
    api.list(&kube::api::ListParams::default().labels(&selector))
        .await
        .expect("list the task's UserGroups")
        .items
        .iter()
        .map(kube::ResourceExt::name_any)
        .collect()
}

pub fn by_display<'a>(groups: &'a [UserGroup], name: &str) -> &'a UserGroup {
    groups
        .iter()
        .find(|g| g.spec.display_name == name)
        .unwrap_or_else(|| panic!("UserGroup {name}"))
}

/// The UserGroup of the directory group `display_name` and its shard objects, in name order.
pub fn base_and_shards<'a>(
    all: &'a [UserGroup],
    display_name: &str,
) -> (&'a UserGroup, Vec<&'a UserGroup>) {
    use kube::ResourceExt;
    use usersync::api::SHARD_OF_LABEL;
    let base = all
        .iter()
        .find(|g| g.spec.display_name == display_name && !g.labels().contains_key(SHARD_OF_LABEL))
        .unwrap_or_else(|| panic!("no UserGroup for {display_name}"));
    let mut shards: Vec<&UserGroup> = all
        .iter()
        .filter(|g| g.labels().get(SHARD_OF_LABEL) == Some(&base.name_any()))
        .collect();
    shards.sort_by_key(|s| s.name_any());
    (base, shards)
}

/// The member ids of a group joined from its base object and shards, sorted, duplicates removed.
pub fn joined_member_ids<'a>(base: &'a UserGroup, shards: &[&'a UserGroup]) -> Vec<&'a str> {
    let mut ids: Vec<&str> = base
        .spec
        .users
        .iter()
        .chain(shards.iter().flat_map(|s| &s.spec.users))
        .map(|u| u.id.as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Merge-patches a UserGroup's spec as someone editing it by hand would (field manager
/// `kubectl-edit`).
pub async fn edit_by_hand(groups: &Api<UserGroup>, name: &str, spec: serde_json::Value) {
    groups
        .patch(
            name,
            &PatchParams {
                field_manager: Some("kubectl-edit".into()),
                ..Default::default()
            },
            &Patch::Merge(serde_json::json!({ "spec": spec })),
        )
        .await
        .unwrap_or_else(|e| panic!("editing {name}: {e}"));
}

/// The objects at `path` (a list or one object) as `kubectl get` prints them: the apiserver's
/// table, each row as column name to cell.
pub async fn printed(
    client: &kube::Client,
    path: &str,
) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let request = http::Request::get(path)
        .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Vec::new())
        .expect("request");
    let table: serde_json::Value = client.request(request).await.expect("table");
    let columns = table["columnDefinitions"].as_array().expect("columns");
    let rows = table["rows"].as_array().expect("rows");
    rows.iter()
        .map(|row| {
            let cells = row["cells"].as_array().expect("cells");
            columns
                .iter()
                .zip(cells)
                .map(|(c, v)| (c["name"].as_str().unwrap_or_default().to_owned(), v.clone()))
                .collect()
        })
        .collect()
}

/// Merges `spec` into the task `corp`'s spec.
pub async fn patch_spec(tasks: &Api<UserSynchronization>, spec: serde_json::Value) {
    let patch = serde_json::json!({"spec": spec});
    tasks
        .patch("corp", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("spec patched");
}
