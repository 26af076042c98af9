use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ServerSpec;

/// A directory server and the credentials to bind to it, for the tasks of its own namespace. Its
/// Secrets and ConfigMap are in its namespace too. Whoever may create one may send the namespace's
/// Secrets to a server of their choosing: grant it as you grant reading those Secrets.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "usersync.io",
    version = "v1alpha1",
    kind = "DirectoryConnection",
    namespaced,
    shortname = "dirconn",
    status = "DirectoryConnectionStatus",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Server","type":"string","jsonPath":".status.server.url"}"#,
    printcolumn = r#"{"name":"Vendor","type":"string","jsonPath":".status.server.vendor"}"#,
    printcolumn = r#"{"name":"Feed","type":"string","jsonPath":".status.server.changeFeed"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryConnectionSpec {
    #[serde(flatten)]
    pub server: ServerSpec,
}

/// A directory server and the credentials to bind to it, defined once for the whole cluster: its
/// Secrets and ConfigMap stay in one namespace (by default the operator's), and it names the
/// namespaces whose tasks may use it. A task never learns its credentials.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "usersync.io",
    version = "v1alpha1",
    kind = "ClusterDirectoryConnection",
    shortname = "cdirconn",
    status = "DirectoryConnectionStatus",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Server","type":"string","jsonPath":".status.server.url"}"#,
    printcolumn = r#"{"name":"Vendor","type":"string","jsonPath":".status.server.vendor"}"#,
    printcolumn = r#"{"name":"Feed","type":"string","jsonPath":".status.server.changeFeed"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterDirectoryConnectionSpec {
    #[serde(flatten)]
    pub server: ServerSpec,
    /// Namespace of the Secrets and ConfigMap named above; default: the operator's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub secret_namespace: Option<String>,
    /// The namespaces whose tasks may use this connection: those listed and those the selector
    /// matches (an empty selector, `{}`, matches every namespace).
    pub allowed_namespaces: AllowedNamespaces,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "(has(self.names) && size(self.names) > 0) || has(self.selector)",
     "message": "allowedNamespaces needs names or a selector (selector: {} allows every namespace)"},
]))]
pub struct AllowedNamespaces {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000), inner(length(min = 1, max = 63)))]
    pub names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// Which connection a task uses.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct ConnectionRef {
    #[serde(default)]
    pub kind: ConnectionKind,
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ConnectionKind {
    /// In the task's namespace.
    #[default]
    DirectoryConnection,
    ClusterDirectoryConnection,
}

impl ConnectionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionKind::DirectoryConnection => "DirectoryConnection",
            ConnectionKind::ClusterDirectoryConnection => "ClusterDirectoryConnection",
        }
    }
}

/// What the last check of a connection found.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryConnectionStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// kstatus conditions: Ready, Stalled, Reachable, TLSVerified, BindAccepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check_time: Option<Time>,
    /// When the next check is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_check_time: Option<Time>,
    /// What the server that answered offers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerInfo>,
    /// resourceVersions of the Secrets and ConfigMap the last check used; a change checks again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub references_version: Option<String>,
    /// Failed checks in a row; the next check comes sooner while it is not zero.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub consecutive_failures: i32,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// A server's root DSE, as far as a sync cares.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServerInfo {
    /// The URL that answered.
    pub url: String,
    /// `Active Directory`, `Samba`, `OpenLDAP`, `389 Directory Server`, or the server's own
    /// vendorName.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_version: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub naming_contexts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_naming_context: Option<String>,
    /// The change feed incremental runs can follow: `USNChanged`, `Syncrepl` or `None`.
    pub change_feed: String,
}
