//! A task read from YAML files, with the connections, Secrets and ConfigMaps the files themselves
//! hold, so the CLI works without a cluster. Command-line options override what the files say.

use std::path::{Path, PathBuf};

use k8s_openapi::jiff::Timestamp;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use secrecy::SecretString;

use crate::api::{ClusterDirectoryConnection, DirectoryConnection, UserSynchronization};
use crate::run::RunError;
use crate::run::resolve::{Connection, Given, InObjects, Policy, Resolved, resolve};
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
    /// YAML file with a UserSynchronization, or a DirectoryConnection or
    /// ClusterDirectoryConnection, and the Secrets and ConfigMaps they name; repeat to read several.
    #[arg(long, short = 'f', required = true)]
    pub file: Vec<PathBuf>,
    #[command(flatten)]
    pub overrides: Overrides,
    /// Ask Active Directory for members in explicit ranges of this size.
    #[arg(long, value_name = "N")]
    pub member_range: Option<usize>,
}

/// The files' task, validated, with its server, credentials and CA resolved from the options and
/// the files' own objects: the steps before the directory is read. `base`, when given, is read
/// instead of the task's baseDN and groups; with it, files that hold a connection and no task are
/// read through that connection.
pub async fn prepare(
    args: &TaskArgs,
    base: Option<&str>,
) -> Result<(TaskFile, Checked, Resolved), String> {
    let mut file = TaskFile::load(&args.file, base)?;
    if let Some(base) = base {
        let directory = &mut file.task.spec.directory;
        directory.base_dn = base.to_owned();
        directory.groups.clear();
    }
    let failed = |e: RunError| format!("{e} ({})", e.reason());
    let checked =
        validate(&file.task.spec, Timestamp::now().as_second()).map_err(|e| failed(e.into()))?;
    let given = args.overrides.given()?;
    let namespace = file.task.metadata.namespace.clone().unwrap_or_default();
    let resolved = resolve(
        &namespace,
        &file.task.spec,
        &file.references(),
        given,
        &Policy::files(),
    )
    .await
    .map_err(|e| failed(e.into()))?;
    Ok((file, checked, resolved))
}

pub struct TaskFile {
    pub task: UserSynchronization,
    secrets: Vec<Secret>,
    config_maps: Vec<ConfigMap>,
    connections: Vec<Connection>,
}

impl TaskFile {
    /// The objects of `paths`; without a task among them, a task that reads `base` through their
    /// one connection.
    pub fn load(paths: &[PathBuf], base: Option<&str>) -> Result<TaskFile, String> {
        let mut task = None;
        let (mut secrets, mut config_maps, mut connections) = (Vec::new(), Vec::new(), Vec::new());
        for path in paths {
            for value in documents(path)? {
                let parse_err = |e: serde_json::Error| format!("{}: {e}", path.display());
                match value.get("kind").and_then(|k| k.as_str()) {
                    Some("UserSynchronization") if task.is_none() => {
                        task = Some(serde_json::from_value(value).map_err(parse_err)?)
                    }
                    Some("Secret") => {
                        secrets.push(serde_json::from_value(value).map_err(parse_err)?)
                    }
                    Some("ConfigMap") => {
                        config_maps.push(serde_json::from_value(value).map_err(parse_err)?)
                    }
                    Some("DirectoryConnection") => connections.push(Connection::from(
                        serde_json::from_value::<DirectoryConnection>(value).map_err(parse_err)?,
                    )),
                    Some("ClusterDirectoryConnection") => connections.push(Connection::from(
                        serde_json::from_value::<ClusterDirectoryConnection>(value)
                            .map_err(parse_err)?,
                    )),
                    _ => {}
                }
            }
        }
        let task = match (task, base, connections.as_slice()) {
            (Some(task), _, _) => task,
            (None, Some(base), [connection]) => through(connection, base)?,
            (None, None, [_]) => {
                return Err(
                    "the files hold a connection and no task: give --base DN to read through it"
                        .into(),
                );
            }
            (None, _, _) => {
                return Err("the files hold no UserSynchronization (nor exactly one connection to read through)".into());
            }
        };
        Ok(TaskFile {
            task,
            secrets,
            config_maps,
            connections,
        })
    }

    /// The files' connections, Secrets and ConfigMaps, where the task's references are looked up.
    pub fn references(&self) -> InObjects<'_> {
        InObjects {
            secrets: &self.secrets,
            config_maps: &self.config_maps,
            connections: &self.connections,
        }
    }
}

fn documents(path: &Path) -> Result<Vec<serde_json::Value>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| {
            serde::Deserialize::deserialize(doc)
                .map_err(|e| format!("{} is not valid YAML: {e}", path.display()))
        })
        .filter(|doc| !matches!(doc, Ok(serde_json::Value::Null)))
        .collect()
}

/// A task that reads `base` through `connection` (with the preset of its kind of server).
fn through(connection: &Connection, base: &str) -> Result<UserSynchronization, String> {
    let task = serde_json::json!({
        "apiVersion": "usersync.io/v1alpha1",
        "kind": "UserSynchronization",
        "metadata": {"name": connection.name},
        "spec": {
            "targetGroup": crate::planner::names::plain_name(&connection.name)
                .unwrap_or_else(|| "all-users".to_owned()),
            "connectionRef": {"kind": connection.kind.as_str(), "name": connection.name},
            "directory": {"baseDN": base},
        },
    });
    serde_json::from_value(task).map_err(|e| format!("cannot read through the connection: {e}"))
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
