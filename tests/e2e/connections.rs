//! Directory connections on the real apiserver and directories: a ClusterDirectoryConnection that
//! serves only the namespaces it allows and keeps its Secret in its own namespace; a task author who
//! cannot make the operator send any credential to a server of their own; a connection's status
//! that follows its password, CA and server, with the tasks that use it; a deleted connection.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use usersync::api::{
    ClusterDirectoryConnection, DirectoryConnection, DirectoryConnectionStatus, UserGroup,
    UserSynchronization,
};
use usersync_testbed::env;

use crate::support::hostile::{self, Mode};
use crate::support::kube::{
    Scenario, account_with_rules, allow_servers, rule, service_account_client, user_groups,
};
use crate::support::ldap::Server;
use crate::support::namespace::TestNamespace;
use crate::support::operator::InProcess;
use crate::support::proxy;
use crate::support::wait::eventually;

/// A task named `name` that reads `base` through the connection `kind`/`connection`.
fn task_through(name: &str, kind: &str, connection: &str, base: &str) -> UserSynchronization {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "usersync.io/v1alpha1", "kind": "UserSynchronization",
        "metadata": {"name": name},
        "spec": {
            "targetGroup": "all-users",
            "connectionRef": {"kind": kind, "name": connection},
            "directory": {"preset": "ActiveDirectory", "baseDN": base},
        },
    }))
    .expect("task")
}

/// Samba's server section with the `bind` and `ca` Secrets, at `url`.
fn samba_server(url: &str) -> serde_json::Value {
    serde_json::json!({
        "urls": [url],
        "credentialsSecretRef": {"name": "bind"},
        "tls": {"caSecretRef": {"name": "ca"}},
        "timeoutSeconds": 5,
    })
}

/// The task's Ready condition as (status, reason, message).
async fn ready(tasks: &Api<UserSynchronization>, name: &str) -> Option<(String, String, String)> {
    let task = tasks.get(name).await.ok()?;
    let c = task
        .status?
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")?;
    Some((c.status, c.reason, c.message))
}

/// Waits until the task's Ready condition is `status` with `reason`; returns its message.
async fn wait_ready(
    tasks: &Api<UserSynchronization>,
    name: &str,
    status: &str,
    reason: &str,
) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let now = ready(tasks, name).await;
        if let Some((s, r, m)) = &now
            && s == status
            && r == reason
        {
            return m.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "task {name}: Ready is not {status}/{reason} within a minute: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A connection status's condition `type_` as (status, reason).
fn condition_of(status: &DirectoryConnectionStatus, type_: &str) -> Option<(String, String)> {
    let c = status.conditions.iter().find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone()))
}

