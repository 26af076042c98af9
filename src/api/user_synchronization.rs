use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ConnectionRef, PushSpec, PushStatus, ServerSpec};

/// A synchronization task: which directory to read, which part of it, and how to treat collisions and
/// objects that vanished from it. Its UserGroups are written into the task's namespace.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "usersync.io",
    version = "v1alpha1",
    kind = "UserSynchronization",
    namespaced,
    shortname = "usync",
    status = "UserSynchronizationStatus",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Last Sync","type":"date","jsonPath":".status.lastSyncTime"}"#,
    printcolumn = r#"{"name":"Next Sync","type":"string","jsonPath":".status.nextSyncTime"}"#,
    printcolumn = r#"{"name":"Users","type":"integer","jsonPath":".status.lastRun.users"}"#,
    printcolumn = r#"{"name":"Groups","type":"integer","jsonPath":".status.lastRun.groups"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!(has(self.schedule) && has(self.interval))",
     "message": "schedule and interval are mutually exclusive; set one of them"},
    {"rule": "!has(self.timeZone) || has(self.schedule)",
     "message": "timeZone applies to schedule only"},
    {"rule": "has(self.server) != has(self.connectionRef)",
     "message": "set exactly one of server and connectionRef"},
    {"rule": "!has(self.server) || !has(self.directory.preset) || self.directory.preset == 'Custom' || (self.server.type == 'LDAP' ? self.directory.preset != 'ActiveDirectory' : self.directory.preset == 'ActiveDirectory')",
     "message": "directory.preset does not fit server.type: ActiveDirectory servers take the ActiveDirectory (or Custom) preset, LDAP servers any other; leave preset out to follow server.type"},
]))]
pub struct UserSynchronizationSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub description: Option<String>,
    /// No runs while true; status says Suspended.
    #[serde(default)]
    pub suspend: bool,
    /// Run as soon as the task is created (or changed), not only on its schedule.
    #[serde(default = "default_true")]
    pub run_on_create: bool,
    /// Cron schedule, 5 fields (minute hour day-of-month month day-of-week), UTC unless timeZone is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 256),
        regex(pattern = r"^(@(yearly|annually|monthly|weekly|daily|hourly)|(\S+\s+){4}\S+)$")
    )]
    pub schedule: Option<String>,
    /// Fixed period between runs, a Go-style duration such as `15m` or `1h30m` (1s to 8784h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "duration(self) >= duration('1s') && duration(self) <= duration('8784h')",
         "message": "interval must be between 1s and 8784h (a year)"},
    ]))]
    pub interval: Option<String>,
    /// IANA time zone name for schedule, such as `Europe/Bratislava`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub time_zone: Option<String>,
    /// The name of the root UserGroup the task's tree hangs below. Missing, it is created under
    /// this name and is the task's. Existing and not the task's (made by hand, by GitOps, or the
    /// root of another task), it is never written: the task hangs a group of its own below it,
    /// named after the task, and its tree below that one.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub target_group: String,
    /// Names chosen for directory groups, as `oc adm groups sync` maps them: the group (its DN or
    /// its directory id) to the UserGroup name it gets. A group not listed is named after its
    /// directory name, with a suffix from its id only where that name is taken.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10000))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["group"]))]
    pub group_names: Vec<GroupName>,
    /// What to do when an object to create already exists and is not this task's.
    #[serde(default)]
    pub collision_policy: CollisionPolicy,
    /// What to do with users that vanished from the directory.
    #[serde(default)]
    pub user_extinction_policy: ExtinctionPolicy,
    /// What to do with groups that vanished from the directory.
    #[serde(default)]
    pub group_extinction_policy: ExtinctionPolicy,
    /// Upper bound on removals in one run, a count or a percentage of the task's objects. A run that
    /// would remove more removes nothing and stalls until the bound is raised or approved.
    #[serde(default = "default_max_deletions")]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "type(self) == int ? self >= 0 : self.matches('^([0-9]+|(100|[1-9]?[0-9])%)$')",
         "message": "maxDeletions must be a non-negative integer or a percentage from 0% to 100%"},
    ]))]
    pub max_deletions: IntOrString,
    /// A percentage in maxDeletions never allows fewer removals than this, so that a small task
    /// does not stall on one deletion (10% of 9 objects would be none). A count in maxDeletions is
    /// used as it is; `maxDeletions: 0` still holds every removal.
    #[serde(default = "default_max_deletions_floor")]
    #[schemars(range(min = 0, max = 1000000000))]
    pub max_deletions_floor: i64,
    /// Plan only: the result goes to status.preview and no UserGroup is written.
    #[serde(default)]
    pub dry_run: bool,
    /// The directory server, given here. Its credentials Secret must allow the server's URLs
    /// (annotation `usersync.io/allowed-servers`). Set this or connectionRef.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerSpec>,
    /// A DirectoryConnection of the task's namespace, or a ClusterDirectoryConnection that allows
    /// the namespace, to read the directory through. Set this or server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_ref: Option<ConnectionRef>,
    pub directory: DirectorySpec,
    /// Incremental runs: read only what changed since the last run where the server can say so.
    #[serde(default)]
    pub incremental: IncrementalSpec,
    /// Runs started by the directory itself, within about a second of a change.
    #[serde(default)]
    pub push: PushSpec,
    /// The longest one run may take (a Go-style duration, 1s to 24h): a run still going then ends
    /// as failed with reason `RunTimeout` and is retried with back-off; what it wrote stays, and
    /// the next run continues from there. It frees the run's slot for other tasks.
    #[serde(default = "default_run_timeout")]
    #[schemars(length(max = 64), regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "duration(self) >= duration('1s') && duration(self) <= duration('24h')",
         "message": "runTimeout must be between 1s and 24h"},
    ]))]
    pub run_timeout: String,
    /// What happens to the task's UserGroups when the task is deleted (a GitOps prune, `kubectl
    /// delete`): `Delete` lets the garbage collector delete them; `Orphan` leaves them, detached
    /// (no owner reference, annotated `usersync.io/orphaned-from`), for a new task to take over.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    #[default]
    Delete,
    /// Needs the operator running when the task is deleted: a finalizer holds the task until its
    /// UserGroups are detached.
    Orphan,
}

