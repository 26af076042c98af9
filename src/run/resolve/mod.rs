//! Step 3 of a run: what the task reads through, resolved into a server, bind credentials and a CA
//! bundle. A task names its server inline or a connection; the credentials come from the Secret
//! the server section names, in the namespace its owner keeps them in. This step decides who may
//! use what before any credential leaves the cluster:
//!
//! - a ClusterDirectoryConnection serves only the namespaces it allows;
//! - an inline server's credentials Secret must list the server's URLs in its
//!   `usersync.io/allowed-servers` annotation, which only someone who may write the Secret can set;
//! - Secrets and ConfigMaps are read only in the namespaces the operator was told it may read.
//!
//! The CLI resolves the same way from its files, with the checks off: the files are its user's own.

mod allowed;
mod references;

use k8s_openapi::api::core::v1::Secret;
use secrecy::SecretString;

pub use allowed::{namespace_allowed, servers_not_allowed};
pub use references::{Connection, InCluster, InObjects, References};

use super::api_error::ApiError;
use super::conditions;
use super::validate::{InvalidSpec, preset_fits, server as check_server};
use crate::api::{ALLOWED_SERVERS_ANNOTATION, ConnectionRef, ServerSpec, UserSynchronizationSpec};
use crate::directory::connect::Credentials;
use crate::directory::settings::Material;

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{kind} {name} (key {key}) is missing: {detail}")]
    MissingReference {
        kind: &'static str,
        name: String,
        key: String,
        detail: &'static str,
    },
    /// Values given directly (the CLI's options) that leave the bind incomplete.
    #[error("no {0} was given and the task names no credentials Secret")]
    Incomplete(&'static str),
    #[error("{kind} {name} does not exist")]
    ConnectionNotFound { kind: &'static str, name: String },
    #[error(
        "ClusterDirectoryConnection {name} does not allow namespace {namespace} (see its spec.allowedNamespaces)"
    )]
    NamespaceNotAllowed { name: String, namespace: String },
    #[error("{kind} {name}: {invalid}")]
    InvalidConnection {
        kind: &'static str,
        name: String,
        invalid: InvalidSpec,
    },
    #[error("{kind} {name} is not ready: {reason}: {message}")]
    ConnectionNotReady {
        kind: &'static str,
        name: String,
        reason: String,
        message: String,
    },
    #[error(
        "Secret {secret} does not allow its credentials to be sent to {}; whoever owns it can allow that with `kubectl annotate secret {secret} {ALLOWED_SERVERS_ANNOTATION}=\"{}\"`, or the task can use a DirectoryConnection", .urls.join(", "), .urls.join(",")
    )]
    ServersNotAllowed { secret: String, urls: Vec<String> },
    #[error("{0}")]
    InlineServerNotAllowed(&'static str),
    #[error("the operator reads Secrets and ConfigMaps only in {}; {namespace} is not one of them", .allowed.join(", "))]
    NamespaceNotReadable {
        namespace: String,
        allowed: Vec<String>,
    },
    #[error("spec: set exactly one of server and connectionRef")]
    NoServer,
    #[error("{0} (the server's type comes from the connection)")]
    PresetDoesNotFit(InvalidSpec),
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl ResolveError {
    pub fn reason(&self) -> &'static str {
        match self {
            ResolveError::MissingReference { .. } | ResolveError::Incomplete(_) => {
                "ReferenceNotFound"
            }
            ResolveError::ConnectionNotFound { .. } => "ConnectionNotFound",
            ResolveError::NamespaceNotAllowed { .. } => "ConnectionNotAllowed",
            ResolveError::InvalidConnection { .. } => "InvalidConnection",
            ResolveError::ConnectionNotReady { .. } => "ConnectionNotReady",
            ResolveError::ServersNotAllowed { .. } => "CredentialsNotAllowed",
            ResolveError::NamespaceNotReadable { .. } => "ReferenceNotAllowed",
            ResolveError::InlineServerNotAllowed(_) => "InlineServerNotAllowed",
            ResolveError::NoServer | ResolveError::PresetDoesNotFit(_) => "InvalidSpec",
            ResolveError::Api(_) => "KubernetesAPIError",
        }
    }

    /// A connection that is not ready may become so without a change to the task.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ResolveError::Api(_) | ResolveError::ConnectionNotReady { .. }
        )
    }
}

/// What the operator may read and where, and whether it enforces who may use what.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Where a ClusterDirectoryConnection's Secrets are when it names no namespace.
    pub connection_namespace: String,
    /// The namespaces whose Secrets and ConfigMaps may be read; `None`: any.
    pub secret_namespaces: Option<Vec<String>>,
    /// Which inline servers the operator reads.
    pub inline_servers: InlineServers,
    /// The operator enforces; the CLI does not (its files are its user's own).
    pub enforce: bool,
}