/// Waits until the namespaced connection's Ready is `status`/`reason`; returns its status.
async fn wait_connection(
    api: &Api<DirectoryConnection>,
    name: &str,
    status: &str,
    reason: &str,
) -> DirectoryConnectionStatus {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let wanted = Some((status.to_owned(), reason.to_owned()));
    loop {
        let found = api.get(name).await.ok().and_then(|c| c.status);
        if let Some(s) = found
            .as_ref()
            .filter(|s| condition_of(s, "Ready") == wanted)
        {
            return s.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "connection {name}: Ready is not {status}/{reason} within a minute: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Secret reads (get, list, watch) in namespace `ns` recorded by the audit log, as (verb, name).
fn secret_reads(ns: &str) -> Vec<(String, String)> {
    let log = std::fs::read_to_string(env::kube().audit_log).unwrap_or_default();
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|e| {
            e["objectRef"]["resource"] == "secrets"
                && e["objectRef"]["namespace"] == ns
                && matches!(e["verb"].as_str(), Some("get" | "list" | "watch"))
        })
        .map(|e| {
            let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
            (text(&e["verb"]), text(&e["objectRef"]["name"]))
        })
        .collect()
}

#[tokio::test]
async fn a_cluster_connection_serves_only_the_namespaces_it_allows() {
    let Scenario {
        client,
        ns: home,
        base,
        ..
    } = Scenario::new("e2e-conn-home").await;
    let (a, b, c) = (
        TestNamespace::new(&client, "e2e-conn-a").await,
        TestNamespace::new(&client, "e2e-conn-b").await,
        TestNamespace::new(&client, "e2e-conn-c").await,
    );
    let name = format!("samba-{}", home.name);
    let connections: Api<ClusterDirectoryConnection> = Api::all(client.clone());
    let mut spec = samba_server(&env::samba().ldaps_url);
    // `a` by name, `b` by a label this test gives it.
    let label = serde_json::json!({"e2e.usersync.io/directory": home.name});
    spec["allowedNamespaces"] = serde_json::json!({
        "names": [a.name], "selector": {"matchLabels": label},
    });
    // Named, not left to the operator's default: the other tests' operators in this cluster check
    // every cluster connection too, each with a default namespace of its own. (The default, the
    // operator's namespace, is what the node tests use.)
    spec["secretNamespace"] = home.name.clone().into();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let labelled = serde_json::json!({"metadata": {"labels": label}});
    namespaces
        .patch(&b.name, &PatchParams::default(), &Patch::Merge(&labelled))
        .await
        .expect("b labelled");
    let connection: ClusterDirectoryConnection = serde_json::from_value(serde_json::json!({
        "apiVersion": "usersync.io/v1alpha1", "kind": "ClusterDirectoryConnection",
        "metadata": {"name": name}, "spec": spec,
    }))
    .expect("connection");
    connections
        .create(&PostParams::default(), &connection)
        .await
        .expect("cluster connection created");
    let operator = InProcess {
        namespaces: vec![
            home.name.clone(),
            a.name.clone(),
            b.name.clone(),
            c.name.clone(),
        ],
        connection_namespace: home.name.clone(),
        secret_namespaces: Some(vec![home.name.clone()]),
        ..InProcess::watching(&home.name)
    }
    .start(&client);
    let tasks =
        |ns: &TestNamespace| Api::<UserSynchronization>::namespaced(client.clone(), &ns.name);
    for ns in [&a, &b, &c] {
        let task = task_through("corp", "ClusterDirectoryConnection", &name, &base);
        tasks(ns)
            .create(&PostParams::default(), &task)
            .await
            .expect("task");
    }
    for ns in [&a, &b] {
        wait_ready(&tasks(ns), "corp", "True", "Synced").await;
        let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);
        let synced = user_groups(&groups).await;
        assert!(
            synced.iter().any(|g| g.spec.display_name == "Devs"),
            "{} has Devs",
            ns.name
        );
    }
    let refused = wait_ready(&tasks(&c), "corp", "False", "ConnectionNotAllowed").await;
    assert!(
        refused.contains(&c.name) && refused.contains(&name),
        "{refused}"
    );
    let stalled = tasks(&c)
        .get("corp")
        .await
        .expect("task")
        .status
        .expect("status");
    let stalled = stalled
        .conditions
        .iter()
        .find(|c| c.type_ == "Stalled")
        .expect("Stalled");
    assert_eq!(stalled.status, "True");
    let groups_c: Api<UserGroup> = Api::namespaced(client.clone(), &c.name);
    assert!(
        user_groups(&groups_c).await.is_empty(),
        "nothing synced into {}",
        c.name
    );
    // Labelled into the selector, `c` is served from the next look at its task on.
    namespaces
        .patch(&c.name, &PatchParams::default(), &Patch::Merge(&labelled))
        .await
        .expect("c labelled");
    wait_ready(&tasks(&c), "corp", "True", "Synced").await;

    let status = connections
        .get(&name)
        .await
        .expect("connection")
        .status
        .expect("status");
    assert_eq!(
        condition_of(&status, "Ready"),
        Some(("True".into(), "Checked".into()))
    );
    for stage in ["Reachable", "TLSVerified", "BindAccepted"] {
        assert_eq!(
            condition_of(&status, stage).map(|c| c.0),
            Some("True".into()),
            "{stage}"
        );
    }
    let server = status.server.expect("what the server offers");
    assert_eq!(server.vendor.as_deref(), Some("Samba"));
    assert_eq!(server.change_feed, "USNChanged");
    let domain = env::samba().base_dn.to_lowercase();
    assert!(
        server
            .naming_contexts
            .iter()
            .any(|n| n.to_lowercase() == domain),
        "{server:?}"
    );

    // The connection's Secrets were read where they live, only they, and no Secret anywhere else.
    let read = secret_reads(&home.name);
    assert!(!read.is_empty(), "the audit log records Secret reads");
    assert!(read.iter().all(|(verb, _)| verb == "get"), "{read:?}");
    let names: BTreeSet<&str> = read.iter().map(|(_, name)| name.as_str()).collect();
    assert_eq!(names, BTreeSet::from(["bind", "ca"]));
    for ns in [&a, &b, &c] {
        assert_eq!(secret_reads(&ns.name), [], "Secret reads in {}", ns.name);
    }
    operator.abort();
    let _ = connections.delete(&name, &DeleteParams::default()).await;
}

/// A ServiceAccount `name` in `ns` that may do everything with UserSynchronizations and nothing
/// else: a task author.
async fn task_author(admin: &kube::Client, ns: &str, name: &str) -> kube::Client {
    let rules = vec![rule("usersync.io", &["usersynchronizations"], &["*"])];
    account_with_rules(admin, ns, name, rules).await;
    service_account_client(admin, ns, name).await
}

/// A Secret `name` with `username` and `password`, no annotation.
async fn plain_secret(client: &kube::Client, ns: &str, name: &str, username: &str, password: &str) {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        string_data: Some(BTreeMap::from([
            ("username".to_owned(), username.to_owned()),
            ("password".to_owned(), password.to_owned()),
        ])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &secret)
        .await
        .expect("Secret");
}

/// A task `name` whose inline server is `url` (plain LDAP) with the credentials of Secret `secret`.
fn inline_task(name: &str, url: &str, secret: &str, base: &str) -> UserSynchronization {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "usersync.io/v1alpha1", "kind": "UserSynchronization",
        "metadata": {"name": name},
        "spec": {
            "targetGroup": format!("{name}-root"),
            "server": {"type": "LDAP", "urls": [url], "timeoutSeconds": 3,
                       "credentialsSecretRef": {"name": secret},
                       "tls": {"mode": "None", "allowInsecure": true}},
            "directory": {"preset": "OpenLDAP", "baseDN": base},
        },
    }))
    .expect("task")
}

