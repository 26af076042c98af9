//! The bind credentials and CA bundle a task names, read from its namespace.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use secrecy::SecretString;

use super::error::{ControllerError, kube};
use crate::api::UserSynchronizationSpec;
use crate::directory::connect::Credentials;
use crate::directory::settings::Material;

pub async fn fetch(
    client: &kube::Client,
    namespace: &str,
    spec: &UserSynchronizationSpec,
) -> Result<Material, ControllerError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let tls = &spec.server.tls;
    let credentials = match &spec.server.credentials_secret_ref {
        None => None,
        Some(r) => {
            let secret = secrets
                .get_opt(&r.name)
                .await
                .map_err(kube("reading the credentials Secret"))?;
            let value = |key: &str| -> Result<String, ControllerError> {
                secret
                    .as_ref()
                    .and_then(|s| secret_value(s, key))
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .ok_or_else(|| missing("Secret", &r.name, key, secret.is_some()))
            };
            Some(Credentials {
                username: value("username")?,
                password: SecretString::from(value("password")?),
            })
        }
    };
    let ca_pem = if let Some(r) = &tls.ca_secret_ref {
        let secret = secrets
            .get_opt(&r.name)
            .await
            .map_err(kube("reading the CA Secret"))?;
        Some(
            secret
                .as_ref()
                .and_then(|s| secret_value(s, &r.key))
                .ok_or_else(|| missing("Secret", &r.name, &r.key, secret.is_some()))?,
        )
    } else if let Some(r) = &tls.ca_config_map_ref {
        let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        let map = maps
            .get_opt(&r.name)
            .await
            .map_err(kube("reading the CA ConfigMap"))?;
        let value = map
            .as_ref()
            .and_then(|m| m.data.as_ref())
            .and_then(|d| d.get(&r.key))
            .map(|v| v.as_bytes().to_vec());
        Some(value.ok_or_else(|| missing("ConfigMap", &r.name, &r.key, map.is_some()))?)
    } else {
        None
    };
    Ok(Material {
        credentials,
        ca_pem,
    })
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

fn missing(kind: &'static str, name: &str, key: &str, object_exists: bool) -> ControllerError {
    let detail = if object_exists {
        "the key is not set"
    } else {
        "the object does not exist"
    };
    ControllerError::MissingReference {
        kind,
        name: name.to_owned(),
        key: key.to_owned(),
        detail: detail.to_owned(),
    }
}

/// The resourceVersions of the Secrets and ConfigMap a task names, as one string. A change means
/// rotated credentials or a new CA: reason enough to run again. Read with `get` only, so the
/// operator needs no right to list or watch Secrets.
pub async fn references_version(
    client: &kube::Client,
    namespace: &str,
    spec: &UserSynchronizationSpec,
) -> Result<String, ControllerError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let mut parts = Vec::new();
    let tls = &spec.server.tls;
    for name in [
        spec.server.credentials_secret_ref.as_ref().map(|r| &r.name),
        tls.ca_secret_ref.as_ref().map(|r| &r.name),
    ]
    .into_iter()
    .flatten()
    {
        let found = secrets
            .get_opt(name)
            .await
            .map_err(kube("reading a referenced Secret"))?;
        parts.push(format!(
            "secret/{name}@{}",
            found
                .and_then(|s| s.metadata.resource_version)
                .unwrap_or_default()
        ));
    }
    if let Some(r) = &tls.ca_config_map_ref {
        let found = maps
            .get_opt(&r.name)
            .await
            .map_err(kube("reading the CA ConfigMap"))?;
        parts.push(format!(
            "configmap/{}@{}",
            r.name,
            found
                .and_then(|m| m.metadata.resource_version)
                .unwrap_or_default()
        ));
    }
    Ok(parts.join(","))
}
