//! Building blocks of the end-to-end tests: a directory subtree of their own in Samba, the task and
//! its Secrets, the operator run in-process, and waiting for runs.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use ldap3::Ldap;
use usersync::api::{UserGroup, UserSynchronization};
use usersync_testbed::env;

use super::ldap_connect;

/// Which of the test bed's directories a scenario runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    Samba,
    OpenLdap,
}

impl Server {
    /// Bound as the directory's administrator, over LDAPS.
    pub async fn admin(self) -> Ldap {
        let (url, ca) = (self.ldaps_url(), self.ca_file());
        let (user, password) = self.credentials();
        let mut ldap = ldap_connect(&url, &ca, false).await;
        ldap.simple_bind(&user, &password)
            .await
            .and_then(|r| r.success())
            .expect("admin bind");
        ldap
    }

    fn ldaps_url(self) -> String {
        match self {
            Server::Samba => env::samba().ldaps_url,
            Server::OpenLdap => env::slapd().ldaps_url,
        }
    }

    fn ca_file(self) -> String {
        match self {
            Server::Samba => env::samba().ca_file,
            Server::OpenLdap => env::slapd().ca_file,
        }
    }

    /// The administrator's login (as a task's Secret gives it) and password.
    pub fn credentials(self) -> (String, String) {
        match self {
            Server::Samba => {
                let samba = env::samba();
                // Lower case on purpose: the operator normalises DOMAIN\user.
                (
                    format!("{}\\administrator", samba.domain.to_lowercase()),
                    samba.admin_password,
                )
            }
            Server::OpenLdap => {
                let slapd = env::slapd();
                (slapd.admin_dn, slapd.admin_password)
            }
        }
    }

    pub fn base_dn(self) -> String {
        match self {
            Server::Samba => env::samba().base_dn,
            Server::OpenLdap => env::slapd().base_dn,
        }
    }

    pub fn preset(self) -> &'static str {
        match self {
            Server::Samba => "ActiveDirectory",
            Server::OpenLdap => "OpenLDAP",
        }
    }

    /// The relative DN of a group named `name`.
    pub fn group_rdn(self, name: &str) -> String {
        match self {
            Server::Samba => format!("CN={name}"),
            Server::OpenLdap => format!("cn={name}"),
        }
    }

    /// The DN of a group named `name` directly under `base`.
    pub fn group_dn(self, base: &str, name: &str) -> String {
        format!("{},{base}", self.group_rdn(name))
    }

    /// The relative DN of a user named `name`.
    pub fn user_rdn(self, name: &str) -> String {
        match self {
            Server::Samba => format!("CN={name}"),
            Server::OpenLdap => format!("uid={name}"),
        }
    }

    pub fn user_dn(self, base: &str, name: &str) -> String {
        format!("{},{base}", self.user_rdn(name))
    }

    /// Adds the group `name` below `parent` with these member DNs; returns its DN.
    pub async fn add_group(
        self,
        ldap: &mut Ldap,
        parent: &str,
        name: &str,
        members: &[&str],
    ) -> String {
        let dn = self.group_dn(parent, name);
        let class = match self {
            Server::Samba => "group",
            Server::OpenLdap => "groupOfNames",
        };
        add(
            ldap,
            &dn,
            vec![
                ("objectClass", vec![class]),
                ("cn", vec![name]),
                ("member", members.to_vec()),
            ],
        )
        .await;
        dn
    }

    /// Adds the user `name` (its RDN value and display name) below `parent`; `account` is its
    /// sAMAccountName on Samba (unique in the whole domain), while OpenLDAP's login is the uid, `name`.
    pub async fn add_user(
        self,
        ldap: &mut Ldap,
        parent: &str,
        name: &str,
        account: &str,
    ) -> String {
        let dn = self.user_dn(parent, name);
        let attrs = match self {
            Server::Samba => vec![
                ("objectClass", vec!["user"]),
                ("sAMAccountName", vec![account]),
                ("displayName", vec![name]),
                ("userAccountControl", vec!["544"]),
            ],
            Server::OpenLdap => vec![
                ("objectClass", vec!["inetOrgPerson"]),
                ("uid", vec![name]),
                ("cn", vec![name]),
                ("sn", vec![name]),
                ("displayName", vec![name]),
            ],
        };
        add(ldap, &dn, attrs).await;
        dn
    }

    /// The entry's directory id as the operator reads it (objectGUID as a GUID string, entryUUID).
    pub async fn read_id(self, ldap: &mut Ldap, dn: &str) -> String {
        let attribute = match self {
            Server::Samba => "objectGUID",
            Server::OpenLdap => "entryUUID",
        };
        let (entries, _) = ldap
            .search(dn, ldap3::Scope::Base, "(objectClass=*)", vec![attribute])
            .await
            .and_then(|r| r.success())
            .unwrap_or_else(|e| panic!("read {dn}: {e}"));
        let entry = ldap3::SearchEntry::construct(entries.into_iter().next().expect("entry"));
        match self {
            Server::Samba => {
                usersync::directory::id_format::guid_to_string(&entry.bin_attrs[attribute][0])
                    .expect("GUID")
            }
            Server::OpenLdap => entry.attrs[attribute][0].clone(),
        }
    }
}

