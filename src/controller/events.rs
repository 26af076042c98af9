//! Events about tasks (events.k8s.io/v1), one for each distinct note. kube-runtime's `Recorder`
//! folds every event of the same reason into the first one's series for minutes, so the note of a
//! later run (its counts, its error) would never show; here only events with the same note fold
//! into one series.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::events::EventType;

/// An event with the same note as one published this recently joins that one's series.
const SERIES_WINDOW: Duration = Duration::from_secs(600);

/// What one Event says about one object.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Note {
    pub type_: EventType,
    pub reason: String,
    pub action: String,
    pub note: String,
}

/// Where Events about cluster-scoped objects go.
const CLUSTER_SCOPED_EVENTS: &str = "default";

/// Publishes Events as the operator (`reportingController: usersync`).
pub struct Events {
    client: kube::Client,
    instance: String,
    published: Mutex<HashMap<(String, Note), Published>>,
}

struct Published {
    name: String,
    count: i32,
    at: Instant,
}

impl Events {
    pub fn new(client: kube::Client, instance: Option<String>) -> Events {
        Events {
            client,
            instance: instance.unwrap_or_else(|| "usersync".to_owned()),
            published: Mutex::default(),
        }
    }

    /// A new Event, or one more in the series of the same note about the same object.
    pub async fn publish(&self, note: Note, regarding: ObjectReference) -> Result<(), kube::Error> {
        // The apiserver takes Events about cluster-scoped objects (ClusterDirectoryConnections)
        // only in `default` (or kube-system); the chart grants that.
        let namespace = regarding
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| CLUSTER_SCOPED_EVENTS.to_owned());
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let key = (regarding.uid.clone().unwrap_or_default(), note.clone());
        let repeat = {
            let mut published = self.lock();
            published.retain(|_, p| p.at.elapsed() < SERIES_WINDOW);
            published.get(&key).map(|p| (p.name.clone(), p.count + 1))
        };
        let now = MicroTime(Timestamp::now());
        let count = repeat.as_ref().map_or(1, |(_, count)| *count);
        let name = match repeat {
            Some((name, count)) => {
                let series = EventSeries {
                    count,
                    last_observed_time: now,
                };
                let patch = serde_json::json!({"series": series});
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                name
            }
            None => {
                let event = self.event(note.clone(), regarding, namespace, now);
                let created = api.create(&PostParams::default(), &event).await?;
                created.metadata.name.unwrap_or_default()
            }
        };
        self.lock().insert(
            key,
            Published {
                name,
                count,
                at: Instant::now(),
            },
        );
        Ok(())
    }

    fn event(
        &self,
        note: Note,
        regarding: ObjectReference,
        namespace: String,
        now: MicroTime,
    ) -> Event {
        // As the apiserver's own events are named: the object's name, a dot, a unique suffix.
        let object: String = regarding
            .name
            .as_deref()
            .unwrap_or("task")
            .chars()
            .take(200)
            .collect();
        Event {
            metadata: ObjectMeta {
                name: Some(format!("{object}.{:016x}", fastrand::u64(..))),
                namespace: Some(namespace),
                ..ObjectMeta::default()
            },
            event_time: Some(now),
            action: Some(note.action),
            reason: Some(note.reason),
            note: Some(note.note),
            type_: Some(
                match note.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .to_owned(),
            ),
            regarding: Some(regarding),
            reporting_controller: Some("usersync".to_owned()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, Note), Published>> {
        self.published.lock().unwrap_or_else(|e| e.into_inner())
    }
}