/// Which tasks may name a server of their own instead of a connection. Any server a task names is
/// one the operator connects to from inside the cluster, and its failure reasons tell what
/// answers there: a task author who may name any server may map the network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InlineServers {
    /// Those whose credentials Secret allows their URLs: every server named was named by someone
    /// who may write a Secret of the namespace.
    #[default]
    AllowedBySecret,
    /// Also anonymous ones, to any address.
    Any,
    /// None: tasks read through connections only.
    None,
}

impl InlineServers {
    /// Whether the operator reads `server` for a task, or why not.
    fn check(self, server: &ServerSpec) -> Result<(), ResolveError> {
        match (self, &server.credentials_secret_ref) {
            (InlineServers::None, _) => Err(ResolveError::InlineServerNotAllowed(
                "this operator reads directories through connections only (--inline-servers none): name a DirectoryConnection or ClusterDirectoryConnection in connectionRef",
            )),
            (InlineServers::AllowedBySecret, None) => Err(ResolveError::InlineServerNotAllowed(
                "an inline server needs a credentials Secret that allows its URLs (--inline-servers allowed-by-secret); for an anonymous bind, use a DirectoryConnection",
            )),
            _ => Ok(()),
        }
    }
}

impl Policy {
    /// The CLI's: the files' objects are used as they are.
    pub fn files() -> Policy {
        Policy::default()
    }

    /// Whether runs may read Secrets and ConfigMaps in `namespace`.
    pub fn reads_in(&self, namespace: &str) -> bool {
        self.may_read(namespace).is_ok()
    }

    fn may_read(&self, namespace: &str) -> Result<(), ResolveError> {
        match &self.secret_namespaces {
            Some(allowed) if self.enforce && !allowed.iter().any(|n| n == namespace) => {
                Err(ResolveError::NamespaceNotReadable {
                    namespace: namespace.to_owned(),
                    allowed: allowed.clone(),
                })
            }
            _ => Ok(()),
        }
    }
}

/// Values given directly, which take precedence over the task's references.
#[derive(Debug, Default)]
pub struct Given {
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub ca_pem: Option<Vec<u8>>,
}

/// The server a task reads and what to bind and trust it with.
#[derive(Debug)]
pub struct Resolved {
    pub server: ServerSpec,
    pub material: Material,
    /// The connection it came through, as `Kind name`; `None` for an inline server.
    pub via: Option<String>,
}

/// Where a server section's references are, and whether its credentials Secret must opt in.
pub struct Origin {
    pub server: ServerSpec,
    pub namespace: String,
    pub inline: bool,
    pub via: Option<String>,
}

/// The task's server, credentials and CA bundle; `namespace` is the task's.
pub async fn resolve(
    namespace: &str,
    spec: &UserSynchronizationSpec,
    references: &impl References,
    given: Given,
    policy: &Policy,
) -> Result<Resolved, ResolveError> {
    let origin = origin(namespace, spec, references, policy).await?;
    preset_fits(origin.server.server_type, spec).map_err(ResolveError::PresetDoesNotFit)?;
    let material = material(&origin, references, given, policy).await?;
    Ok(Resolved {
        server: origin.server,
        material,
        via: origin.via,
    })
}

/// Where the task's server section is: its own spec, or the connection it names (which must exist,
/// serve the task's namespace, be valid and not known to be broken).
pub async fn origin(
    namespace: &str,
    spec: &UserSynchronizationSpec,
    references: &impl References,
    policy: &Policy,
) -> Result<Origin, ResolveError> {
    let Some(r) = &spec.connection_ref else {
        let origin = inline(namespace, spec).ok_or(ResolveError::NoServer)?;
        if policy.enforce {
            policy.inline_servers.check(&origin.server)?;
        }
        return Ok(origin);
    };
    let connection = find_connection(namespace, r, references, policy).await?;
    let kind = connection.kind.as_str();
    let invalid_connection = |invalid| ResolveError::InvalidConnection {
        kind,
        name: connection.name.clone(),
        invalid,
    };
    check_server(&connection.server, "").map_err(invalid_connection)?;
    if let Some((reason, message)) = broken(&connection) {
        return Err(ResolveError::ConnectionNotReady {
            kind,
            name: connection.name.clone(),
            reason,
            message,
        });
    }
    Ok(Origin {
        namespace: connection_namespace(&connection, policy),
        via: Some(format!("{kind} {}", connection.name)),
        server: connection.server,
        inline: false,
    })
}

