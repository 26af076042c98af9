//! The controller: watches UserSynchronizations, runs them on their triggers, applies the plan and
//! reports on status. All Kubernetes I/O lives here.

mod context;
pub mod error;
mod events;
mod execute;
mod freshness;
pub mod http;
pub mod kept;
pub mod leader;
mod lifecycle;
pub mod metrics;
mod reconcile;
mod retry;
mod settled;
pub mod view;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use kube::api::ListParams;
use kube::runtime::controller::{Action, Config, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use tracing::{error, info, warn};

use crate::api::UserSynchronization;
use crate::run::fence::WriteFence;
pub use context::{Context, Options, State};
use error::ControllerError;
use events::Events;
use metrics::Metrics;
use reconcile::reconcile;

/// Runs the operator until the process is asked to stop.
pub async fn serve(client: kube::Client, options: Options) {
    // One watch per namespace when a list is given: the operator's rights may end at those namespaces.
    let task_apis: Vec<Api<UserSynchronization>> = if options.namespaces.is_empty() {
        vec![Api::all(client.clone())]
    } else {
        options
            .namespaces
            .iter()
            .map(|ns| Api::namespaced(client.clone(), ns))
            .collect()
    };
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    if let Some(addr) = options.listen {
        serve_endpoints(addr, &metrics, &ready);
    }
    // Ready once the apiserver answers, leader or not: a standby is ready and idle, so that a rolling
    // update's new pod becomes Ready while the old one still holds the lease.
    ready.store(can_list(&task_apis).await, Ordering::Relaxed);
    // Replicas wait here; only the leader watches and writes. Losing the lease stops the controller.
    let fence = Arc::new(match options.leader_election {
        Some(_) => WriteFence::closed(),
        None => WriteFence::open(),
    });
    let leadership = match &options.leader_election {
        Some(election) => match leader::acquire(client.clone(), election, fence.clone()).await {
            Ok(leadership) => Some(leadership),
            Err(e) => {
                error!(error = %e, "leader election failed");
                return;
            }
        },
        None => None,
    };
    let controllers: Vec<Controller<UserSynchronization>> = task_apis
        .into_iter()
        .map(|tasks| {
            // Reconciles are not limited here: one that waits for a run slot costs nothing, and a
            // limit would let tasks waiting for the slots of slow tasks keep the others from even
            // asking (the run slots in `State` bound the runs).
            Controller::new(tasks, watcher::Config::default())
                .with_config(Config::default().concurrency(0))
                .shutdown_on_signal()
        })
        .collect();
    let tasks = controllers.iter().map(Controller::store).collect();
    let state = State::start(&client, &options, tasks, fence);
    let namespaces = if options.namespaces.is_empty() {
        "*".to_owned()
    } else {
        options.namespaces.join(",")
    };
    let ctx = Arc::new(Context {
        events: Events::new(client.clone(), std::env::var("POD_NAME").ok()),
        client,
        metrics,
        options,
        state,
    });
    info!(%namespaces, "controller starting");
    tokio::spawn(async {
        if shutdown_signal().await.is_ok() {
            info!("shutdown requested; runs in progress finish first");
        }
    });
    let controllers = controllers.into_iter().map(|controller| {
        // A task whose UserGroups someone else edited or deleted is looked at again at once.
        let changed = ctx.state.user_groups.owners_of_changes();
        controller
            .reconcile_on(changed)
            .run(reconcile, error_policy, ctx.clone())
            .boxed()
    });
    let controller = futures::stream::select_all(controllers).for_each(|result| {
        let (ready, ctx) = (ready.clone(), ctx.clone());
        async move {
            match result {
                Ok((task, _)) => {
                    ready.store(true, Ordering::Relaxed);
                    ctx.state.retries.succeeded(&task);
                }
                Err(e) => error!(error = %e, "reconcile failed"),
            }
        }
    });
    match leadership {
        Some(mut leadership) => {
            tokio::select! {
                () = controller => {}
                () = leadership.lost() => error!("lost the leader lease; stopping"),
            }
            leadership.step_down().await;
        }
        None => controller.await,
    }
}

/// `/healthz`, `/readyz` and `/metrics` on `addr`, for as long as the process runs.
fn serve_endpoints(addr: std::net::SocketAddr, metrics: &Arc<Metrics>, ready: &Arc<AtomicBool>) {
    let health = http::Health {
        metrics: metrics.clone(),
        ready: ready.clone(),
    };
    tokio::spawn(async move {
        if let Err(e) = http::serve(addr, health).await {
            error!(error = %e, %addr, "cannot serve health and metrics");
        }
    });
}

/// Whether the apiserver answers with the rights the operator needs to list its tasks: the
/// operator is ready once it does.
async fn can_list(task_apis: &[Api<UserSynchronization>]) -> bool {
    let mut can = true;
    for tasks in task_apis {
        if let Err(e) = tasks.list(&ListParams::default().limit(1)).await {
            warn!(error = %e, "cannot list UserSynchronizations yet");
            can = false;
        }
    }
    can
}

/// SIGTERM (what Kubernetes sends a pod) or Ctrl-C: the signals the controllers stop on.
async fn shutdown_signal() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => Ok(()),
        result = tokio::signal::ctrl_c() => result,
    }
}

/// Only failures to talk to the apiserver end up here (a run's own failures are reported on
/// status by `reconcile`): retry with a back-off that grows while they go on.
fn error_policy(
    task: Arc<UserSynchronization>,
    err: &ControllerError,
    ctx: Arc<Context>,
) -> Action {
    let retry_in = ctx.state.retries.failed(ObjectRef::from_obj(&*task));
    error!(task = %task.name_any(), reason = err.reason(), error = %err, ?retry_in, "reconcile error");
    Action::requeue(retry_in)
}
