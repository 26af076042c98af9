//! docs/benchmarks.md: the measurements, the ratios the targets are stated in, and the notes.

use std::fmt::Write;

use crate::measure::Sample;
use crate::push::PushReport;

pub struct TargetReport {
    pub label: String,
    pub users: usize,
    pub rows: Vec<(&'static str, Sample)>,
    /// Seconds from asking for a run until the changed user showed in its UserGroup.
    pub one_user_visible: Option<f64>,
    /// CPU seconds the one-user run spent reading (connecting, decoding, assembling) and
    /// planning, by its log.
    pub one_user_work: Option<f64>,
    pub push: Option<PushReport>,
}

impl TargetReport {
    pub fn get(&self, scenario: &str) -> Option<&Sample> {
        self.rows
            .iter()
            .find(|(s, _)| *s == scenario)
            .map(|(_, s)| s)
    }
}

pub const FLOOR_A: &str = "floor A: paged ldapsearch dump";
pub const FLOOR_B: &str = "floor B: parallel server-side apply of the final objects";
pub const FLOOR_B_TWO: &str =
    "floor B, two requests per object (the object, then its count): the earlier writer's floor";
pub const BASELINE: &str = "baseline: Python ldap3 + kubernetes";
pub const FULL: &str = "usersync: full sync from empty";
pub const PREVIEW: &str = "usersync: preview (sync --dry-run: read + plan)";
pub const NO_CHANGE: &str = "usersync: re-sync, nothing changed";
pub const ONE_USER: &str = "usersync: re-sync, 1 user changed";
pub const ONE_PERCENT: &str = "usersync: re-sync, 1% of users changed";
pub const BIG_GROUP: &str = "usersync: re-sync, the big group (half the users) lost a member";

fn cell<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| v.to_string())
}

pub fn render(header: &str, targets: &[TargetReport], notes: &str) -> String {
    let mut out = String::new();
    out.push_str(header);
    for t in targets {
        let _ = writeln!(out, "\n## {}\n", t.label);
        out.push_str("| Scenario | Wall (s) | Peak RSS (MiB) | LDAP entries read | UserGroup writes | Notes |\n");
        out.push_str("| --- | ---: | ---: | ---: | ---: | --- |\n");
        for (scenario, s) in &t.rows {
            let _ = writeln!(
                out,
                "| {scenario} | {:.2} | {} | {} | {} | {} |",
                s.wall_seconds,
                cell(s.rss_mib().map(|m| format!("{m:.0}"))),
                cell(s.entries_read),
                cell(s.user_group_writes),
                s.note
            );
        }
    }
    out.push_str("\n## Ratios against the targets\n\n");
    out.push_str(
        "| Directory | Ratio | Measured | Target | Met |\n| --- | --- | ---: | --- | --- |\n",
    );
    for t in targets {
        for (name, value, target, met) in ratios(t, targets) {
            let _ = writeln!(
                out,
                "| {} | {name} | {value} | {target} | {} |",
                t.label,
                if met { "yes" } else { "**no**" }
            );
        }
    }
    out.push('\n');
    out.push_str(notes);
    out
}

type Ratio = (&'static str, String, &'static str, bool);

