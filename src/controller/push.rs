//! Push feeds: per task, a connection on which the directory says that something changed; each
//! change starts a run of the task at once (trigger `DirectoryChanged`), which reads what changed
//! through the task's change feed as any run does. The number of feeds is bounded; a task without
//! one (over the bound, a server that offers none, `push.mode: Disabled`) runs on its schedule.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use prometheus_client::metrics::counter::Counter;
use tracing::{debug, info};

use crate::api::{PushMode, PushStatus, UserSynchronization};
use crate::directory::connect::{ServerSettings, connect};
use crate::directory::error::DirectoryError;
use crate::directory::push::{Pushed, Subscription, Target, offered, subscribe};
use crate::directory::settings::server_settings;
use crate::run::resolve::Resolved;

/// A feed open this long counts as working: its loss starts the back-off from the first delay.
const STABLE: Duration = Duration::from_secs(60);
/// After a change, more changes within this window start the same run.
const SETTLE: Duration = Duration::from_millis(20);
/// However long a burst goes on, a run starts within this.
const SETTLE_AT_MOST: Duration = Duration::from_millis(200);

/// The operator's feeds, by task uid.
pub struct Feeds {
    limit: usize,
    /// How often an open feed asks the server whether it is still there.
    keep_alive: Duration,
    running: Mutex<HashMap<String, Running>>,
    wake: Arc<Wake>,
    tasks: Vec<Store<UserSynchronization>>,
    /// Sessions that connected, all feeds together.
    connects: Counter,
}

struct Running {
    task: ObjectRef<UserSynchronization>,
    key: u64,
    /// Not started: the operator held its limit of feeds.
    limited: bool,
    shared: Arc<Shared>,
    handle: tokio::task::AbortHandle,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// What a feed and the reconciles of its task share.
#[derive(Default)]
struct Shared {
    /// The directory changed since the task's last run began.
    pending: AtomicBool,
    status: Mutex<PushStatus>,
}

/// The senders that ask the task controllers for a reconcile.
#[derive(Default)]
struct Wake {
    senders: Mutex<Vec<UnboundedSender<ObjectRef<UserSynchronization>>>>,
}

impl Wake {
    fn task(&self, task: &ObjectRef<UserSynchronization>) {
        let mut senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        senders.retain(|s| s.unbounded_send(task.clone()).is_ok());
    }
}

impl Feeds {
    /// At most `limit` feeds, for the tasks in `tasks`.
    pub fn new(
        limit: usize,
        keep_alive: Duration,
        tasks: Vec<Store<UserSynchronization>>,
        connects: Counter,
    ) -> Feeds {
        Feeds {
            limit,
            keep_alive,
            running: Mutex::new(HashMap::new()),
            wake: Arc::default(),
            tasks,
            connects,
        }
    }

    /// The tasks whose directory pushed a change, or whose feed connected or broke.
    pub fn wakes(&self) -> UnboundedReceiver<ObjectRef<UserSynchronization>> {
        let (sender, receiver) = futures::channel::mpsc::unbounded();
        let mut senders = self.wake.senders.lock().unwrap_or_else(|e| e.into_inner());
        senders.push(sender);
        receiver
    }

    /// Whether the directory changed since the task's last run began; asking clears it, since the
    /// run about to start reads those changes.
    pub fn take_pending(&self, uid: &str) -> bool {
        let running = self.lock();
        running
            .get(uid)
            .is_some_and(|r| r.shared.pending.swap(false, Ordering::AcqRel))
    }

    /// What status says of the task's push; `None` while the operator knows nothing of it (after
    /// a restart, before its feed starts): status keeps what it had.
    pub fn status(&self, task: &UserSynchronization) -> Option<PushStatus> {
        if task.spec.push.mode == PushMode::Disabled {
            return Some(not_pushed("Disabled", None));
        }
        let uid = task.uid().unwrap_or_default();
        let running = self.lock();
        let feed = running.get(&uid)?;
        let status = feed.shared.status.lock().unwrap_or_else(|e| e.into_inner());
        Some(status.clone())
    }

    /// Whether the task's feed runs for `version` (its generation and references).
    pub fn follows(&self, task: &UserSynchronization, version: &str) -> bool {
        let uid = task.uid().unwrap_or_default();
        let key = key_of(&[version.as_bytes()]);
        let running = self.lock();
        let room = open_feeds(&running) < self.limit;
        running
            .get(&uid)
            .is_some_and(|r| r.key == key && !(r.limited && room))
    }