/// The Samba administrator, bound over LDAPS.
pub async fn samba_admin() -> Ldap {
    Server::Samba.admin().await
}

pub async fn add(ldap: &mut Ldap, dn: &str, attrs: Vec<(&str, Vec<&str>)>) {
    let attrs = attrs
        .into_iter()
        .map(|(k, v)| (k, v.into_iter().collect::<HashSet<_>>()))
        .collect();
    ldap.add(dn, attrs)
        .await
        .and_then(|r| r.success())
        .unwrap_or_else(|e| panic!("add {dn}: {e}"));
}

/// OU=<name> with users alice and bob, and groups Devs (alice, bob) and Ops (bob), in Samba.
pub async fn directory_subtree(ldap: &mut Ldap, name: &str) -> String {
    subtree_on(Server::Samba, ldap, name).await
}

/// OU=<name> with users alice and bob, and groups Devs (alice, bob) and Ops (bob).
pub async fn subtree_on(server: Server, ldap: &mut Ldap, name: &str) -> String {
    let base = add_ou(ldap, server.base_dn().as_str(), name).await;
    for user in ["alice", "bob"] {
        server
            .add_user(ldap, &base, user, &format!("{name}-{user}"))
            .await;
    }
    let alice = server.user_dn(&base, "alice");
    let bob = server.user_dn(&base, "bob");
    server.add_group(ldap, &base, "Devs", &[&alice, &bob]).await;
    server.add_group(ldap, &base, "Ops", &[&bob]).await;
    base
}

/// Adds the OU `name` below `parent`; returns its DN.
pub async fn add_ou(ldap: &mut Ldap, parent: &str, name: &str) -> String {
    let dn = format!("ou={name},{parent}");
    add(
        ldap,
        &dn,
        vec![
            ("objectClass", vec!["organizationalUnit"]),
            ("ou", vec![name]),
        ],
    )
    .await;
    dn
}

pub async fn modify(ldap: &mut Ldap, dn: &str, mods: Vec<ldap3::Mod<&str>>) {
    ldap.modify(dn, mods)
        .await
        .and_then(|r| r.success())
        .unwrap_or_else(|e| panic!("modify {dn}: {e}"));
}

/// Renames `dn` to `rdn`, below `new_parent` when given.
pub async fn rename(ldap: &mut Ldap, dn: &str, rdn: &str, new_parent: Option<&str>) {
    ldap.modifydn(dn, rdn, true, new_parent)
        .await
        .and_then(|r| r.success())
        .unwrap_or_else(|e| panic!("rename {dn}: {e}"));
}

