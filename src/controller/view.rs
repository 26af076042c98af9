//! A watch-backed view of the UserGroups in the watched namespaces: a run plans against it instead
//! of listing every UserGroup again. After writing, a run waits until the view shows its writes, so
//! the next run does not plan against objects as they were; when the view does not catch up (or is
//! not synced yet), that task's next run lists instead.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use tracing::{debug, warn};

use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender};
use kube::Resource;

use super::freshness::at_least;
use crate::api::{UserGroup, UserSynchronization};
use crate::run::apply::{Written, created_entry};
use crate::run::user_pool::UserPool;

pub struct UserGroupView {
    /// One store per watched namespace, or one for all namespaces.
    stores: Vec<Store<UserGroup>>,
    /// Where changes of a task's UserGroups are announced, as the task to look at.
    owners: Arc<Mutex<Vec<UnboundedSender<ObjectRef<UserSynchronization>>>>>,
    /// Tasks whose next run lists because the view did not show their last writes in time.
    behind: Mutex<HashSet<String>>,
}

const POLL: Duration = Duration::from_millis(20);

impl UserGroupView {
    /// Starts one watch per namespace (all namespaces when `namespaces` is empty). The watches run
    /// until the process ends, retrying with back-off.
    pub fn start(
        client: &kube::Client,
        namespaces: &[String],
        pool: &Arc<UserPool>,
    ) -> UserGroupView {
        let apis: Vec<Api<UserGroup>> = if namespaces.is_empty() {
            vec![Api::all(client.clone())]
        } else {
            namespaces
                .iter()
                .map(|ns| Api::namespaced(client.clone(), ns))
                .collect()
        };
        let owners: Arc<Mutex<Vec<UnboundedSender<_>>>> = Arc::default();
        let stores = apis
            .into_iter()
            .map(|api| {
                let owners = Arc::clone(&owners);
                let (reader, writer) = reflector::store();
                // Of managedFields only those of an object usersync created and never changed are
                // kept, and without their field sets: the next write takes usersync's entry into
                // apply ownership by its position and operation. Dropping the rest keeps the view
                // smaller, and the members share the records the directory read holds.
                let pool = Arc::clone(pool);
                let events = watcher(api, watcher::Config::default())
                    .default_backoff()
                    .modify(move |g| {
                        let created = created_entry(&g.metadata).is_some();
                        let fields = g.managed_fields_mut();
                        if created {
                            fields.iter_mut().for_each(|f| f.fields_v1 = None);
                        } else {
                            fields.clear();
                        }
                        pool.share_all(&mut g.spec.users);
                    });
                let watch = reflector::reflector(writer, events);
                tokio::spawn(watch.for_each(move |event| {
                    match event {
                        Ok(watcher::Event::Apply(group) | watcher::Event::Delete(group)) => {
                            announce(&owners, &group)
                        }
                        Ok(_) => {}
                        Err(e) => warn!(error = %e, "watching UserGroups"),
                    }
                    futures::future::ready(())
                }));
                reader
            })
            .collect();
        UserGroupView {
            stores,
            owners,
            behind: Mutex::default(),
        }
    }

    /// The tasks whose UserGroups change, as they change: what the controllers look at again.
    pub fn owners_of_changes(&self) -> UnboundedReceiver<ObjectRef<UserSynchronization>> {
        let (sender, receiver) = futures::channel::mpsc::unbounded();
        self.owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(sender);
        receiver
    }

    /// The resourceVersion of each UserGroup the task owns (by owner reference), or `None` while
    /// the view is not synced.
    pub fn versions(&self, namespace: &str, task_uid: &str) -> Option<HashMap<String, String>> {
        let mut versions = HashMap::new();
        self.each_owned(namespace, task_uid, |group| {
            versions.insert(
                group.name_any(),
                group.resource_version().unwrap_or_default(),
            );
        })?;
        Some(versions)
    }