    /// Ends the task's feed, if it has one.
    pub fn stop(&self, uid: &str) {
        let mut running = self.lock();
        let Some(stopped) = running.remove(uid) else {
            return;
        };
        debug!("push feed stopped");
        if !stopped.limited {
            // Its room goes to a task that waits for one.
            if let Some(waiting) = running.values().find(|r| r.limited) {
                self.wake.task(&waiting.task);
            }
        }
    }

    /// Starts (or restarts, when `version` changed) the task's feed with the server and credentials
    /// resolved for it.
    pub fn start(&self, task: &UserSynchronization, version: &str, resolved: Resolved) {
        let uid = task.uid().unwrap_or_default();
        let key = key_of(&[version.as_bytes()]);
        let mut running = self.lock();
        running.retain(|uid, _| self.is_live(uid));
        running.remove(&uid);
        let shared = Arc::new(Shared::default());
        if open_feeds(&running) >= self.limit {
            *shared.status.lock().unwrap_or_else(|e| e.into_inner()) = not_pushed(
                "FeedLimit",
                Some(format!(
                    "the operator already holds {} push feeds (--max-push-feeds)",
                    self.limit
                )),
            );
            let handle = tokio::spawn(async {}).abort_handle();
            let limited = true;
            running.insert(
                uid,
                Running {
                    task: ObjectRef::from_obj(task),
                    key,
                    limited,
                    shared,
                    handle,
                },
            );
            return;
        }
        let target = Target::of(&task.spec.directory, resolved.server.server_type);
        let settings = server_settings(&resolved.server, resolved.material);
        let feed = Feed {
            task: ObjectRef::from_obj(task),
            uid: uid.clone(),
            tasks: self.tasks.clone(),
            keep_alive: self.keep_alive,
            shared: shared.clone(),
            wake: self.wake.clone(),
            connects: self.connects.clone(),
        };
        let handle = match (settings, target) {
            (Ok(settings), Ok(target)) => tokio::spawn(feed.follow(settings, target)),
            (Err(e), _) | (_, Err(e)) => {
                // Settings no connection can be made with: nothing to retry until they change.
                *shared.status.lock().unwrap_or_else(|e| e.into_inner()) =
                    not_pushed("Refused", Some(e.to_string()));
                tokio::spawn(async {})
            }
        };
        info!(task = %task.name_any(), "push feed starting");
        running.insert(
            uid,
            Running {
                task: ObjectRef::from_obj(task),
                key,
                limited: false,
                shared,
                handle: handle.abort_handle(),
            },
        );
    }