fn ratios(t: &TargetReport, all: &[TargetReport]) -> Vec<Ratio> {
    let mut out = Vec::new();
    let wall = |s: &str| t.get(s).map(|s| s.wall_seconds);
    if let (Some(full), Some(a), Some(b)) = (wall(FULL), wall(FLOOR_A), wall(FLOOR_B)) {
        let r = full / (a + b);
        out.push((
            "full sync / (A + B)",
            format!("{r:.2}"),
            "≤ 1.15",
            r <= 1.15,
        ));
    }
    if let (Some(full), Some(b2)) = (wall(FULL), wall(FLOOR_B_TWO)) {
        let r = full / b2;
        out.push((
            "full sync / floor B with two requests per object",
            format!("{r:.2}"),
            "< 0.6",
            r < 0.6,
        ));
    }
    if let Some(work) = t.one_user_work {
        out.push((
            "1 changed user: CPU of read + assemble + plan",
            format!("{:.0} ms", work * 1000.0),
            "< 50 ms",
            work < 0.05,
        ));
    }
    for (scenario, name) in [
        (NO_CHANGE, "baseline full run / re-sync, nothing changed"),
        (ONE_USER, "baseline full run / re-sync, 1 user changed"),
        (ONE_PERCENT, "baseline full run / re-sync, 1% changed"),
    ] {
        if let (Some(again), Some(base)) = (wall(scenario), wall(BASELINE)) {
            let r = base / again;
            let target = if scenario == ONE_PERCENT {
                "(reported)"
            } else {
                "≥ 50×"
            };
            out.push((
                name,
                format!("{r:.0}×"),
                target,
                scenario == ONE_PERCENT || r >= 50.0,
            ));
        }
    }
    if let Some(push) = &t.push {
        out.extend(push_ratios(push));
    }
    if let (Some(preview), Some(a)) = (wall(PREVIEW), wall(FLOOR_A)) {
        let r = preview / a;
        out.push(("preview / A", format!("{r:.2}"), "≤ 1.3", r <= 1.3));
    }
    if let (Some(full), Some(base)) = (wall(FULL), wall(BASELINE)) {
        let r = base / full;
        out.push((
            "baseline / usersync (full sync)",
            format!("{r:.1}×"),
            "≥ 10×",
            r >= 10.0,
        ));
    }
    if let (Some(again), Some(full)) = (wall(NO_CHANGE), wall(FULL)) {
        let r = again / full;
        out.push((
            "no-change re-sync / full sync",
            format!("{:.1} %", r * 100.0),
            "≤ 5 %",
            r <= 0.05,
        ));
    }
    if let Some(writes) = t.get(NO_CHANGE).and_then(|s| s.user_group_writes) {
        out.push((
            "UserGroup writes, no-change re-sync",
            writes.to_string(),
            "0",
            writes == 0,
        ));
    }
    if let (Some(again), Some(full)) = (
        t.get(NO_CHANGE).and_then(|s| s.entries_read),
        t.get(FULL).and_then(|s| s.entries_read),
    ) {
        let r = again as f64 / full.max(1) as f64;
        out.push((
            "LDAP entries read, no-change / full",
            format!("{:.1} %", r * 100.0),
            "proportional to changes",
            r <= 0.05,
        ));
    }
    if let Some(seconds) = t.one_user_visible {
        out.push((
            "1 changed user visible after",
            format!("{seconds:.2} s"),
            "≤ 2 s",
            seconds <= 2.0,
        ));
    }
    if let Some(rss) = t.get(FULL).and_then(Sample::rss_mib)
        && t.users >= 100_000
    {
        out.push((
            "peak RSS, full sync",
            format!("{rss:.0} MiB"),
            "≤ 250 MiB",
            rss <= 250.0,
        ));
    }
    // Growth against the smallest directory of the same kind measured in this run.
    if let Some(small) = all
        .iter()
        .filter(|o| o.users < t.users && same_kind(o, t))
        .min_by_key(|o| o.users)
    {
        let scale = t.users as f64 / small.users as f64;
        let pair = |f: fn(&Sample) -> Option<f64>| Some(f(t.get(FULL)?)? / f(small.get(FULL)?)?);
        // The full sync is mostly the apiserver's writes: floor B shows how those grew.
        let floor_b = match (t.get(FLOOR_B), small.get(FLOOR_B)) {
            (Some(big), Some(small)) => {
                format!(" (floor B: {:.1}×)", big.wall_seconds / small.wall_seconds)
            }
            _ => String::new(),
        };
        if let Some(r) = pair(|s| Some(s.wall_seconds)) {
            out.push((
                "full-sync time growth for the user ratio",
                format!("{r:.1}× for {scale:.0}× users{floor_b}"),
                "linear (≤ 1.1 × users ratio)",
                r <= scale * 1.1,
            ));
        }
        if let Some(r) = pair(Sample::rss_mib) {
            out.push((
                "peak RSS growth for the user ratio",
                format!("{r:.1}× for {scale:.0}× users"),
                "linear (≤ 1.1 × users ratio)",
                r <= scale * 1.1,
            ));
        }
    }
    out
}

fn push_ratios(push: &PushReport) -> Vec<Ratio> {
    let mut out = Vec::new();
    let count = push.latencies.len();
    if let (Some(median), Some(p99)) = (push.percentile(50.0), push.percentile(99.0)) {
        out.push((
            "pushed change visible, median",
            format!("{median:.2} s ({count} changes, {})", push.feed),
            "≤ 1 s",
            median <= 1.0,
        ));
        out.push((
            "pushed change visible, p99",
            format!("{p99:.2} s ({count} changes)"),
            "≤ 2 s",
            p99 <= 2.0,
        ));
    }
    if let Some(burst) = &push.burst {
        let r = burst.ratio();
        out.push((
            "pushed burst landed / max(its directory write, its UserGroup writes)",
            format!(
                "{r:.2} ({} users: the directory took {:.2} s, all shown {:.2} s later; writes {:.2} s)",
                burst.users, burst.directory_write, burst.landed_after, burst.writes
            ),
            "≤ 1.2",
            r <= 1.2,
        ));
    }
    if let Some((cpu, seconds)) = push.idle {
        let share = cpu / seconds * 100.0;
        out.push((
            "CPU of a core while idle with a feed open",
            format!("{share:.2} % ({cpu:.2} s over {seconds:.0} s)"),
            "< 1 %",
            share < 1.0,
        ));
    }
    out
}

fn same_kind(a: &TargetReport, b: &TargetReport) -> bool {
    a.label.split(',').next() == b.label.split(',').next()
}
