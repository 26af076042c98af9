//! The controller: watches UserSynchronizations, runs them on their triggers, applies the plan and
//! reports on status. All Kubernetes I/O lives here.

mod connections;
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
mod process_metrics;
mod push;
mod reconcile;
mod retry;
mod settled;
mod shutdown;
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

use crate::api::{
    ClusterDirectoryConnection, ConnectionKind, DirectoryConnection, UserSynchronization,
};
use crate::run::fence::WriteFence;
pub use context::{Context, Options, State};
use error::ControllerError;
pub use error::Stopped;
use events::Events;
use kube::runtime::reflector::Store;
use metrics::Metrics;
use reconcile::reconcile;
use shutdown::Shutdown;

/// Runs the operator until the process is asked to stop.
pub async fn serve(client: kube::Client, options: Options) -> Result<(), Stopped> {
    let shutdown = Shutdown::listen().map_err(|e| Stopped::Signals(e.to_string()))?;
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
    metrics.leader.set(0);
    let leadership = match &options.leader_election {
        Some(election) => match tokio::select! {
            acquired = leader::acquire(client.clone(), election, fence.clone()) => acquired,
            () = shutdown.requested() => {
                info!("stopping before becoming the leader");
                return Ok(());
            }
        } {
            Ok(leadership) => Some(leadership),
            Err(e) => {
                error!(error = %e, "leader election failed");
                return Err(Stopped::Election(e));
            }
        },
        None => None,
    };
    metrics.leader.set(1);
    let controllers: Vec<Controller<UserSynchronization>> = task_apis
        .into_iter()
        .map(|tasks| {
            // Reconciles are not limited here: one that waits for a run slot costs nothing, and a
            // limit would let tasks waiting for the slots of slow tasks keep the others from even
            // asking (the run slots in `State` bound the runs).
            let namespace = tasks.namespace().map(str::to_owned);
            let controller = Controller::new(tasks, watcher::Config::default())
                .with_config(Config::default().concurrency(0));
            let stop = shutdown.for_controller();
            let controller = controller.graceful_shutdown_on(stop);
            watch_connections(controller, &client, namespace.as_deref())
        })
        .collect();
    let tasks = controllers.iter().map(Controller::store).collect();
    let state = State::start(&client, &options, tasks, fence, &metrics);
    let namespaces = if options.namespaces.is_empty() {
        "*".to_owned()
    } else {
        options.namespaces.join(",")
    };
    let leader_metric = metrics.leader.clone();
    let ctx = Arc::new(Context {
        events: Events::new(client.clone(), std::env::var("POD_NAME").ok()),
        client,
        metrics,
        options,
        state,
    });
    info!(%namespaces, "controller starting");
    let connection_checks = check_connections(&ctx, &shutdown);
    let controllers = controllers.into_iter().map(|controller| {
        // A task whose UserGroups someone else edited or deleted is looked at again at once.
        let changed = ctx.state.user_groups.owners_of_changes();
        // A task whose directory pushed a change, or whose push feed connected or broke, too.
        let pushed = ctx.state.feeds.wakes();
        controller
            .reconcile_on(futures::stream::select(changed, pushed))
            .run(reconcile, error_policy, ctx.clone())
            .boxed()
    });
    let tasks = futures::stream::select_all(controllers).for_each(|result| {
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
    let checks = futures::stream::select_all(connection_checks).for_each(|result| async move {
        if let Err(e) = result {
            error!(error = %e, "connection reconcile failed");
        }
    });
    // The process ends with the task controllers, once the runs in progress have reported. The
    // connection checks hold nothing that must finish, and a controller asked to stop before its
    // first list completes would wait for that list forever: they stop with the tasks.
    let controller = async move {
        tokio::select! {
            () = tasks => {}
            () = async {
                checks.await;
                std::future::pending::<()>().await
            } => {}
        }
    };
    match leadership {
        Some(mut leadership) => {
            let ended = tokio::select! {
                () = controller => Ok(()),
                () = leadership.lost() => {
                    leader_metric.set(0);
                    error!("lost the leader lease; stopping");
                    Err(Stopped::LeaseLost)
                }
            };
            leadership.step_down().await;
            ended
        }
        None => {
            controller.await;
            Ok(())
        }
    }
}

/// A task is looked at again when the connection it names changes (its spec, or its readiness on
/// status).
fn watch_connections(
    controller: Controller<UserSynchronization>,
    client: &kube::Client,
    namespace: Option<&str>,
) -> Controller<UserSynchronization> {
    let namespaced: Api<DirectoryConnection> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let (tasks, cluster_tasks) = (controller.store(), controller.store());
    controller
        .watches(namespaced, watcher::Config::default(), move |c| {
            let name = (
                c.namespace(),
                ConnectionKind::DirectoryConnection,
                c.name_any(),
            );
            users_of(&tasks, name)
        })
        .watches(
            Api::<ClusterDirectoryConnection>::all(client.clone()),
            watcher::Config::default(),
            move |c| {
                let name = (
                    None,
                    ConnectionKind::ClusterDirectoryConnection,
                    c.name_any(),
                );
                users_of(&cluster_tasks, name)
            },
        )
}

/// The tasks that name a connection of `kind` and `name` (in `namespace`, for the namespaced kind).
fn users_of(
    tasks: &Store<UserSynchronization>,
    (namespace, kind, name): (Option<String>, ConnectionKind, String),
) -> Vec<ObjectRef<UserSynchronization>> {
    tasks
        .state()
        .iter()
        .filter(|t| {
            let r = t.spec.connection_ref.as_ref();
            r.is_some_and(|r| r.kind == kind && r.name == name)
                && (namespace.is_none() || t.namespace() == namespace)
        })
        .map(|t| ObjectRef::from_obj(&**t))
        .collect()
}

/// The connection controllers: the namespaced kind where tasks are watched, the cluster kind
/// everywhere.
fn check_connections(
    ctx: &Arc<Context>,
    shutdown: &Shutdown,
) -> Vec<futures::stream::BoxStream<'static, Result<(), String>>> {
    let client = &ctx.client;
    let namespaced: Vec<Api<DirectoryConnection>> = if ctx.options.namespaces.is_empty() {
        vec![Api::all(client.clone())]
    } else {
        let namespaces = ctx.options.namespaces.iter();
        namespaces
            .map(|ns| Api::namespaced(client.clone(), ns))
            .collect()
    };
    let mut streams: Vec<_> = namespaced
        .into_iter()
        .map(|api| {
            let controller = Controller::new(api, watcher::Config::default());
            let stop = shutdown.for_controller();
            controller
                .graceful_shutdown_on(stop)
                .run(connections::reconcile, connection_error_policy, ctx.clone())
                .map(|r| r.map(|_| ()).map_err(|e| e.to_string()))
                .boxed()
        })
        .collect();
    let cluster: Api<ClusterDirectoryConnection> = Api::all(client.clone());
    let controller = Controller::new(cluster, watcher::Config::default());
    let stop = shutdown.for_controller();
    streams.push(
        controller
            .graceful_shutdown_on(stop)
            .run(connections::reconcile, connection_error_policy, ctx.clone())
            .map(|r| r.map(|_| ()).map_err(|e| e.to_string()))
            .boxed(),
    );
    streams
}

/// A connection whose status cannot be written is looked at again after a while.
fn connection_error_policy<K: connections::ConnectionObject>(
    connection: Arc<K>,
    err: &ControllerError,
    _: Arc<Context>,
) -> Action {
    error!(connection = %connection.name_any(), reason = err.reason(), error = %err, "connection reconcile error");
    Action::requeue(
        std::time::Duration::from_secs(30)
            + std::time::Duration::from_millis(fastrand::u64(..5000)),
    )
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
