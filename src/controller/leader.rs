//! Leader election on a coordination.k8s.io Lease (kube-lease-manager), so that with several
//! replicas exactly one writes.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::run::fence::WriteFence;

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

/// This replica holds the lease: until [`Leadership::lost`] resolves, or until it steps down.
pub struct Leadership {
    leading: watch::Receiver<bool>,
    manager: ManagerTask,
    lease_duration: Duration,
    fence: Arc<WriteFence>,
    fence_keeper: tokio::task::JoinHandle<()>,
}

impl Leadership {
    /// Resolves when the lease is lost; the fence is closed by then.
    pub async fn lost(&mut self) {
        while *self.leading.borrow_and_update() {
            if self.leading.changed().await.is_err() {
                break;
            }
        }
        self.fence.close();
    }

    /// Closes the fence, then releases the lease and waits until the release is written, so that a
    /// standby can take over at once instead of when the lease expires.
    pub async fn step_down(self) {
        self.fence_keeper.abort();
        self.fence.close();
        if stop_manager(self.leading, self.manager, self.lease_duration).await {
            info!("released the leader lease");
        }
    }
}

/// How long before its lease runs out (by this process's clock) a leader stops writing: half the
/// time the lease manager keeps between a renewal and the lease's end, so a healthy leader's fence
/// moves on well before it would close.
pub fn fence_margin(lease_duration: Duration) -> Duration {
    Duration::from_secs(grace_seconds(lease_duration)) / 2
}

/// The lease manager renews this long before the lease would run out.
fn grace_seconds(lease_duration: Duration) -> u64 {
    (lease_seconds(lease_duration) / 3).max(1)
}

fn lease_seconds(lease_duration: Duration) -> u64 {
    lease_duration.as_secs().max(2)
}

/// Waits until this replica holds the lease.
///
/// A standby left alone would look at a held lease again only when it expires, so a leader that
/// stops and releases the lease would leave the task idle for up to a lease duration (and a
/// replacement pod starting meanwhile would take over from the warm standby). The standby watches
/// the Lease too, and asks again as soon as its holder lets go.
pub async fn acquire(
    client: kube::Client,
    election: &LeaderElection,
    fence: Arc<WriteFence>,
) -> Result<Leadership, String> {
    info!(identity = %election.identity, lease = %election.lease_name, "waiting to become the leader");
    loop {
        let (mut leading, manager) = start_manager(client.clone(), election).await?;
        tokio::select! {
            became = became_leader(&mut leading) => {
                became?;
                info!(identity = %election.identity, "became the leader");
                let fence_keeper = tokio::spawn(keep_fence(client, election.clone(), fence.clone()));
                // Writes wait for the fence to open on the Lease this replica just wrote.
                let opened = async {
                    while !fence.is_open() {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                };
                if tokio::time::timeout(election.lease_duration, opened).await.is_err() {
                    warn!("the leader lease is not seen renewed yet; writes wait for it");
                }
                return Ok(Leadership {
                    leading,
                    manager,
                    lease_duration: election.lease_duration,
                    fence,
                    fence_keeper,
                });
            }
            () = released(client.clone(), election) => {}
        }
        // Awaited, so that this round's parting release cannot undo the next round's lock, which
        // is held under the same identity.
        stop_manager(leading, manager, election.lease_duration).await;
    }
}

/// Drops the manager's receiver, which makes it release the lease (when it holds it) and stop, and
/// waits up to `within` for that; true when it stopped in time.
async fn stop_manager(
    leading: watch::Receiver<bool>,
    manager: ManagerTask,
    within: Duration,
) -> bool {
    drop(leading);
    tokio::time::timeout(within, manager).await.is_ok()
}

/// A lease manager working in the background; dropping its receiver makes it release and stop.
type ManagerTask =
    tokio::task::JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>;

async fn start_manager(
    client: kube::Client,
    election: &LeaderElection,
) -> Result<(watch::Receiver<bool>, ManagerTask), String> {
    let manager = LeaseManagerBuilder::new(client, &election.lease_name)
        .with_namespace(&election.namespace)
        .with_identity(&election.identity)
        .with_duration(lease_seconds(election.lease_duration))
        .with_grace(grace_seconds(election.lease_duration))
        .build()
        .await
        .map_err(|e| {
            format!(
                "cannot use Lease {}/{}: {e}",
                election.namespace, election.lease_name
            )
        })?;
    Ok(manager.watch().await)
}

async fn became_leader(leading: &mut watch::Receiver<bool>) -> Result<(), String> {
    while !*leading.borrow_and_update() {
        leading
            .changed()
            .await
            .map_err(|_| "the lease manager stopped".to_owned())?;
    }
    Ok(())
}

/// Keeps the fence open until the lease's end by this replica's last renewal, less the margin, for
/// as long as the Lease names this replica; closes it when the Lease names another.
async fn keep_fence(client: kube::Client, election: LeaderElection, fence: Arc<WriteFence>) {
    let mut events = std::pin::pin!(lease_watch(client, &election));
    let margin = fence_margin(election.lease_duration);
    while let Some(event) = events.next().await {
        let Ok(lease) = event else { continue };
        let spec = lease.spec.unwrap_or_default();
        let ours = spec.holder_identity.as_deref() == Some(election.identity.as_str());
        let renewed = spec.renew_time.or(spec.acquire_time);
        let seconds = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok());
        match (ours, renewed, seconds) {
            (true, Some(renewed), Some(seconds)) => {
                let end = SystemTime::from(renewed.0) + Duration::from_secs(seconds);
                fence.open_until(end - margin);
            }
            _ => fence.close(),
        }
    }
}

/// The election's Lease as it changes, from the watch's first list on.
fn lease_watch(
    client: kube::Client,
    election: &LeaderElection,
) -> impl futures::Stream<Item = Result<Lease, watcher::Error>> + use<> {
    let leases: Api<Lease> = Api::namespaced(client, &election.namespace);
    let config =
        watcher::Config::default().fields(&format!("metadata.name={}", election.lease_name));
    watcher(leases, config).default_backoff().applied_objects()
}

/// Resolves when the Lease goes from held to free. Never resolves when the Lease cannot be watched:
/// the manager's own expiry checks still work then.
async fn released(client: kube::Client, election: &LeaderElection) {
    let mut events = std::pin::pin!(lease_watch(client, election));
    let mut held = false;
    while let Some(event) = events.next().await {
        let holder = match event {
            Ok(lease) => lease.spec.and_then(|s| s.holder_identity),
            Err(e) => {
                debug!(error = %e, "cannot watch the Lease");
                continue;
            }
        };
        let now_held = holder.is_some_and(|h| !h.is_empty());
        if held && !now_held {
            return;
        }
        held = now_held;
    }
    std::future::pending().await
}
