//! A task read from a YAML file, with the Secrets and ConfigMaps the file itself holds, so the CLI
//! works without a cluster. Command-line options override what the file says.

use std::path::{Path, PathBuf};

use k8s_openapi::jiff::Timestamp;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use secrecy::SecretString;

use crate::api::UserSynchronization;
use crate::directory::settings::Material;
use crate::run::RunError;
use crate::run::resolve::{Given, InObjects, resolve};
use crate::run::validate::{Checked, validate};

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

#[derive(clap::Args)]
pub struct TaskArgs {
    /// YAML file with a UserSynchronization (and, optionally, its Secrets and ConfigMaps).
    #[arg(long, short = 'f')]
    pub file: PathBuf,
    #[command(flatten)]
    pub overrides: Overrides,
    /// Ask Active Directory for members in explicit ranges of this size.
    #[arg(long, value_name = "N")]
    pub member_range: Option<usize>,
}

/// The task file's task, validated, with its credentials and CA resolved from the options and the
/// file's own objects: the steps before the directory is read.
pub async fn prepare(args: &TaskArgs) -> Result<(TaskFile, Checked, Material), String> {
    let file = TaskFile::load(&args.file)?;
    let failed = |e: RunError| format!("{e} ({})", e.reason());
    let checked =
        validate(&file.task.spec, Timestamp::now().as_second()).map_err(|e| failed(e.into()))?;
    let given = args.overrides.given()?;
    let material = resolve(&file.task.spec, &file.references(), given)
        .await
        .map_err(|e| failed(e.into()))?;
    Ok((file, checked, material))
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

    /// The file's Secrets and ConfigMaps, where the task's references are looked up.
    pub fn references(&self) -> InObjects<'_> {
        InObjects {
            secrets: &self.secrets,
            config_maps: &self.config_maps,
        }
    }
}

impl Overrides {
    /// What the options give directly; it takes precedence over the file's objects.
    pub fn given(&self) -> Result<Given, String> {
        let password = match (&self.password_env, &self.password_file) {
            (Some(var), _) => Some(
                std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))?,
            ),
            (None, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?
                    .trim_end_matches(['\n', '\r'])
                    .to_owned(),
            ),
            (None, None) => None,
        };
        let ca_pem = match &self.ca_file {
            Some(path) => Some(
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            ),
            None => None,
        };
        Ok(Given {
            username: self.username.clone(),
            password: password.map(SecretString::from),
            ca_pem,
        })
    }
}
