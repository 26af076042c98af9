//! Push, measured on a running operator: how soon a user changed in the directory shows in its
//! UserGroup with no run asked for, how a burst of changes lands against the time its writes take,
//! and the operator's CPU while a feed is open and nothing changes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ListParams, Patch, PatchParams};
use usersync::api::{UserGroup, UserSynchronization};

use crate::operator::{Operator, TASK, until_member_shows};
use crate::target::Target;

/// Single changes whose latency is measured.
pub const CHANGES: usize = 50;
/// Users changed at once in the burst (fewer in small directories).
const BURST: usize = 1000;

/// A burst of changes written by one `ldapmodify`.
#[derive(Clone, Debug, Default)]
pub struct Burst {
    pub users: usize,
    /// Seconds the directory took to take the changes (the `ldapmodify`).
    pub directory_write: f64,
    /// Seconds from the end of the directory's write until the UserGroups showed every change.
    pub landed_after: f64,
    /// Seconds the runs meanwhile spent writing UserGroups.
    pub writes: f64,
}

impl Burst {
    /// From the start of the burst until it landed, against the longer of what it cannot be
    /// faster than: the directory's own write, or the UserGroup writes.
    pub fn ratio(&self) -> f64 {
        (self.directory_write + self.landed_after) / self.directory_write.max(self.writes).max(1e-9)
    }
}

#[derive(Clone, Debug, Default)]
pub struct PushReport {
    /// Which feed the task followed.
    pub feed: String,
    /// Seconds from each directory write until its UserGroup showed it, in order.
    pub latencies: Vec<f64>,
    pub burst: Option<Burst>,
    /// CPU seconds the operator used over so many seconds of nothing changing.
    pub idle: Option<(f64, f64)>,
}

impl PushReport {
    /// The `p`-th percentile (0 to 100) of the latencies, nearest rank.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        let mut sorted = self.latencies.clone();
        sorted.sort_by(f64::total_cmp);
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted.get(rank.saturating_sub(1)).copied()
    }
}

/// Turns push on for the task and measures it; `idle_seconds` 0 skips the idle measurement.
pub async fn measure(
    client: &kube::Client,
    ns: &str,
    operator: &Operator,
    log: &Path,
    target: &Target,
    idle_seconds: u64,
) -> Result<PushReport, String> {
    let tasks: Api<UserSynchronization> = Api::namespaced(client.clone(), ns);
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), ns);
    let feed = push_on(&tasks).await?;
    eprintln!("bench:   push feed {feed} connected");
    // The catch-up run the connection starts, and the run the spec change started, are over.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let users = target.fixture.users.len();
    let singles: Vec<usize> = (users - CHANGES - 10..users - 10).collect();
    let burst_size = BURST.min(users / 10);
    let burst: Vec<usize> = (users / 4..users / 4 + burst_size).collect();
    let homes = smallest_groups(&groups, target, singles.iter()).await?;

    let mut latencies = Vec::new();
    for &i in &singles {
        let group = homes.get(&i).ok_or("a changed user is in no UserGroup")?;
        let started = Instant::now();
        target.modify(&target.rename_users_ldif(i, i + 1, "pushed"))?;
        let name = format!("User {i} pushed");
        let dn = target.user_dn(i);
        latencies.push(until_member_shows(&groups, group, &dn, &name, started).await?);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    eprintln!("bench:   {CHANGES} pushed changes: {latencies:.2?}");

    let written = log_offset(log);
    let writing_burst = Instant::now();
    target.modify(&target.rename_users_ldif(burst[0], burst[0] + burst.len(), "burst"))?;
    let directory_write = writing_burst.elapsed().as_secs_f64();
    let burst_written = Timestamp::now();
    // Checked by a list every few seconds (polling hundreds of objects would load the apiserver
    // the runs write to); when each object landed is the operator's log's to say.
    let shown: BTreeMap<String, String> = burst
        .iter()
        .map(|&i| (target.user_dn(i).to_lowercase(), format!("User {i} burst")))
        .collect();
    until_all_shown(&groups, &shown).await?;
    let (writing, last_write) = applied(log, written);
    let landed = last_write.map_or(0.0, |at| at.duration_since(burst_written).as_secs_f64());
    eprintln!(
        "bench:   burst of {burst_size}: the directory took {directory_write:.2} s, landed {landed:.2} s later, writes took {writing:.2} s"
    );

    let idle = if idle_seconds > 0 {
        let before = cpu_seconds(operator.pid())?;
        tokio::time::sleep(Duration::from_secs(idle_seconds)).await;
        let used = cpu_seconds(operator.pid())? - before;
        eprintln!("bench:   idle {idle_seconds} s: {used:.2} CPU s");
        Some((used, idle_seconds as f64))
    } else {
        None
    };
    Ok(PushReport {
        feed,
        latencies,
        burst: Some(Burst {
            users: burst_size,
            directory_write,
            landed_after: landed,
            writes: writing,
        }),
        idle,
    })
}

