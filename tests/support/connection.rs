//! Cluster-wide connections for tests.

use kube::api::Api;
use usersync::api::ClusterDirectoryConnection;
use usersync_testbed::env;

/// A ClusterDirectoryConnection to Samba whose `bind` and `ca` Secrets are in `home`, for tasks of
/// `allowed`; its name.
pub async fn cluster_connection(admin: &kube::Client, home: &str, allowed: &str) -> String {
    let name = format!("samba-{home}");
    let connection: ClusterDirectoryConnection = serde_json::from_value(serde_json::json!({
        "apiVersion": "usersync.io/v1alpha1", "kind": "ClusterDirectoryConnection",
        "metadata": {"name": name},
        "spec": {
            "urls": [env::samba().ldaps_url],
            "credentialsSecretRef": {"name": "bind"},
            "tls": {"caSecretRef": {"name": "ca"}},
            "secretNamespace": home,
            "allowedNamespaces": {"names": [allowed]},
        },
    }))
    .expect("connection");
    Api::<ClusterDirectoryConnection>::all(admin.clone())
        .create(&Default::default(), &connection)
        .await
        .expect("cluster connection created");
    name
}