fn inline(namespace: &str, spec: &UserSynchronizationSpec) -> Option<Origin> {
    Some(Origin {
        server: spec.server.clone()?,
        namespace: namespace.to_owned(),
        inline: true,
        via: None,
    })
}

async fn find_connection(
    namespace: &str,
    r: &ConnectionRef,
    references: &impl References,
    policy: &Policy,
) -> Result<Connection, ResolveError> {
    let connection = references.connection(namespace, r).await?.ok_or_else(|| {
        ResolveError::ConnectionNotFound {
            kind: r.kind.as_str(),
            name: r.name.clone(),
        }
    })?;
    if let (Some(allowed), true) = (&connection.allowed, policy.enforce) {
        let labels = match allowed.selector {
            Some(_) => references.namespace_labels(namespace).await?,
            None => None,
        };
        if !namespace_allowed(allowed, namespace, labels.as_ref()) {
            return Err(ResolveError::NamespaceNotAllowed {
                name: connection.name,
                namespace: namespace.to_owned(),
            });
        }
    }
    Ok(connection)
}

/// Where a connection's Secrets and ConfigMap are.
pub fn connection_namespace(connection: &Connection, policy: &Policy) -> String {
    connection
        .secret_namespace
        .clone()
        .unwrap_or_else(|| policy.connection_namespace.clone())
}

/// The reason and message of a connection whose last check of its current spec failed.
pub fn broken(connection: &Connection) -> Option<(String, String)> {
    let status = connection.status.as_ref()?;
    if status.observed_generation != connection.generation {
        return None;
    }
    let ready = conditions::find(&status.conditions, "Ready")?;
    (ready.status == "False").then(|| (ready.reason.clone(), ready.message.clone()))
}

/// The credentials and CA bundle a server section names, from `origin.namespace`.
pub async fn material(
    origin: &Origin,
    references: &impl References,
    given: Given,
    policy: &Policy,
) -> Result<Material, ResolveError> {
    let credentials =
        credentials(origin, references, given.username, given.password, policy).await?;
    let ca_pem = match given.ca_pem {
        Some(pem) => Some(pem),
        None => ca_bundle(origin, references, policy).await?,
    };
    Ok(Material {
        credentials,
        ca_pem,
    })
}

async fn credentials(
    origin: &Origin,
    references: &impl References,
    username: Option<String>,
    password: Option<SecretString>,
    policy: &Policy,
) -> Result<Option<Credentials>, ResolveError> {
    let Some(r) = &origin.server.credentials_secret_ref else {
        return match (username, password) {
            (None, None) => Ok(None),
            (Some(username), Some(password)) => Ok(Some(Credentials { username, password })),
            (None, Some(_)) => Err(ResolveError::Incomplete("bind name")),
            (Some(_), None) => Err(ResolveError::Incomplete("password")),
        };
    };
    let secret = match (&username, &password) {
        (Some(_), Some(_)) => None,
        _ => {
            policy.may_read(&origin.namespace)?;
            references.secret(&origin.namespace, &r.name).await?
        }
    };
    if let (Some(secret), true) = (&secret, origin.inline && policy.enforce) {
        let refused = servers_not_allowed(secret, &origin.server.urls);
        if !refused.is_empty() {
            return Err(ResolveError::ServersNotAllowed {
                secret: r.name.clone(),
                urls: refused,
            });
        }
    }
    let value = |key: &str| -> Result<String, ResolveError> {
        secret
            .as_ref()
            .and_then(|s| secret_value(s, key))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .ok_or_else(|| missing("Secret", &r.name, key, secret.is_some()))
    };
    let username = match username {
        Some(username) => username,
        None => value("username")?,
    };
    let password = match password {
        Some(password) => password,
        None => SecretString::from(value("password")?),
    };
    Ok(Some(Credentials { username, password }))
}

async fn ca_bundle(
    origin: &Origin,
    references: &impl References,
    policy: &Policy,
) -> Result<Option<Vec<u8>>, ResolveError> {
    let (tls, namespace) = (&origin.server.tls, origin.namespace.as_str());
    if let Some(r) = &tls.ca_secret_ref {
        policy.may_read(namespace)?;
        let secret = references.secret(namespace, &r.name).await?;
        let value = secret.as_ref().and_then(|s| secret_value(s, &r.key));
        return value
            .map(Some)
            .ok_or_else(|| missing("Secret", &r.name, &r.key, secret.is_some()));
    }
    if let Some(r) = &tls.ca_config_map_ref {
        policy.may_read(namespace)?;
        let map = references.config_map(namespace, &r.name).await?;
        let value = map
            .as_ref()
            .and_then(|m| m.data.as_ref())
            .and_then(|d| d.get(&r.key))
            .map(|v| v.as_bytes().to_vec());
        return value
            .map(Some)
            .ok_or_else(|| missing("ConfigMap", &r.name, &r.key, map.is_some()));
    }
    Ok(None)
}