/// Sets `push.mode: Auto` and waits until status says the feed is connected; returns the feed.
async fn push_on(tasks: &Api<UserSynchronization>) -> Result<String, String> {
    let patch = serde_json::json!({"spec": {"push": {"mode": "Auto"}}});
    tasks
        .patch(TASK, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| format!("push on: {e}"))?;
    let started = Instant::now();
    loop {
        let task = tasks.get(TASK).await.map_err(|e| format!("task: {e}"))?;
        let push = task.status.and_then(|s| s.push);
        if let Some(push) = push.as_ref().filter(|p| p.reason == "Connected") {
            return Ok(push.feed.clone());
        }
        if started.elapsed() > Duration::from_secs(300) {
            return Err(format!("no push feed connected: {push:?}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// For each user, the UserGroup with the fewest members that lists it.
async fn smallest_groups(
    groups: &Api<UserGroup>,
    target: &Target,
    users: impl Iterator<Item = &usize>,
) -> Result<BTreeMap<usize, String>, String> {
    let wanted: BTreeMap<String, usize> = users
        .map(|&i| (target.user_dn(i).to_lowercase(), i))
        .collect();
    let all = groups
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("list: {e}"))?;
    let mut homes: BTreeMap<usize, (usize, String)> = BTreeMap::new();
    for group in &all.items {
        let name = group.metadata.name.clone().unwrap_or_default();
        let size = group.spec.users.len();
        for user in &group.spec.users {
            if let Some(&i) = wanted.get(&user.dn.to_lowercase()) {
                let home = homes.entry(i).or_insert((usize::MAX, String::new()));
                if size < home.0 {
                    *home = (size, name.clone());
                }
            }
        }
    }
    let found: BTreeSet<usize> = homes.keys().copied().collect();
    if found.len() < wanted.len() {
        return Err(format!(
            "{} of the users to change are in no UserGroup",
            wanted.len() - found.len()
        ));
    }
    Ok(homes.into_iter().map(|(i, (_, name))| (i, name)).collect())
}

/// Waits until the UserGroups list every user of `shown` (lower-case DN → display name).
async fn until_all_shown(
    groups: &Api<UserGroup>,
    shown: &BTreeMap<String, String>,
) -> Result<(), String> {
    let started = Instant::now();
    loop {
        let all = groups
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("list: {e}"))?;
        let mut seen = BTreeSet::new();
        for user in all.items.iter().flat_map(|g| &g.spec.users) {
            let dn = user.dn.to_lowercase();
            if shown.get(&dn).map(String::as_str) == user.display_name.as_deref() {
                seen.insert(dn);
            }
        }
        if seen.len() == shown.len() {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(300) {
            return Err(format!(
                "{} of {} burst changes never showed",
                shown.len() - seen.len(),
                shown.len()
            ));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

pub fn log_offset(log: &Path) -> u64 {
    std::fs::metadata(log).map(|m| m.len()).unwrap_or(0)
}

/// From the operator's `applied` log lines after `offset`: the seconds its runs spent writing, and
/// when the last write ended (the line's time less the wait for the view that follows it).
fn applied(log: &Path, offset: u64) -> (f64, Option<Timestamp>) {
    let lines = log_lines(log, offset, "applied");
    let seconds = lines.iter().filter_map(|e| e["seconds"].as_f64()).sum();
    let last = lines.iter().rev().find_map(|e| {
        let at: Timestamp = e["timestamp"].as_str()?.parse().ok()?;
        let view = e["view_seconds"].as_f64().unwrap_or(0.0);
        at.checked_sub(SignedDuration::from_secs_f64(view)).ok()
    });
    (seconds, last)
}

/// A number the operator's log lines of one step (`read`, `planned`, `applied`) after `offset`
/// carry, summed.
pub fn step_field(log: &Path, offset: u64, step: &str, field: &str) -> f64 {
    let lines = log_lines(log, offset, step);
    lines.iter().filter_map(|e| e[field].as_f64()).sum()
}

/// The operator's log lines of one step after `offset`.
fn log_lines(log: &Path, offset: u64, step: &str) -> Vec<serde_json::Value> {
    let Ok(mut file) = std::fs::File::open(log) else {
        return Vec::new();
    };
    if file.seek(SeekFrom::Start(offset)).is_err() {
        return Vec::new();
    }
    BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(&line).ok())
        .filter(|event| event["message"] == step)
        .collect()
}

/// User and system CPU seconds of a running process so far.
fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    // The command name (in parentheses) may hold spaces: fields are counted after it.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    // utime and stime: fields 14 and 15 of the whole line, 12 and 13 after the name.
    let (user, system) = (ticks(11), ticks(12));
    let per_second = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(100.0);
    match (user, system) {
        (Some(u), Some(s)) => Ok((u + s) / per_second),
        _ => Err(format!("no CPU times in /proc/{pid}/stat")),
    }
}
