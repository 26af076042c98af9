//! Where a task's references are looked up: the cluster (by `get` alone: the operator needs no
//! right to list or watch Secrets), or the objects at hand (the CLI's files).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::{Api, ResourceExt};

use crate::api::{
    AllowedNamespaces, ClusterDirectoryConnection, ConnectionKind, ConnectionRef,
    DirectoryConnection, DirectoryConnectionStatus, ServerSpec,
};
use crate::run::api_error::ApiError;

/// A connection of either kind, as resolving a task needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct Connection {
    pub kind: ConnectionKind,
    pub name: String,
    pub server: ServerSpec,
    /// Where its Secrets and ConfigMap are: its own namespace (namespaced kind), the one it names,
    /// or `None` for the operator's default (cluster kind).
    pub secret_namespace: Option<String>,
    /// Which namespaces may use it (cluster kind only; the namespaced kind serves its own).
    pub allowed: Option<AllowedNamespaces>,
    pub generation: Option<i64>,
    pub status: Option<DirectoryConnectionStatus>,
}

impl From<DirectoryConnection> for Connection {
    fn from(c: DirectoryConnection) -> Self {
        Connection {
            kind: ConnectionKind::DirectoryConnection,
            name: c.name_any(),
            secret_namespace: c.namespace(),
            generation: c.metadata.generation,
            server: c.spec.server,
            allowed: None,
            status: c.status,
        }
    }
}

impl From<ClusterDirectoryConnection> for Connection {
    fn from(c: ClusterDirectoryConnection) -> Self {
        Connection {
            kind: ConnectionKind::ClusterDirectoryConnection,
            name: c.name_any(),
            secret_namespace: c.spec.secret_namespace,
            generation: c.metadata.generation,
            server: c.spec.server,
            allowed: Some(c.spec.allowed_namespaces),
            status: c.status,
        }
    }
}

/// Where a task's references are looked up.
pub trait References {
    fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<Secret>, ApiError>> + Send;
    fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<ConfigMap>, ApiError>> + Send;
    /// The connection `r` names for a task of `namespace`.
    fn connection(
        &self,
        namespace: &str,
        r: &ConnectionRef,
    ) -> impl Future<Output = Result<Option<Connection>, ApiError>> + Send;
    /// A namespace's labels; `None` when it does not exist.
    fn namespace_labels(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<BTreeMap<String, String>>, ApiError>> + Send;
}

/// The cluster.
pub struct InCluster {
    pub client: kube::Client,
}

impl References for InCluster {
    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, ApiError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        api.get_opt(name)
            .await
            .map_err(ApiError::while_("reading a referenced Secret"))
    }

    async fn config_map(&self, namespace: &str, name: &str) -> Result<Option<ConfigMap>, ApiError> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        api.get_opt(name)
            .await
            .map_err(ApiError::while_("reading a referenced ConfigMap"))
    }

    async fn connection(
        &self,
        namespace: &str,
        r: &ConnectionRef,
    ) -> Result<Option<Connection>, ApiError> {
        let reading = ApiError::while_("reading the task's connection");
        Ok(match r.kind {
            ConnectionKind::DirectoryConnection => {
                let api: Api<DirectoryConnection> = Api::namespaced(self.client.clone(), namespace);
                api.get_opt(&r.name).await.map_err(reading)?.map(Into::into)
            }
            ConnectionKind::ClusterDirectoryConnection => {
                let api: Api<ClusterDirectoryConnection> = Api::all(self.client.clone());
                api.get_opt(&r.name).await.map_err(reading)?.map(Into::into)
            }
        })
    }

    async fn namespace_labels(
        &self,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ApiError> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let found = api
            .get_opt(name)
            .await
            .map_err(ApiError::while_("reading the task's namespace"))?;
        Ok(found.map(|ns| ns.metadata.labels.unwrap_or_default()))
    }
}

/// Objects at hand, such as those the CLI's files hold (namespaces are not compared: the files are
/// the user's own).
pub struct InObjects<'a> {
    pub secrets: &'a [Secret],
    pub config_maps: &'a [ConfigMap],
    pub connections: &'a [Connection],
}

impl References for InObjects<'_> {
    async fn secret(&self, _: &str, name: &str) -> Result<Option<Secret>, ApiError> {
        let named = |s: &&Secret| s.metadata.name.as_deref() == Some(name);
        Ok(self.secrets.iter().find(named).cloned())
    }

    async fn config_map(&self, _: &str, name: &str) -> Result<Option<ConfigMap>, ApiError> {
        let named = |c: &&ConfigMap| c.metadata.name.as_deref() == Some(name);
        Ok(self.config_maps.iter().find(named).cloned())
    }

    async fn connection(&self, _: &str, r: &ConnectionRef) -> Result<Option<Connection>, ApiError> {
        let named = |c: &&Connection| c.kind == r.kind && c.name == r.name;
        Ok(self.connections.iter().find(named).cloned())
    }

    async fn namespace_labels(
        &self,
        _: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ApiError> {
        Ok(None)
    }
}