/// A Secret's value for `key`. `stringData` wins over `data`, as when the apiserver merges them on
/// write (objects read back from the cluster only have `data`; files may have either).
pub fn secret_value(secret: &Secret, key: &str) -> Option<Vec<u8>> {
    secret
        .string_data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|s| s.as_bytes().to_vec())
        .or_else(|| {
            secret
                .data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(|b| b.0.clone())
        })
}

fn missing(kind: &'static str, name: &str, key: &str, object_exists: bool) -> ResolveError {
    ResolveError::MissingReference {
        kind,
        name: name.to_owned(),
        key: key.to_owned(),
        detail: if object_exists {
            "the key is not set"
        } else {
            "the object does not exist"
        },
    }
}

/// What a task reads through, as a look at it between runs sees it.
#[derive(Debug, Default)]
pub struct Looked {
    /// The versions of the task's connection (generation and readiness) and of the Secrets and
    /// ConfigMap of its server section, as one string. A change means a new connection, one that
    /// recovered or broke, rotated credentials or a new CA: reason enough to run again.
    pub version: String,
    /// The server section accepts any certificate (reported as a warning).
    pub insecure_skip_verify: bool,
}

/// A look at what the task reads through, without resolving it.
pub async fn look(
    namespace: &str,
    spec: &UserSynchronizationSpec,
    references: &impl References,
    policy: &Policy,
) -> Result<Looked, ApiError> {
    let mut parts = Vec::new();
    let origin = match &spec.connection_ref {
        None => match inline(namespace, spec) {
            Some(origin) => origin,
            None => return Ok(Looked::default()),
        },
        Some(r) => {
            let found = references.connection(namespace, r).await?;
            let Some(connection) = found else {
                parts.push(format!("{}/{}@none", r.kind.as_str(), r.name));
                return Ok(Looked {
                    version: parts.join(","),
                    insecure_skip_verify: false,
                });
            };
            let ready = broken(&connection).map_or("ok", |_| "broken");
            let generation = connection.generation.unwrap_or_default();
            // A namespace labelled into (or out of) a connection's selector changes nothing on the
            // connection: the verdict is part of the version.
            let serves = match &connection.allowed {
                Some(allowed) if allowed.selector.is_some() => {
                    let labels = references.namespace_labels(namespace).await?;
                    if namespace_allowed(allowed, namespace, labels.as_ref()) {
                        ":serves"
                    } else {
                        ":refuses"
                    }
                }
                _ => "",
            };
            parts.push(format!(
                "{}/{}@{generation}:{ready}{serves}",
                r.kind.as_str(),
                r.name
            ));
            Origin {
                namespace: connection_namespace(&connection, policy),
                server: connection.server,
                inline: false,
                via: None,
            }
        }
    };
    parts.extend(object_versions(&origin, references, policy).await?);
    Ok(Looked {
        version: parts.join(","),
        insecure_skip_verify: origin.server.tls.insecure_skip_verify,
    })
}

/// `kind/name@resourceVersion` of each Secret and ConfigMap a server section names, where the
/// operator may read them.
pub async fn object_versions(
    origin: &Origin,
    references: &impl References,
    policy: &Policy,
) -> Result<Vec<String>, ApiError> {
    let mut parts = Vec::new();
    if policy.may_read(&origin.namespace).is_err() {
        return Ok(parts);
    }
    let (server, namespace) = (&origin.server, origin.namespace.as_str());
    let secrets = [
        server.credentials_secret_ref.as_ref().map(|r| &r.name),
        server.tls.ca_secret_ref.as_ref().map(|r| &r.name),
    ];
    for name in secrets.into_iter().flatten() {
        let found = references.secret(namespace, name).await?;
        let version = found.and_then(|s| s.metadata.resource_version);
        parts.push(format!("secret/{name}@{}", version.unwrap_or_default()));
    }
    if let Some(r) = &server.tls.ca_config_map_ref {
        let found = references.config_map(namespace, &r.name).await?;
        let version = found.and_then(|m| m.metadata.resource_version);
        parts.push(format!(
            "configmap/{}@{}",
            r.name,
            version.unwrap_or_default()
        ));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests;