    fn is_live(&self, uid: &str) -> bool {
        is_live(&self.tasks, uid)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Feeds that hold a connection or try to (not those that ended: no push offered, refused).
fn open_feeds(running: &HashMap<String, Running>) -> usize {
    running
        .values()
        .filter(|r| !r.limited && !r.handle.is_finished())
        .count()
}

fn is_live(tasks: &[Store<UserSynchronization>], uid: &str) -> bool {
    tasks.iter().any(|store| {
        store
            .state()
            .iter()
            .any(|t| t.uid().as_deref() == Some(uid))
    })
}

/// A key that changes with `parts`; compared within this process only.
fn key_of(parts: &[&[u8]]) -> u64 {
    foldhash::fast::FixedState::with_seed(0x70_75_73_68).hash_one(parts)
}

fn not_pushed(reason: &str, message: Option<String>) -> PushStatus {
    PushStatus {
        feed: "None".to_owned(),
        reason: reason.to_owned(),
        message,
        ..PushStatus::default()
    }
}

/// One task's feed, on a task of its own.
struct Feed {
    task: ObjectRef<UserSynchronization>,
    uid: String,
    /// Where the feed sees that its task is gone.
    tasks: Vec<Store<UserSynchronization>>,
    keep_alive: Duration,
    shared: Arc<Shared>,
    wake: Arc<Wake>,
    connects: Counter,
}

/// How a session with the server ended.
enum Ended {
    /// The server has no push search: the feed ends for good.
    NotOffered,
    /// The task was deleted.
    TaskGone,
    /// The connection failed or broke; `open_for`: how long the search had been open.
    Lost {
        error: DirectoryError,
        open_for: Option<Duration>,
    },
}

impl Feed {
    /// Sessions until the server says it has no push, reconnecting with back-off after each loss.
    async fn follow(self, settings: ServerSettings, target: Target) {
        let mut delays = backoff();
        self.set(not_pushed("Connecting", None));
        loop {
            match self.session(&settings, &target).await {
                Ended::TaskGone => return,
                Ended::NotOffered => {
                    self.set(not_pushed("NotOffered", None));
                    self.wake.task(&self.task);
                    return;
                }
                Ended::Lost { error, .. } if !error.is_transient() => {
                    // A wrong password is not tried again and again (directories lock accounts
                    // out); a new version of the task or its Secrets starts a new feed.
                    info!(task = %self.task.name, error = %error, "push feed refused; the task is polled");
                    self.set(not_pushed("Refused", Some(error.to_string())));
                    self.wake.task(&self.task);
                    return;
                }
                Ended::Lost { error, open_for } => {
                    info!(task = %self.task.name, error = %error, "push feed lost; reconnecting");
                    self.set(not_pushed("Disconnected", Some(error.to_string())));
                    if open_for.is_some() {
                        // Status says it is down.
                        self.wake.task(&self.task);
                    }
                    // Only a feed that stayed up a while starts the back-off afresh: a server that
                    // ends every search at once is not asked again (nor a run started) every second.
                    if open_for.is_some_and(|open| open >= STABLE) {
                        delays = backoff();
                    }
                }
            }
            tokio::time::sleep(delays.next().unwrap_or(Duration::from_secs(300))).await;
            if !is_live(&self.tasks, &self.uid) {
                return;
            }
        }
    }

    async fn session(&self, settings: &ServerSettings, target: &Target) -> Ended {
        let lost = |error| Ended::Lost {
            error,
            open_for: None,
        };
        let mut conn = match connect(settings).await {
            Ok(conn) => conn,
            Err(e) => return lost(e),
        };
        let kind = match offered(&mut conn, target.active_directory).await {
            Ok(Some(kind)) => kind,
            Ok(None) => return Ended::NotOffered,
            Err(e) => return lost(e),
        };
        let mut subscription = match subscribe(&mut conn, &target.base_dn, kind).await {
            Ok(subscription) => subscription,
            Err(e) => return lost(e),
        };
        self.set(PushStatus {
            feed: kind.as_str().to_owned(),
            reason: "Connected".to_owned(),
            server: Some(subscription.server().to_owned()),
            connected_since: Some(Time(Timestamp::now())),
            message: None,
        });
        info!(task = %self.task.name, feed = kind.as_str(), "push feed connected");
        self.connects.inc();
        // What changed while no feed was open is read by a run now.
        self.changed();
        let opened = std::time::Instant::now();
        let error = self.listen(&mut subscription).await;
        subscription.close().await;
        match error {
            Some(error) => Ended::Lost {
                error,
                open_for: Some(opened.elapsed()),
            },
            None => Ended::TaskGone,
        }
    }

    /// Starts a run for every change (or burst of changes) until the connection fails (its
    /// error), or the task is gone (`None`).
    async fn listen(&self, subscription: &mut Subscription) -> Option<DirectoryError> {
        let mut keep_alive = tokio::time::interval(self.keep_alive);
        keep_alive.tick().await;
        loop {
            tokio::select! {
                pushed = subscription.next() => match pushed {
                    Ok(Pushed::Changed) => {
                        if let Err(e) = settle(subscription).await {
                            return Some(e);
                        }
                        self.changed();
                    }
                    Ok(Pushed::Nothing) => {}
                    Err(e) => return Some(e),
                },
                _ = keep_alive.tick() => {
                    if !is_live(&self.tasks, &self.uid) {
                        return None;
                    }
                    if let Err(e) = subscription.keep_alive().await {
                        return Some(e);
                    }
                }
            }
        }
    }

    fn changed(&self) {
        self.shared.pending.store(true, Ordering::Release);
        self.wake.task(&self.task);
    }

    fn set(&self, status: PushStatus) {
        *self.shared.status.lock().unwrap_or_else(|e| e.into_inner()) = status;
    }
}

/// Takes in the rest of a burst: messages that follow each other within [`SETTLE`], for at most
/// [`SETTLE_AT_MOST`].
async fn settle(subscription: &mut Subscription) -> Result<(), DirectoryError> {
    let deadline = tokio::time::Instant::now() + SETTLE_AT_MOST;
    loop {
        let wait = SETTLE.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
        match tokio::time::timeout(wait, subscription.next()).await {
            Ok(Ok(_)) if tokio::time::Instant::now() < deadline => continue,
            Ok(Ok(_)) | Err(_) => return Ok(()),
            Ok(Err(e)) => return Err(e),
        }
    }
}

/// 1 s doubling to 5 minutes, with jitter.
fn backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(1))
        .with_max_delay(Duration::from_secs(300))
        .with_jitter()
        .without_max_times()
        .build()
}
