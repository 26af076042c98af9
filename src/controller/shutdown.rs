//! Stopping on SIGTERM (what Kubernetes sends a pod) or Ctrl-C. One listener, registered as the
//! operator starts, tells every controller: a signal that comes before a controller has started is
//! not lost, and none of them misses it.

use std::time::Duration;

use futures::FutureExt;
use tokio::sync::watch;
use tracing::info;

/// Time a controller is given to complete its first list before it may be stopped: kube-runtime's
/// controller, asked to stop before that list completes, waits for it forever (its watch has
/// stopped feeding the cache). A list of the watched kinds takes well under a second.
const FIRST_LIST_TIME: Duration = Duration::from_secs(3);

/// Whether a stop was requested.
pub struct Shutdown {
    requested: watch::Receiver<bool>,
}

impl Shutdown {
    /// Listens from now on.
    pub fn listen() -> std::io::Result<Shutdown> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let (tx, requested) = watch::channel(false);
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            info!("shutdown requested; runs in progress finish first");
            let _ = tx.send(true);
        });
        Ok(Shutdown { requested })
    }

    /// Resolves once a stop is requested.
    pub fn requested(&self) -> impl Future<Output = ()> + Send + use<> {
        let mut requested = self.requested.clone();
        async move {
            let _ = requested.wait_for(|stop| *stop).await;
        }
    }

    /// For a controller created now: resolves once a stop is requested, and no sooner than
    /// [`FIRST_LIST_TIME`] after now, so that the controller's graceful shutdown lets its runs in
    /// progress finish and then ends.
    pub fn for_controller(&self) -> impl Future<Output = ()> + Send + Sync + use<> {
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        let requested = self.requested();
        let started = tokio::time::Instant::now();
        tokio::spawn(async move {
            requested.await;
            tokio::time::sleep_until(started + FIRST_LIST_TIME).await;
            let _ = tx.send(());
        });
        rx.map(|_| ())
    }
}
