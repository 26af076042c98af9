//! Prometheus metrics. Labels are low-cardinality: a run's result, a failure's fixed reason, and the
//! task's namespace and name for the per-task gauges. Besides usersync's own (`usersync_*`): the
//! build, whether this replica leads, and the conventional `process_*` metrics.

use std::sync::atomic::AtomicU64;

use crate::run::report::Outcome;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// success, failure or braked.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReadLabels {
    /// full or incremental.
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlanLabels {
    /// whole (the directory against every object) or in_place (the objects that list users
    /// changed in place).
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: &'static str,
    pub commit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    pub namespace: String,
    pub task: String,
}

pub struct Metrics {
    pub registry: Registry,
    pub runs: Family<ResultLabels, Counter>,
    pub failures: Family<ReasonLabels, Counter>,
    pub duration: Histogram,
    pub users: Family<TaskLabels, Gauge>,
    pub groups: Family<TaskLabels, Gauge>,
    pub last_success: Family<TaskLabels, Gauge<f64, AtomicU64>>,
    /// Entries the directories returned (users, groups, containers, range continuations).
    pub entries_read: Counter,
    /// Directory reads by kind.
    pub reads: Family<ReadLabels, Counter>,
    /// Plans by kind.
    pub plans: Family<PlanLabels, Counter>,
    /// Push feed sessions that connected: a feed that reconnects often shows here.
    pub push_connects: Counter,
    /// UserGroup objects created, updated or removed.
    pub objects_written: Counter,
    /// Runs that listed UserGroups because the watch-backed view was not ready or behind.
    pub user_group_lists: Counter,
    /// 1 while this replica leads (or runs without leader election), else 0.
    pub leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut root = Registry::default();
        root.register_collector(Box::new(super::process_metrics::ProcessMetrics));
        let registry = root.sub_registry_with_prefix("usersync");
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                commit: env!("USERSYNC_COMMIT"),
            })
            .set(1);
        registry.register("build_info", "The running build (value 1)", build);
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica leads (or runs without leader election), else 0",
            leader.clone(),
        );
        let runs = Family::<ResultLabels, Counter>::default();
        let failures = Family::<ReasonLabels, Counter>::default();
        let duration = Histogram::new(exponential_buckets(0.1, 2.0, 14));
        let users = Family::<TaskLabels, Gauge>::default();
        let groups = Family::<TaskLabels, Gauge>::default();
        let last_success = Family::<TaskLabels, Gauge<f64, AtomicU64>>::default();
        let entries_read = Counter::default();
        let reads = Family::<ReadLabels, Counter>::default();
        let plans = Family::<PlanLabels, Counter>::default();
        let push_connects = Counter::default();
        let objects_written = Counter::default();
        let user_group_lists = Counter::default();
        registry.register("runs", "Finished runs by result", runs.clone());
        registry.register("run_failures", "Failed runs by reason", failures.clone());
        registry.register("run_duration_seconds", "Duration of runs", duration.clone());
        registry.register(
            "users",
            "Users in the task's last successful read",
            users.clone(),
        );
        registry.register(
            "groups",
            "Groups in the task's last successful read",
            groups.clone(),
        );
        registry.register(
            "last_success_timestamp_seconds",
            "When the task last finished a run successfully",
            last_success.clone(),
        );
        registry.register(
            "directory_entries_read",
            "Entries read from directories",
            entries_read.clone(),
        );
        registry.register(
            "directory_reads",
            "Directory reads by kind: full, or incremental from the server's change feed",
            reads.clone(),
        );
        registry.register(
            "plans",
            "Plans by kind: whole, or in_place from the objects that list users changed in place",
            plans.clone(),
        );
        registry.register(
            "push_connects",
            "Push feed sessions that connected to their server",
            push_connects.clone(),
        );
        registry.register(
            "user_groups_written",
            "UserGroup objects created, updated or removed",
            objects_written.clone(),
        );
        registry.register(
            "user_group_lists",
            "Runs that listed UserGroups because the watch-backed view was not ready or behind",
            user_group_lists.clone(),
        );
        Metrics {
            registry: root,
            leader,
            user_group_lists,
            entries_read,
            reads,
            plans,
            push_connects,
            objects_written,
            runs,
            failures,
            duration,
            users,
            groups,
            last_success,
        }
    }
}

impl Metrics {
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Metrics {
    /// Counts a finished run and, for a successful one, sets the task's gauges.
    pub fn record_run(&self, task: TaskLabels, outcome: &Outcome, seconds: f64, finished_at: f64) {
        self.duration.observe(seconds);
        match outcome {
            Outcome::Synced(synced) => {
                let result = if synced.brake.is_some() {
                    "braked"
                } else {
                    "success"
                };
                self.runs.get_or_create(&ResultLabels { result }).inc();
                let summary = &synced.summary;
                self.users.get_or_create(&task).set(summary.users);
                self.groups.get_or_create(&task).set(summary.groups);
                self.last_success.get_or_create(&task).set(finished_at);
            }
            Outcome::Failed(failure) => {
                self.runs
                    .get_or_create(&ResultLabels { result: "failure" })
                    .inc();
                let reason = failure.reason;
                self.failures.get_or_create(&ReasonLabels { reason }).inc();
            }
        }
    }
}
