//! A task read from a YAML file, with the Secrets and ConfigMaps the file itself holds, so the CLI
//! works without a cluster. Command-line options override what the file says.

use std::path::Path;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use secrecy::SecretString;

use crate::api::{KeyRef, UserSynchronization};
use crate::directory::connect::Credentials;
use crate::directory::settings::Material;

/// Where the password and CA come from when not from the file's own Secrets.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct Overrides {
    /// Bind name (DOMAIN\user, user@realm or a DN); default: the task Secret's `username`.
    #[arg(long)]
    pub username: Option<String>,
    /// Name of an environment variable holding the password.
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
    /// File holding the password (a trailing newline is ignored).
    #[arg(long, value_name = "PATH")]
    pub password_file: Option<std::path::PathBuf>,
    /// PEM CA bundle to trust; default: the task's CA Secret or ConfigMap, if the file holds it.
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<std::path::PathBuf>,
}

pub struct TaskFile {
    pub task: UserSynchronization,
    secrets: Vec<Secret>,
    config_maps: Vec<ConfigMap>,
}

impl TaskFile {
    pub fn load(path: &Path) -> Result<TaskFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut task = None;
        let (mut secrets, mut config_maps) = (Vec::new(), Vec::new());
        for doc in serde_norway::Deserializer::from_str(&text) {
            let value: serde_json::Value = serde::Deserialize::deserialize(doc)
                .map_err(|e| format!("{} is not valid YAML: {e}", path.display()))?;
            let parse_err = |e: serde_json::Error| format!("{}: {e}", path.display());
            match value.get("kind").and_then(|k| k.as_str()) {
                Some("UserSynchronization") if task.is_none() => {
                    task = Some(serde_json::from_value(value).map_err(parse_err)?)
                }
                Some("Secret") => secrets.push(serde_json::from_value(value).map_err(parse_err)?),
                Some("ConfigMap") => {
                    config_maps.push(serde_json::from_value(value).map_err(parse_err)?)
                }
                _ => {}
            }
        }
        let task =
            task.ok_or_else(|| format!("{} holds no UserSynchronization", path.display()))?;
        Ok(TaskFile {
            task,
            secrets,
            config_maps,
        })
    }

    fn secret_value(&self, name: &str, key: &str) -> Option<Vec<u8>> {
        let secret = self
            .secrets
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(name))?;
        crate::controller::material::secret_value(secret, key)
    }

    fn config_map_value(&self, r: &KeyRef) -> Option<Vec<u8>> {
        let map = self
            .config_maps
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(r.name.as_str()))?;
        map.data
            .as_ref()
            .and_then(|d| d.get(&r.key))
            .map(|v| v.as_bytes().to_vec())
    }

    /// Credentials and CA for the task, from the options first and the file's objects second.
    pub fn material(&self, o: &Overrides) -> Result<Material, String> {
        let server = &self.task.spec.server;
        let secret_name = server
            .credentials_secret_ref
            .as_ref()
            .map(|r| r.name.as_str());
        let from_secret = |key: &str| -> Option<String> {
            secret_name
                .and_then(|n| self.secret_value(n, key))
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        };
        let password = match (&o.password_env, &o.password_file) {
            (Some(var), _) => Some(
                std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))?,
            ),
            (None, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?
                    .trim_end_matches(['\n', '\r'])
                    .to_owned(),
            ),
            (None, None) => from_secret("password"),
        };
        let username = o.username.clone().or_else(|| from_secret("username"));
        let credentials = match (username, password) {
            (Some(username), Some(password)) => Some(Credentials {
                username,
                password: SecretString::from(password),
            }),
            (None, None) if secret_name.is_none() => None,
            (None, _) => {
                return Err(
                    "no bind name: give --username or a Secret with `username` in the file".into(),
                );
            }
            (_, None) => {
                return Err(
                    "no password: give --password-env, --password-file or a Secret in the file"
                        .into(),
                );
            }
        };
        let ca_pem = match &o.ca_file {
            Some(path) => Some(
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            ),
            None => {
                let tls = &server.tls;
                tls.ca_secret_ref
                    .as_ref()
                    .and_then(|r| self.secret_value(&r.name, &r.key))
                    .or_else(|| {
                        tls.ca_config_map_ref
                            .as_ref()
                            .and_then(|r| self.config_map_value(r))
                    })
            }
        };
        Ok(Material {
            credentials,
            ca_pem,
        })
    }
}
