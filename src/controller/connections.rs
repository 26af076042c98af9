//! The connection controller: checks each DirectoryConnection and ClusterDirectoryConnection when
//! it is created or changed, when the Secrets or ConfigMap it names change, and on an interval
//! (sooner while it fails), and writes what it found on its status. Tasks read that status: one
//! whose connection is known to be broken reports it instead of trying.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::{debug, info, warn};

use super::context::Context;
use super::error::ControllerError;
use super::events::Note;
use crate::api::{
    ClusterDirectoryConnection, DirectoryConnection, DirectoryConnectionStatus, FIELD_MANAGER,
};
use crate::run::ApiError;
use crate::run::check::{check, report};
use crate::run::resolve::{Connection, InCluster, Origin, connection_namespace, object_versions};

/// Either connection kind, as the controller handles it.
pub trait ConnectionObject:
    Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static
{
    /// Cluster-scoped: every install of the operator sees it, also those that may not use it.
    const CLUSTER_WIDE: bool;
    fn api(client: kube::Client, namespace: Option<&str>) -> Api<Self>;
    fn connection(&self) -> Connection;
}

impl ConnectionObject for DirectoryConnection {
    const CLUSTER_WIDE: bool = false;

    fn api(client: kube::Client, namespace: Option<&str>) -> Api<Self> {
        Api::namespaced(client, namespace.unwrap_or_default())
    }

    fn connection(&self) -> Connection {
        self.clone().into()
    }
}

impl ConnectionObject for ClusterDirectoryConnection {
    const CLUSTER_WIDE: bool = true;

    fn api(client: kube::Client, _: Option<&str>) -> Api<Self> {
        Api::all(client)
    }

    fn connection(&self) -> Connection {
        self.clone().into()
    }
}

/// One look at a connection: check it when due, else wait until it is.
pub async fn reconcile<K: ConnectionObject>(
    object: Arc<K>,
    ctx: Arc<Context>,
) -> Result<Action, ControllerError> {
    let connection = object.connection();
    let references = InCluster {
        client: ctx.client.clone(),
    };
    let policy = &ctx.options.references;
    let origin = Origin {
        server: connection.server.clone(),
        namespace: connection_namespace(&connection, policy),
        inline: false,
        via: None,
    };
    // A cluster-wide connection whose Secrets this operator may not read is for another install
    // (one limited to some namespaces shares the cluster with others): its status is theirs.
    if K::CLUSTER_WIDE && !policy.reads_in(&origin.namespace) {
        debug!(connection = %connection.name, "not this operator's connection to check");
        return Ok(Action::await_change());
    }
    let versions = object_versions(&origin, &references, policy)
        .await?
        .join(",");
    let previous = connection.status.clone().unwrap_or_default();
    let now = Timestamp::now();
    let poll = ctx.options.reference_poll;
    if let Some(wait) = not_due(&previous, &connection, &versions, now) {
        return Ok(Action::requeue(wait.min(poll).max(Duration::from_secs(1))));
    }
    let outcome = check(&connection, &references, policy).await;
    let every = ctx.options.connection_check;
    let server = &connection.server;
    let generation = connection.generation;
    let report = report::checked(
        &previous, generation, server, &outcome, versions, now, every,
    );
    match &outcome {
        Ok(passed) => {
            info!(connection = %connection.name, server = %passed.url, "connection checked")
        }
        Err(e) => {
            warn!(connection = %connection.name, reason = e.reason(), error = %e, "connection check failed")
        }
    }
    ctx.state.fence.check()?;
    if let Some(notice) = report.event {
        let note = Note {
            type_: if notice.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: notice.reason.to_owned(),
            note: crate::run::conditions::bounded(
                &notice.message,
                crate::run::conditions::MAX_NOTE_BYTES,
            )
            .into_owned(),
            action: "Check".to_owned(),
        };
        if let Err(e) = ctx.events.publish(note, object.object_ref(&())).await {
            warn!(error = %e, "cannot publish an Event");
        }
    }
    write_status(&ctx, &*object, &report.status).await?;
    // A little jitter keeps connections created together from being checked together forever.
    let jitter = report.next_check.mul_f64(fastrand::f64() * 0.1);
    Ok(Action::requeue((report.next_check + jitter).min(poll)))
}

/// How long until the next check, or `None` when one is due now: a new or changed spec, changed
/// Secrets or ConfigMap, or the time set by the last check.
fn not_due(
    previous: &DirectoryConnectionStatus,
    connection: &Connection,
    versions: &str,
    now: Timestamp,
) -> Option<Duration> {
    if previous.observed_generation != connection.generation
        || previous.references_version.as_deref() != Some(versions)
    {
        return None;
    }
    let next = previous.next_check_time.as_ref()?.0;
    let wait = now.duration_until(next);
    (wait.is_positive()).then(|| wait.unsigned_abs())
}

async fn write_status<K: ConnectionObject>(
    ctx: &Context,
    object: &K,
    status: &DirectoryConnectionStatus,
) -> Result<(), ControllerError> {
    ctx.state.fence.check()?;
    let api = K::api(ctx.client.clone(), object.namespace().as_deref());
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        &object.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(ApiError::while_("writing a connection's status"))?;
    Ok(())
}