    /// Whether the task's UserGroups are exactly `versions` (resourceVersion by name), or `None`
    /// while the view is not synced. [`Self::versions`] without building the map.
    pub fn holds(
        &self,
        namespace: &str,
        task_uid: &str,
        versions: &HashMap<String, String>,
    ) -> Option<bool> {
        let (mut seen, mut same) = (0, true);
        self.each_owned(namespace, task_uid, |group| {
            let name = group.metadata.name.as_deref().unwrap_or_default();
            same &= versions.get(name).map(String::as_str)
                == group.metadata.resource_version.as_deref();
            seen += 1;
        })?;
        // Names are unique in a namespace: as many, all equal, is the same set.
        Some(same && seen == versions.len())
    }

    /// Calls `f` with each UserGroup in `namespace` the task owns (by owner reference); `None`
    /// while the view is not synced.
    fn each_owned(
        &self,
        namespace: &str,
        task_uid: &str,
        mut f: impl FnMut(&UserGroup),
    ) -> Option<()> {
        for store in &self.stores {
            store.wait_until_ready().now_or_never()?.ok()?;
            let owned = |g: &&Arc<UserGroup>| {
                g.metadata.namespace.as_deref() == Some(namespace)
                    && g.owner_references().iter().any(|o| o.uid == task_uid)
            };
            store.state().iter().filter(owned).for_each(|g| f(g));
        }
        Some(())
    }

    /// The namespace's UserGroups, or `None` when the view cannot be trusted for this task's run.
    pub fn objects(&self, namespace: &str, task_uid: &str) -> Option<Vec<Arc<UserGroup>>> {
        if self.lock().remove(task_uid) {
            debug!("the UserGroup view was behind after the last run; listing");
            return None;
        }
        let mut objects = Vec::new();
        for store in &self.stores {
            // Not synced yet (or the watch is failing): list instead of waiting.
            store.wait_until_ready().now_or_never()?.ok()?;
            objects.extend(
                store
                    .state()
                    .into_iter()
                    .filter(|g| g.namespace().as_deref() == Some(namespace)),
            );
        }
        Some(objects)
    }

    /// Waits until the view shows `written`; if it does not within `timeout`, the task's next run
    /// lists. Whether it caught up.
    pub async fn wait_for(
        &self,
        namespace: &str,
        task_uid: &str,
        written: &Written,
        timeout: Duration,
    ) -> bool {
        let started = Instant::now();
        while !self.shows(namespace, written) {
            if started.elapsed() >= timeout {
                warn!("the UserGroup view did not show this run's writes in time");
                self.list_next_run(task_uid);
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
        true
    }

    /// The task's next run lists (its writes failed part-way, so the view may lag behind them).
    pub fn list_next_run(&self, task_uid: &str) {
        self.lock().insert(task_uid.to_owned());
    }

    fn shows(&self, namespace: &str, written: &Written) -> bool {
        let find = |name: &str| {
            let key = ObjectRef::new(name).within(namespace);
            self.stores.iter().find_map(|s| s.get(&key))
        };
        written.applied.iter().all(|(name, version)| {
            find(name).is_some_and(|g| at_least(&g.resource_version().unwrap_or_default(), version))
        }) && written.removed.iter().all(|name| find(name).is_none())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.behind.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Sends the owner task of a changed UserGroup to every controller; a controller that does not
/// watch the task's namespace drops it.
fn announce(
    owners: &Mutex<Vec<UnboundedSender<ObjectRef<UserSynchronization>>>>,
    group: &UserGroup,
) {
    let Some(namespace) = group.namespace() else {
        return;
    };
    let kind = UserSynchronization::kind(&());
    let tasks = group.owner_references().iter().filter(|o| o.kind == kind);
    let mut senders = owners.lock().unwrap_or_else(|e| e.into_inner());
    for owner in tasks {
        let task = ObjectRef::new(&owner.name).within(&namespace);
        senders.retain(|sender| sender.unbounded_send(task.clone()).is_ok());
    }
}
