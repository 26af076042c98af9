//! Leader election on a coordination.k8s.io Lease (kube-lease-manager), so that with several
//! replicas exactly one writes.

use std::time::Duration;

use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;
use tracing::info;

/// Which Lease to hold, and as whom.
#[derive(Clone, Debug)]
pub struct LeaderElection {
    pub namespace: String,
    pub lease_name: String,
    /// Unique per replica: the pod name.
    pub identity: String,
    /// A holder that has not renewed for this long loses the lease.
    pub lease_duration: Duration,
}

/// Waits until this replica holds the lease. The returned receiver turns `false` when the lease is
/// lost; dropping it releases the lease.
pub async fn acquire(
    client: kube::Client,
    election: &LeaderElection,
) -> Result<watch::Receiver<bool>, String> {
    let duration = election.lease_duration.as_secs().max(2);
    let manager = LeaseManagerBuilder::new(client, &election.lease_name)
        .with_namespace(&election.namespace)
        .with_identity(&election.identity)
        .with_duration(duration)
        .with_grace((duration / 3).max(1))
        .build()
        .await
        .map_err(|e| {
            format!(
                "cannot use Lease {}/{}: {e}",
                election.namespace, election.lease_name
            )
        })?;
    let (mut leading, _task) = manager.watch().await;
    info!(identity = %election.identity, lease = %election.lease_name, "waiting to become the leader");
    while !*leading.borrow_and_update() {
        leading
            .changed()
            .await
            .map_err(|_| "the lease manager stopped".to_owned())?;
    }
    info!(identity = %election.identity, "became the leader");
    Ok(leading)
}

/// Resolves when leadership is lost.
pub async fn lost(mut leading: watch::Receiver<bool>) {
    while *leading.borrow_and_update() {
        if leading.changed().await.is_err() {
            return;
        }
    }
}