pub async fn delete(ldap: &mut Ldap, dn: &str) {
    ldap.delete(dn)
        .await
        .and_then(|r| r.success())
        .unwrap_or_else(|e| panic!("delete {dn}: {e}"));
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
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret = |name: &str, data: BTreeMap<String, String>| Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
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
    for s in [secret("bind", bind), secret("ca", ca)] {
        api.patch(
            s.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams::apply("tests").force(),
            &Patch::Apply(&s),
        )
        .await
        .expect("secret applied");
    }
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

pub fn start_operator(client: &kube::Client, ns: &str) -> tokio::task::JoinHandle<()> {
    start_operator_with(
        client,
        ns,
        usersync::planner::shard::DEFAULT_SHARD_BYTES,
        None,
    )
}

/// The operator with a smaller shard size (so tests see shards without huge groups) and, with
/// `listen`, its health and metrics endpoints.
pub fn start_operator_with(
    client: &kube::Client,
    ns: &str,
    shard_bytes: usize,
    listen: Option<std::net::SocketAddr>,
) -> tokio::task::JoinHandle<()> {
    let mut options = operator_options(ns);
    options.shard_bytes = shard_bytes;
    options.listen = listen;
    start_operator_options(client, options)
}

/// The options `usersync run` would use, watching `ns`, with quick polling for tests.
pub fn operator_options(ns: &str) -> usersync::controller::Options {
    usersync::controller::Options {
        namespaces: vec![ns.to_owned()],
        concurrency: 2,
        read_options: Default::default(),
        reference_poll: Duration::from_secs(1),
        shard_bytes: usersync::planner::shard::DEFAULT_SHARD_BYTES,
        write_concurrency: 4,
        write_rate: None,
        listen: None,
        leader_election: None,
    }
}

pub fn start_operator_options(
    client: &kube::Client,
    options: usersync::controller::Options,
) -> tokio::task::JoinHandle<()> {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("usersync=debug,kube_runtime=info,kube_lease_manager=info")
        .try_init();
    tokio::spawn(usersync::controller::run(client.clone(), options))
}

pub fn condition(task: &UserSynchronization, type_: &str) -> Option<(String, String)> {
    let status = task.status.as_ref()?;
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// The task's last run succeeded: Ready is True with reason Synced.
#[track_caller]
pub fn assert_synced(task: &UserSynchronization) {
    assert_eq!(
        condition(task, "Ready"),
        Some(("True".into(), "Synced".into())),
        "{:?}",
        task.status
    );
}

/// Waits for the first run (`token` None) or for the run that answered run-now value `token`.
pub async fn wait_for_run(
    tasks: &Api<UserSynchronization>,
    token: Option<&str>,
) -> UserSynchronization {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(task) = tasks.get("corp").await {
            let status = task.status.as_ref();
            let done = match token {
                None => status.is_some_and(|s| s.last_sync_time.is_some()),
                Some(t) => status.and_then(|s| s.last_handled_run_now.as_deref()) == Some(t),
            };
            if done {
                return task;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the task did not finish a run within 90s"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

pub fn by_display<'a>(groups: &'a [UserGroup], name: &str) -> &'a UserGroup {
    groups
        .iter()
        .find(|g| g.spec.display_name == name)
        .unwrap_or_else(|| panic!("UserGroup {name}"))
}

pub fn audit_writes(ns: &str) -> usize {
    let log = std::fs::read_to_string(env::kube().audit_log).unwrap_or_default();
    let needle = format!("\"namespace\":\"{ns}\"");
    log.lines()
        .filter(|l| l.contains("\"resource\":\"usergroups\"") && l.contains(&needle))
        .count()
}

pub async fn run_now(tasks: &Api<UserSynchronization>, token: &str) {
    let patch = serde_json::json!({"metadata": {"annotations": {"usersync.io/run-now": token}}});
    tasks
        .patch("corp", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("annotate");
}

/// GET `path` from the operator's HTTP endpoint: (status line, body).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("operator HTTP answers");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("response read");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

/// A test's own namespace (CRDs installed) and its own OU in a directory holding alice, bob, Devs and
/// Ops, with the `bind` and `ca` Secrets in place.
pub struct Scenario {
    pub client: kube::Client,
    pub ns: super::TestNamespace,
    pub ldap: Ldap,
    pub base: String,
}

impl Scenario {
    /// On Samba.
    pub async fn new(prefix: &str) -> Scenario {
        Scenario::on(Server::Samba, prefix).await
    }

    pub async fn on(server: Server, prefix: &str) -> Scenario {
        let client = super::kube_client().await;
        super::install_crds(&client).await;
        let ns = super::TestNamespace::new(&client, prefix).await;
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

/// Waits until the task's condition `type_` has `status` and `reason`, for up to a minute.
pub async fn wait_for_condition(
    tasks: &Api<UserSynchronization>,
    type_: &str,
    status: &str,
    reason: &str,
) -> UserSynchronization {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let task = tasks.get("corp").await.expect("task");
        if condition(&task, type_) == Some((status.to_owned(), reason.to_owned())) {
            return task;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{type_} is not {status}/{reason} within a minute: {:?}",
            task.status
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Every UserGroup the API returns (shards included).
pub async fn user_groups(api: &Api<UserGroup>) -> Vec<UserGroup> {
    api.list(&Default::default())
        .await
        .expect("list UserGroups")
        .items
}

/// A client authenticated as the ServiceAccount `name` (with a fresh token), as a pod would be.
pub async fn service_account_client(
    admin: &kube::Client,
    namespace: &str,
    name: &str,
) -> kube::Client {
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
    let token = issued.status.and_then(|s| s.token).expect("token");
    let mut config = kube::Config::infer().await.expect("kubeconfig");
    config.auth_info = kube::config::AuthInfo {
        token: Some(token.into()),
        ..Default::default()
    };
    kube::Client::try_from(config).expect("client")
}

/// Writes in namespace `ns` recorded by the apiserver's audit log, per user name, leader-election
/// Leases left out.
pub fn audit_writers(ns: &str) -> BTreeMap<String, usize> {
    let log = std::fs::read_to_string(env::kube().audit_log).unwrap_or_default();
    let mut writers = BTreeMap::new();
    for line in log.lines() {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let verb = event["verb"].as_str().unwrap_or_default();
        if event["objectRef"]["namespace"] != ns
            || event["objectRef"]["resource"] == "leases"
            || !matches!(verb, "create" | "update" | "patch" | "delete")
        {
            continue;
        }
        let user = event["user"]["username"].as_str().unwrap_or_default();
        *writers.entry(user.to_owned()).or_default() += 1;
    }
    writers
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

/// A task file for the CLI in `ns`: `task` and the `bind` Secret with Samba's administrator.
pub fn samba_task_file(ns: &str, mut task: serde_json::Value) -> std::path::PathBuf {
    let samba = env::samba();
    task["metadata"]["namespace"] = ns.into();
    let secret = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bind", "namespace": ns},
        "stringData": {"username": format!("{}\\Administrator", samba.domain), "password": samba.admin_password},
    });
    let file = std::env::temp_dir().join(format!("{ns}-task.yaml"));
    std::fs::write(&file, format!("{task}\n---\n{secret}\n")).expect("task file");
    file
}

/// `usersync sync --dry-run` of a task file against the test bed's apiserver, trusting Samba's CA:
/// what it prints.
pub fn cli_dry_run(file: &std::path::Path) -> String {
    super::run_ok(
        std::process::Command::new(env!("CARGO_BIN_EXE_usersync"))
            .args(["sync", "--dry-run", "-f"])
            .arg(file)
            .args(["--ca-file", &env::samba().ca_file])
            .env("KUBECONFIG", env::kube().kubeconfig),
    )
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
