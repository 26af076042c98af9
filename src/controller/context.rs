//! What every reconciliation shares: the client, the Event publisher, the metrics, the operator's
//! options and the state that runs share (run slots, kept reads, the UserGroup view, user records).

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::sync::Semaphore;

use super::events::Events;
use super::freshness::StatusWrites;
use super::kept::KeptReads;
use super::leader::LeaderElection;
use super::metrics::Metrics;
use super::push::Feeds;
use super::retry::Retries;
use super::settled::Settled;
use super::view::UserGroupView;
use crate::api::UserSynchronization;
use crate::directory::read::ReadOptions;
use crate::run::fence::WriteFence;
use crate::run::resolve::Policy;
use crate::run::user_pool::UserPool;

/// Options of `usersync run`.
#[derive(Clone, Debug)]
pub struct Options {
    /// Watch only these namespaces; all when empty.
    pub namespaces: Vec<String>,
    /// Tasks synchronized at once, across all watched namespaces.
    pub concurrency: u16,
    pub read: ReadOptions,
    /// How often an idle task checks its Secrets for rotation.
    pub reference_poll: Duration,
    /// Serialized members kept in one UserGroup object before a shard continues the list.
    pub shard_bytes: usize,
    /// UserGroups written at the same time within one run.
    pub write_concurrency: usize,
    /// Push feeds open at the same time.
    pub max_push_feeds: usize,
    /// How often an open push feed checks that its server still answers.
    pub push_keep_alive: Duration,
    /// UserGroup writes per second across all runs; `None`: as fast as the apiserver answers.
    pub write_rate: Option<NonZeroU32>,
    /// Where `/healthz`, `/readyz` and `/metrics` are served; `None`: not at all.
    pub listen: Option<SocketAddr>,
    /// What runs may read and where, and who may use which connection.
    pub references: Policy,
    /// How often a connection that works is checked again.
    pub connection_check: Duration,
    /// Hold this Lease before writing anything; `None`: a single replica that always writes.
    pub leader_election: Option<LeaderElection>,
}

/// Shared by every reconciliation.
pub struct Context {
    pub client: kube::Client,
    pub events: Events,
    pub metrics: Arc<Metrics>,
    pub options: Options,
    pub state: State,
}

/// What runs share at run time.
pub struct State {
    /// Runs in progress across all watched namespaces are limited by these permits.
    pub runs: Arc<Semaphore>,
    /// Half of them (at least one), which tasks whose last run ran out of time take first.
    pub slow_runs: Arc<Semaphore>,
    /// Every watched task, as the controllers' caches see them.
    pub tasks: Vec<Store<UserSynchronization>>,
    /// What each task's last directory read kept for an incremental next run.
    pub kept: KeptReads,
    /// The watched namespaces' UserGroups, kept current by a watch.
    pub user_groups: UserGroupView,
    /// The user records that the view, the kept reads and the runs share.
    pub users: Arc<UserPool>,
    /// Paces UserGroup writes across all runs, when a rate is set.
    pub write_limit: Option<DefaultDirectRateLimiter>,
    /// Each task's UserGroups as its last run left them, to notice edits by someone else.
    pub settled: Settled,
    /// Each task's last status write, to tell a stale look at it.
    pub status_writes: StatusWrites,
    /// Reconciles that failed in a row, per task, for their back-off.
    pub retries: Retries<ObjectRef<UserSynchronization>>,
    /// Open while this replica may write (always, without leader election).
    pub fence: Arc<WriteFence>,
    /// The directories' push feeds, per task.
    pub feeds: Feeds,
}

impl State {
    /// Empty state for `tasks`, and the UserGroup view's watches started.
    pub fn start(
        client: &kube::Client,
        options: &Options,
        tasks: Vec<Store<UserSynchronization>>,
        fence: Arc<WriteFence>,
        metrics: &Metrics,
    ) -> State {
        let users = Arc::new(UserPool::default());
        State {
            runs: Arc::new(Semaphore::new(usize::from(options.concurrency.max(1)))),
            slow_runs: Arc::new(Semaphore::new(usize::from(
                (options.concurrency / 2).max(1),
            ))),
            feeds: Feeds::new(
                options.max_push_feeds,
                options.push_keep_alive,
                tasks.clone(),
                metrics.push_connects.clone(),
            ),
            tasks,
            kept: KeptReads::default(),
            user_groups: UserGroupView::start(client, &options.namespaces, &users),
            users,
            write_limit: options
                .write_rate
                .map(|rate| RateLimiter::direct(Quota::per_second(rate))),
            settled: Settled::default(),
            status_writes: StatusWrites::default(),
            retries: Retries::default(),
            fence,
        }
    }
}
