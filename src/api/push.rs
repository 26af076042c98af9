use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Whether the directory pushes its changes to the task.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushSpec {
    #[serde(default)]
    pub mode: PushMode,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum PushMode {
    /// Keep a search open that the server answers on every change below the base DN (OpenLDAP
    /// syncrepl refreshAndPersist, Active Directory change notifications, 389-DS persistent
    /// search); each change starts a run at once. Where the server offers none, or the operator
    /// holds its limit of such connections, the task runs on its schedule alone.
    #[default]
    Auto,
    /// The task runs on its schedule and its other triggers only.
    Disabled,
}

/// How the directory tells the task of its changes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushStatus {
    /// `Syncrepl`, `ChangeNotification`, `PersistentSearch`, or `None` (the task is polled).
    pub feed: String,
    /// `Connected`, `Connecting`, `Disconnected` (it reconnects with back-off), `NotOffered` (the
    /// server has no push search), `Refused` (the bind or the certificate was rejected; a change
    /// of the task or its Secrets tries again), `FeedLimit` (the operator holds `--max-push-feeds`
    /// of them) or `Disabled`.
    pub reason: String,
    /// The server whose push the task follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Since when the push search has been open without a break.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_since: Option<Time>,
    /// Why the last connection ended, or failed to open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
