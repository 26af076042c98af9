//! A directory server and how to bind to it: what a task's `server` and a connection's spec hold.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::DirectoryPreset;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.tls.mode == 'LDAPS' ? self.urls.all(u, u.startsWith('ldaps://')) : self.urls.all(u, u.startsWith('ldap://'))",
     "message": "urls must use ldaps:// with tls.mode LDAPS and ldap:// with StartTLS or None"},
    {"rule": "!has(self.auth) || self.auth != 'NTLM' || has(self.credentialsSecretRef)",
     "message": "auth NTLM needs credentialsSecretRef"},
]))]
pub struct ServerSpec {
    #[serde(rename = "type", default)]
    pub server_type: ServerType,
    /// Servers tried in order until one answers.
    #[schemars(
        length(min = 1, max = 10),
        inner(regex(pattern = r"^ldaps?://[^\s/?#]+/?$"), length(max = 512))
    )]
    pub urls: Vec<String>,
    /// Secret with keys `username` (DOMAIN\user, user@realm or a DN) and `password`. Without it the
    /// bind is anonymous.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<LocalObjectRef>,
    /// How the credentials bind: a simple bind (the default), or NTLM (Active Directory, over TLS).
    #[serde(default)]
    pub auth: BindMethod,
    #[serde(default)]
    pub tls: TlsSpec,
    /// Limit for each LDAP operation.
    #[serde(default = "default_timeout_seconds")]
    #[schemars(range(min = 1, max = 3600))]
    pub timeout_seconds: i32,
}

/// The bind mechanism for `credentialsSecretRef`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum BindMethod {
    /// LDAP simple bind with DOMAIN\user, user@realm or a DN.
    #[default]
    Simple,
    /// SASL GSS-SPNEGO with NTLM; the username is DOMAIN\user or user@realm. The password never
    /// crosses the wire, but the session is not signed, so the server must accept NTLM over TLS.
    #[serde(rename = "NTLM")]
    Ntlm,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ServerType {
    #[default]
    ActiveDirectory,
    /// Any other LDAP server ("Use LDAP instead of Active Directory").
    #[serde(rename = "LDAP")]
    Ldap,
}

impl ServerType {
    /// The preset a task reads this kind of server with when it names none.
    pub fn default_preset(self) -> DirectoryPreset {
        match self {
            ServerType::ActiveDirectory => DirectoryPreset::ActiveDirectory,
            ServerType::Ldap => DirectoryPreset::OpenLdap,
        }
    }

    /// Whether `preset` can read this kind of server: Active Directory has no entryUUID or
    /// nsUniqueId, and other servers no objectGUID. Custom fits either.
    pub fn fits(self, preset: DirectoryPreset) -> bool {
        match (self, preset) {
            (_, DirectoryPreset::Custom) => true,
            (ServerType::ActiveDirectory, p) => p == DirectoryPreset::ActiveDirectory,
            (ServerType::Ldap, p) => p != DirectoryPreset::ActiveDirectory,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.mode != 'None' || (has(self.allowInsecure) && self.allowInsecure)",
     "message": "tls.mode None sends the password in clear text; it needs allowInsecure: true"},
    {"rule": "!(has(self.caSecretRef) && has(self.caConfigMapRef))",
     "message": "caSecretRef and caConfigMapRef are mutually exclusive"},
]))]
pub struct TlsSpec {
    #[serde(default)]
    pub mode: TlsMode,
    /// CA bundle (PEM) to trust instead of the system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<KeyRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_config_map_ref: Option<KeyRef>,
    /// Accept any server certificate. Reported on status as a warning.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Required to use mode None.
    #[serde(default)]
    pub allow_insecure: bool,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum TlsMode {
    #[default]
    #[serde(rename = "LDAPS")]
    Ldaps,
    #[serde(rename = "StartTLS")]
    StartTls,
    /// No encryption at all.
    #[serde(rename = "None")]
    Plaintext,
}

/// A Secret where the server section's references are: the task's namespace, or its connection's.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct LocalObjectRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// A key of a Secret or ConfigMap, where the server section's references are.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct KeyRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[serde(default = "default_ca_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

fn default_timeout_seconds() -> i32 {
    30
}

fn default_ca_key() -> String {
    "ca.crt".to_owned()
}
