//! Step 2 of a run: the Secrets and ConfigMaps a task references, resolved into the bind credentials
//! and CA bundle the directory step needs. The operator looks them up in the task's namespace (by
//! `get`: it needs no right to list or watch Secrets); the CLI in the objects its task file holds,
//! with values given on its command line taking precedence.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use secrecy::SecretString;

use super::api_error::ApiError;
use crate::api::UserSynchronizationSpec;
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
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl ResolveError {
    pub fn reason(&self) -> &'static str {
        match self {
            ResolveError::MissingReference { .. } | ResolveError::Incomplete(_) => {
                "ReferenceNotFound"
            }
            ResolveError::Api(_) => "KubernetesAPIError",
        }
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, ResolveError::Api(_))
    }
}

/// Where a task's references are looked up.
pub trait References {
    fn secret(&self, name: &str) -> impl Future<Output = Result<Option<Secret>, ApiError>> + Send;
    fn config_map(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<ConfigMap>, ApiError>> + Send;
}

/// The task's namespace in the cluster.
pub struct InCluster {
    pub client: kube::Client,
    pub namespace: String,
}

impl References for InCluster {
    async fn secret(&self, name: &str) -> Result<Option<Secret>, ApiError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        api.get_opt(name)
            .await
            .map_err(ApiError::while_("reading a referenced Secret"))
    }

    async fn config_map(&self, name: &str) -> Result<Option<ConfigMap>, ApiError> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        api.get_opt(name)
            .await
            .map_err(ApiError::while_("reading a referenced ConfigMap"))
    }
}

/// Objects at hand, such as those a task file holds.
pub struct InObjects<'a> {
    pub secrets: &'a [Secret],
    pub config_maps: &'a [ConfigMap],
}

impl References for InObjects<'_> {
    async fn secret(&self, name: &str) -> Result<Option<Secret>, ApiError> {
        let named = |s: &&Secret| s.metadata.name.as_deref() == Some(name);
        Ok(self.secrets.iter().find(named).cloned())
    }

    async fn config_map(&self, name: &str) -> Result<Option<ConfigMap>, ApiError> {
        let named = |c: &&ConfigMap| c.metadata.name.as_deref() == Some(name);
        Ok(self.config_maps.iter().find(named).cloned())
    }
}

/// Values given directly, which take precedence over the task's references.
#[derive(Debug, Default)]
pub struct Given {
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub ca_pem: Option<Vec<u8>>,
}

/// The credentials and CA bundle for the task.
pub async fn resolve(
    spec: &UserSynchronizationSpec,
    references: &impl References,
    given: Given,
) -> Result<Material, ResolveError> {
    let credentials = credentials(spec, references, given.username, given.password).await?;
    let ca_pem = match given.ca_pem {
        Some(pem) => Some(pem),
        None => ca_bundle(spec, references).await?,
    };
    Ok(Material {
        credentials,
        ca_pem,
    })
}

async fn credentials(
    spec: &UserSynchronizationSpec,
    references: &impl References,
    username: Option<String>,
    password: Option<SecretString>,
) -> Result<Option<Credentials>, ResolveError> {
    let Some(r) = &spec.server.credentials_secret_ref else {
        return match (username, password) {
            (None, None) => Ok(None),
            (Some(username), Some(password)) => Ok(Some(Credentials { username, password })),
            (None, Some(_)) => Err(ResolveError::Incomplete("bind name")),
            (Some(_), None) => Err(ResolveError::Incomplete("password")),
        };
    };
    let secret = match (&username, &password) {
        (Some(_), Some(_)) => None,
        _ => references.secret(&r.name).await?,
    };
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
    spec: &UserSynchronizationSpec,
    references: &impl References,
) -> Result<Option<Vec<u8>>, ResolveError> {
    let tls = &spec.server.tls;
    if let Some(r) = &tls.ca_secret_ref {
        let secret = references.secret(&r.name).await?;
        let value = secret.as_ref().and_then(|s| secret_value(s, &r.key));
        return value
            .map(Some)
            .ok_or_else(|| missing("Secret", &r.name, &r.key, secret.is_some()));
    }
    if let Some(r) = &tls.ca_config_map_ref {
        let map = references.config_map(&r.name).await?;
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

/// The resourceVersions of the Secrets and ConfigMap a task names, as one string. A change means
/// rotated credentials or a new CA: reason enough to run again.
pub async fn references_version(
    spec: &UserSynchronizationSpec,
    references: &impl References,
) -> Result<String, ApiError> {
    let mut parts = Vec::new();
    let tls = &spec.server.tls;
    let secrets = [
        spec.server.credentials_secret_ref.as_ref().map(|r| &r.name),
        tls.ca_secret_ref.as_ref().map(|r| &r.name),
    ];
    for name in secrets.into_iter().flatten() {
        let found = references.secret(name).await?;
        let version = found.and_then(|s| s.metadata.resource_version);
        parts.push(format!("secret/{name}@{}", version.unwrap_or_default()));
    }
    if let Some(r) = &tls.ca_config_map_ref {
        let found = references.config_map(&r.name).await?;
        let version = found.and_then(|m| m.metadata.resource_version);
        parts.push(format!(
            "configmap/{}@{}",
            r.name,
            version.unwrap_or_default()
        ));
    }
    Ok(parts.join(","))
}