/// How runs read the directory after the first one.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IncrementalSpec {
    #[serde(default)]
    pub mode: IncrementalMode,
    /// A run reads everything again at least this often (a Go-style duration), so that nothing a
    /// change feed missed stays wrong for long.
    #[serde(default = "default_full_sync_interval")]
    #[schemars(length(max = 64), regex(pattern = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"))]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "duration(self) >= duration('1s') && duration(self) <= duration('8784h')",
         "message": "fullSyncInterval must be between 1s and 8784h (a year)"},
    ]))]
    pub full_sync_interval: String,
}

impl Default for IncrementalSpec {
    fn default() -> Self {
        IncrementalSpec {
            mode: IncrementalMode::default(),
            full_sync_interval: default_full_sync_interval(),
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum IncrementalMode {
    /// Read changes only where the server offers a change feed: Active Directory's uSNChanged
    /// (deletions through the Show Deleted control) or OpenLDAP's syncrepl (RFC 4533). Elsewhere,
    /// and whenever the kept state is missing or stale, a run reads everything.
    #[default]
    Auto,
    /// Every run reads everything.
    Disabled,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum CollisionPolicy {
    /// Leave the existing object alone and report it.
    #[default]
    Skip,
    /// Take the existing object over.
    Overwrite,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ExtinctionPolicy {
    /// Delete what vanished from the directory (after a complete, successful read only).
    #[default]
    Remove,
    /// Keep it and mark it as no longer in the directory.
    Skip,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectorySpec {
    /// Which kind of directory the classes, filters and attributes are for; default: the one
    /// `server.type` names (ActiveDirectory for ActiveDirectory, OpenLDAP for LDAP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<DirectoryPreset>,
    /// The top entry: everything under it is synchronized unless groups narrows it.
    #[serde(rename = "baseDN")]
    #[schemars(length(min = 1, max = 2048))]
    pub base_dn: String,
    /// Only these group DNs (and what they contain).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000), inner(length(min = 1, max = 2048)))]
    pub groups: Vec<String>,
    /// DNs of subtrees or groups that are never synchronized.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000), inner(length(min = 1, max = 2048)))]
    pub excludes: Vec<String>,
    /// Extra LDAP filter ANDed with the preset's user filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub user_filter: Option<String>,
    /// Extra LDAP filter ANDed with the preset's group filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub group_filter: Option<String>,
    #[serde(default)]
    pub ignore_disabled_users: bool,
    /// Active Directory: also the objects the domain marks `isCriticalSystemObject` (the built-in
    /// groups such as Administrators and Schema Admins, krbtgt, the Administrator and Guest
    /// accounts), which are left out by default.
    #[serde(default)]
    pub include_system_objects: bool,
    #[serde(default)]
    pub nested_groups: NestedGroups,
    /// Attribute names that override the preset's, field by field.
    #[serde(default)]
    pub attributes: AttributeOverrides,
    /// More fields on each listed user: a field name (`department`, `title`, `office`, `manager`,
    /// `employeeId` …) to the directory attribute whose first text value it holds
    /// (`physicalDeliveryOfficeName`, `employeeID` …). A user without the attribute has no such
    /// field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["field"]))]
    pub user_attributes: Vec<UserAttribute>,
    /// Entries per page of a paged search (RFC 2696).
    #[serde(default = "default_page_size")]
    #[schemars(range(min = 1, max = 10000))]
    pub page_size: i32,
    /// The most entries one read may return (users, groups and containers together): a read past
    /// it ends with reason `LimitExceeded`, naming the entry it stopped at, and changes nothing.
    /// It bounds the operator's memory against a directory that never stops answering; raise it,
    /// and the operator's memory limit, for a larger directory.
    #[serde(default = "default_max_entries")]
    #[schemars(range(min = 1, max = 100000000))]
    pub max_entries: i64,
    /// The most values one attribute of one entry may have, a group's members across all their
    /// ranges included: past it the read ends with `LimitExceeded`, naming the entry, and changes
    /// nothing.
    #[serde(default = "default_max_values_per_attribute")]
    #[schemars(range(min = 1, max = 100000000))]
    pub max_values_per_attribute: i64,
    /// The largest value the read accepts, in bytes: past it the read ends with `LimitExceeded`.
    #[serde(default = "default_max_value_bytes")]
    #[schemars(range(min = 1024, max = 268435456))]
    pub max_value_bytes: i64,
    /// With `nestedGroups: Flatten`, the most memberships all groups together may have once
    /// flattened (a group nested into every other multiplies them): past it the read ends with
    /// `LimitExceeded`, naming the group it stopped at.
    #[serde(default = "default_max_memberships")]
    #[schemars(range(min = 1, max = 1000000000))]
    pub max_memberships: i64,
}

/// A directory group's chosen UserGroup name.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub struct GroupName {
    /// The group's DN (compared as a DN: case and spacing aside) or its directory id.
    #[schemars(length(min = 1, max = 2048))]
    pub group: String,
    /// The UserGroup's name.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
}

/// One extra field on each listed user.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub struct UserAttribute {
    /// The field's name on the user (`department`, `employeeId` …).
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z][A-Za-z0-9]*$"))]
    pub field: String,
    /// The directory attribute whose first text value the field holds.
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[A-Za-z][A-Za-z0-9-]*$")
    )]
    pub attribute: String,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DirectoryPreset {
    #[default]
    ActiveDirectory,
    #[serde(rename = "OpenLDAP")]
    OpenLdap,
    #[serde(rename = "RFC2307")]
    Rfc2307,
    #[serde(rename = "FreeIPA")]
    FreeIpa,
    Custom,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum NestedGroups {
    /// Child groups become child UserGroups.
    #[default]
    Preserve,
    /// Members of child groups are listed in every group that contains them.
    Flatten,
    /// Child groups are not followed.
    Ignore,
}

/// LDAP attribute and object class names; each one set here replaces the preset's.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttributeOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub user_object_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub group_object_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub user_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub upn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub group_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub member: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserSynchronizationStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// kstatus conditions: Ready, Reconciling, Stalled, DirectoryReachable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// When the last attempt finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_sync_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_sync_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<RunSummary>,
    /// With dryRun: what a run would do. When maxDeletions held a run back: what it would have
    /// done, the removals it held back included (reason HeldByMaxDeletions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<Preview>,
    /// The `usersync.io/run-now` value the last run answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_run_now: Option<String>,
    /// The `usersync.io/approve-deletions` value the last run used up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_approval: Option<String>,
    /// resourceVersions of the Secrets and ConfigMap the last run used; a change triggers a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub references_version: Option<String>,
    /// Failed runs in a row; the retry delay grows with it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub consecutive_failures: i32,
    /// Where the directory's change feed stood when the last read began; the next run reads the
    /// changes since. Absent when the server offers no change feed or incremental mode is Disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<IncrementalStatus>,
    /// How the directory tells the task of its changes; absent before the first run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushStatus>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IncrementalStatus {
    /// `Syncrepl` or `USNChanged`.
    pub method: String,
    /// The server the position belongs to.
    pub server: String,
    /// The syncrepl cookie (OpenLDAP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
    /// The domain controller's invocationId (Active Directory); a new one means a restored
    /// database, whose USNs cannot be compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation_id: Option<String>,
    /// The domain controller's highestCommittedUSN (Active Directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub highest_committed_usn: Option<i64>,
    /// When the last read of everything began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_full_read_time: Option<Time>,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    pub users: i64,
    pub groups: i64,
    pub created: i64,
    pub updated: i64,
    pub removed: i64,
    pub skipped: i64,
    pub duration_seconds: f64,
    /// Member values that named nothing in scope (reported, never removed).
    #[serde(default)]
    pub unresolved_members: i64,
    /// `Full`, `Incremental`, or `None` when the run restored objects from the last read.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub directory_read: String,
    /// Entries the directory returned in this run.
    #[serde(default)]
    pub entries_read: i64,
    /// Entries left out because they cannot be used (no id or name, a DN that does not parse, not
    /// valid LDAP); what stands for them is kept as it was, never removed.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub unreadable_entries: i64,
    /// The task's UserGroups removed because another of its objects already stood for the same
    /// directory object (a copy with the task's label and owner); the one usersync named stays.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub duplicates_removed: i64,
}

fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    pub create: i64,
    pub update: i64,
    pub remove: i64,
    pub skip: i64,
    /// A bounded sample of the planned changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<PlannedChange>,
    /// True when changes lists only part of the plan.
    #[serde(default)]
    pub truncated: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedChange {
    /// Create, Update, Remove, Skip, or RemoveUser (a user gone from the directory, dropped from
    /// the groups that list it; `name` is then its login name).
    pub action: String,
    /// metadata.name of the UserGroup.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

fn default_true() -> bool {
    true
}

fn default_full_sync_interval() -> String {
    "24h".to_owned()
}

fn default_max_deletions() -> IntOrString {
    IntOrString::String("10%".to_owned())
}

fn default_max_deletions_floor() -> i64 {
    5
}

fn default_run_timeout() -> String {
    "30m".to_owned()
}

fn default_page_size() -> i32 {
    500
}

fn default_max_values_per_attribute() -> i64 {
    1_000_000
}

fn default_max_value_bytes() -> i64 {
    1 << 20
}

fn default_max_memberships() -> i64 {
    20_000_000
}

fn default_max_entries() -> i64 {
    500_000
}