#[tokio::test]
async fn a_task_author_cannot_send_any_credential_to_a_server_of_their_own() {
    let Scenario {
        client, ns, base, ..
    } = Scenario::new("e2e-rogue").await;
    let (user, password) = Server::Samba.credentials();
    plain_secret(&client, &ns.name, "conn-bind", &user, &password).await;
    plain_secret(&client, &ns.name, "other", "other-user", "other-password").await;
    let mut spec = samba_server(&env::samba().ldaps_url);
    spec["credentialsSecretRef"] = serde_json::json!({"name": "conn-bind"});
    let connection: DirectoryConnection = serde_json::from_value(serde_json::json!({
        "apiVersion": "usersync.io/v1alpha1", "kind": "DirectoryConnection",
        "metadata": {"name": "corp"}, "spec": spec,
    }))
    .expect("connection");
    let connections: Api<DirectoryConnection> = Api::namespaced(client.clone(), &ns.name);
    connections
        .create(&PostParams::default(), &connection)
        .await
        .expect("connection created");
    let rogue = hostile::start(Mode::Quiet).await;
    let author = task_author(&client, &ns.name, "author").await;
    // The premise: the author can read no Secret and cannot change the connection.
    let secrets_as_author: Api<Secret> = Api::namespaced(author.clone(), &ns.name);
    assert!(
        secrets_as_author.get("bind").await.is_err(),
        "the author reads no Secret"
    );
    let connection_as_author: Api<DirectoryConnection> = Api::namespaced(author.clone(), &ns.name);
    let redirect = serde_json::json!({"spec": {"urls": [rogue.url]}});
    let changed = connection_as_author
        .patch("corp", &PatchParams::default(), &Patch::Merge(&redirect))
        .await;
    assert!(
        changed.is_err(),
        "the author cannot point the connection elsewhere"
    );

    let operator = InProcess::watching(&ns.name).start(&client);
    let tasks: Api<UserSynchronization> = Api::namespaced(author.clone(), &ns.name);
    // Every Secret of the namespace, the connection's included, named by an inline server that is
    // the rogue listener.
    let tried = ["bind", "ca", "conn-bind", "other"];
    for secret in tried {
        let task = inline_task(&format!("steal-{secret}"), &rogue.url, secret, &base);
        tasks
            .create(&PostParams::default(), &task)
            .await
            .expect("the author creates a task");
    }
    // Nor can a task with no credentials make the operator connect to the listener at all.
    let mut anonymous = inline_task("probe", &rogue.url, "none", &base);
    if let Some(server) = anonymous.spec.server.as_mut() {
        server.credentials_secret_ref = None;
    }
    tasks
        .create(&PostParams::default(), &anonymous)
        .await
        .expect("anonymous task");
    let through = task_through("through", "DirectoryConnection", "corp", &base);
    tasks
        .create(&PostParams::default(), &through)
        .await
        .expect("task through the connection");
    for secret in tried {
        let name = format!("steal-{secret}");
        let message = wait_ready(&tasks, &name, "False", "CredentialsNotAllowed").await;
        assert!(
            message.contains(&rogue.url) && message.contains("kubectl annotate"),
            "{message}"
        );
    }
    wait_ready(&tasks, "probe", "False", "InlineServerNotAllowed").await;
    wait_ready(&tasks, "through", "True", "Synced").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let binds = rogue.binds.lock().expect("binds").clone();
    assert!(
        binds.is_empty(),
        "the rogue listener received binds: {binds:?}"
    );
    assert_eq!(rogue.searches.load(std::sync::atomic::Ordering::Relaxed), 0);

    // The owner of `other` allows the listener: now, and only now, it gets that Secret's bind.
    allow_servers(&client, &ns.name, "other", std::slice::from_ref(&rogue.url)).await;
    eventually(
        Duration::from_secs(60),
        "the opted-in Secret's bind reaches its server",
        || async { !rogue.binds.lock().expect("binds").is_empty() },
    )
    .await;
    wait_ready(&tasks, "steal-other", "True", "Synced").await;
    let binds = rogue.binds.lock().expect("binds").clone();
    let expected = (b"other-user".to_vec(), b"other-password".to_vec());
    assert!(binds.iter().all(|b| *b == expected), "{binds:?}");
    operator.abort();
}

