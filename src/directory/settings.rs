//! From a task's `server` section and the material its Secrets hold to [`ServerSettings`].

use std::time::Duration;

use super::connect::{Credentials, ServerSettings};
use super::error::DirectoryError;
use super::tls::Trust;
use crate::api::{ServerSpec, TlsMode};

/// Secret material a task refers to, already fetched (from the cluster, or from files for the CLI).
#[derive(Clone, Debug, Default)]
pub struct Material {
    pub credentials: Option<Credentials>,
    /// PEM CA bundle from `tls.caSecretRef` or `tls.caConfigMapRef`.
    pub ca_pem: Option<Vec<u8>>,
}

pub fn server_settings(
    server: &ServerSpec,
    material: Material,
) -> Result<ServerSettings, DirectoryError> {
    let tls = &server.tls;
    if tls.mode == TlsMode::Plaintext && !tls.allow_insecure {
        return Err(DirectoryError::InvalidSettings(
            "tls.mode None needs tls.allowInsecure: true".into(),
        ));
    }
    let trust = if tls.insecure_skip_verify {
        Trust::SkipVerify
    } else {
        match material.ca_pem {
            Some(pem) => Trust::CaBundle(pem),
            None if tls.ca_secret_ref.is_some() || tls.ca_config_map_ref.is_some() => {
                return Err(DirectoryError::InvalidSettings(
                    "the CA bundle the task names was not found".into(),
                ));
            }
            None => Trust::SystemRoots,
        }
    };
    let seconds = u64::try_from(server.timeout_seconds)
        .ok()
        .filter(|&s| s > 0)
        .unwrap_or(30);
    Ok(ServerSettings {
        urls: server.urls.clone(),
        tls_mode: tls.mode,
        trust,
        timeout: Duration::from_secs(seconds),
        credentials: material.credentials,
        auth: server.auth,
    })
}