#[tokio::test]
async fn a_connection_reports_a_wrong_password_a_wrong_ca_and_a_server_down_and_so_do_its_tasks() {
    let Scenario {
        client, ns, base, ..
    } = Scenario::new("e2e-conn-health").await;
    let address = proxy::address_of(&env::samba().ldaps_url);
    let mut samba = proxy::start(address).await;
    let port = samba.port;
    let connection: DirectoryConnection = serde_json::from_value(serde_json::json!({
        "apiVersion": "usersync.io/v1alpha1", "kind": "DirectoryConnection",
        "metadata": {"name": "corp"}, "spec": samba_server(&format!("ldaps://127.0.0.1:{port}")),
    }))
    .expect("connection");
    let connections: Api<DirectoryConnection> = Api::namespaced(client.clone(), &ns.name);
    connections
        .create(&PostParams::default(), &connection)
        .await
        .expect("connection created");
    let operator = InProcess {
        connection_check: Duration::from_secs(3),
        ..InProcess::watching(&ns.name)
    }
    .start(&client);
    let tasks: Api<UserSynchronization> = Api::namespaced(client.clone(), &ns.name);
    let task = task_through("corp", "DirectoryConnection", "corp", &base);
    tasks
        .create(&PostParams::default(), &task)
        .await
        .expect("task");
    wait_connection(&connections, "corp", "True", "Checked").await;
    wait_ready(&tasks, "corp", "True", "Synced").await;
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);
    let synced = user_groups(&groups).await.len();
    assert!(synced > 0);

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let set = |name: &'static str, key: &'static str, value: String| {
        let secrets = secrets.clone();
        async move {
            let patch = serde_json::json!({"stringData": {key: value}});
            secrets
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .expect("Secret patched");
        }
    };
    let fixed = || async {
        wait_connection(&connections, "corp", "True", "Checked").await;
        wait_ready(&tasks, "corp", "True", "Synced").await;
    };

    set("bind", "password", "not-the-password".into()).await;
    let status = wait_connection(&connections, "corp", "False", "InvalidCredentials").await;
    assert_eq!(
        condition_of(&status, "BindAccepted").map(|c| c.0),
        Some("False".into())
    );
    assert_eq!(
        condition_of(&status, "Reachable").map(|c| c.0),
        Some("True".into())
    );
    let message = wait_ready(&tasks, "corp", "False", "ConnectionNotReady").await;
    assert!(message.contains("InvalidCredentials"), "{message}");
    set("bind", "password", Server::Samba.credentials().1).await;
    fixed().await;

    let other_ca = std::fs::read_to_string(env::slapd().ca_file).expect("another CA");
    set("ca", "ca.crt", other_ca).await;
    let status = wait_connection(&connections, "corp", "False", "CertificateUntrusted").await;
    assert_eq!(
        condition_of(&status, "TLSVerified").map(|c| c.0),
        Some("False".into())
    );
    assert_eq!(
        condition_of(&status, "BindAccepted").map(|c| c.0),
        Some("Unknown".into())
    );
    let message = wait_ready(&tasks, "corp", "False", "ConnectionNotReady").await;
    assert!(message.contains("CertificateUntrusted"), "{message}");
    set(
        "ca",
        "ca.crt",
        std::fs::read_to_string(env::samba().ca_file).expect("CA"),
    )
    .await;
    fixed().await;

    drop(samba);
    let status = wait_connection(&connections, "corp", "False", "ServerUnreachable").await;
    assert_eq!(
        condition_of(&status, "Reachable").map(|c| c.0),
        Some("False".into())
    );
    let message = wait_ready(&tasks, "corp", "False", "ConnectionNotReady").await;
    assert!(message.contains("ServerUnreachable"), "{message}");
    samba = proxy::start_at(address, port).await;
    fixed().await;

    // A deleted connection: the task stalls, naming it, and keeps every UserGroup.
    connections
        .delete("corp", &DeleteParams::default())
        .await
        .expect("connection deleted");
    let message = wait_ready(&tasks, "corp", "False", "ConnectionNotFound").await;
    assert!(message.contains("DirectoryConnection corp"), "{message}");
    let task = tasks.get("corp").await.expect("task");
    let stalled = task.status.expect("status").conditions;
    assert!(
        stalled
            .iter()
            .any(|c| c.type_ == "Stalled" && c.status == "True"),
        "{stalled:?}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(user_groups(&groups).await.len(), synced, "nothing removed");
    operator.abort();
    drop(samba);
}
