//! `--scale-users N`: growth instead of the default run. The operator syncs an OpenLDAP directory
//! of `--users` and then one of N (one group per 20 users and a group of half of them, as the
//! default run's), each from empty and then again with nothing changed; the report gives its peak
//! memory, the growth of time and memory against linear, and what the apiserver and etcd held and
//! needed. Written to `docs/scale.md` unless `--output` says otherwise.

use std::fmt::Write;
use std::path::Path;

use crate::measure::{Sample, peak_rss};
use crate::operator::{self, Operator};
use crate::{Run, bed::Bed};
use usersync_testbed::fixture::FixtureSpec;

/// No-change re-syncs of each directory; the median is reported.
const NO_CHANGE_RUNS: usize = 3;
/// The targets the report checks.
const MAX_PEAK_KIB: u64 = 1536 * 1024;
const MAX_KIB_PER_USER: f64 = 1.5;
const MAX_NO_CHANGE_SECONDS: f64 = 2.0;
const MAX_GROWTH_OVER_LINEAR: f64 = 1.1;

pub struct ScaleRow {
    pub users: usize,
    pub groups: usize,
    pub full: Sample,
    pub no_change: Sample,
    /// The operator's peak resident memory over its whole life (both syncs), KiB.
    pub operator_peak_kib: Option<u64>,
    /// The apiserver's and etcd's peak resident memory since they started, KiB.
    pub apiserver_peak_kib: Option<u64>,
    pub etcd_peak_kib: Option<u64>,
    /// Size of etcd's database file after the syncs.
    pub etcd_db_bytes: Option<u64>,
}

impl Run<'_> {
    /// One directory of `users`: its own slapd, namespace and operator.
    pub async fn scale_step(&mut self, bed: &mut Bed, users: usize) -> Result<ScaleRow, String> {
        let tag = format!("scale-{users}");
        eprintln!("bench: {users} users");
        let target = bed.start_slapd(&format!("slapd-{tag}"), FixtureSpec::scaled(users))?;
        let groups = target.fixture.groups.len();
        let ns = format!("bench-{tag}");
        operator::prepare_namespace(&self.client, &ns, &target).await?;
        let operator = Operator::start(
            &self.args.usersync.to_string_lossy(),
            &ns,
            &self.kubeconfig,
            &self.logs.join(format!("operator-{tag}.log")),
            None,
        )?;
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let tasks = kube::Api::namespaced(self.client.clone(), &ns);
        let full = self
            .observe(&operator, &ns, operator::first_run(&tasks, &target))
            .await?;
        let mut no_change = Vec::new();
        for i in 0..NO_CHANGE_RUNS {
            let token = format!("no-change-{i}");
            no_change.push(
                self.observe(&operator, &ns, operator::run_now(&tasks, &token))
                    .await?,
            );
        }
        // Each scenario measures its own peak: the operator's is the largest of them.
        let operator_peak_kib = std::iter::once(&full)
            .chain(&no_change)
            .filter_map(|s| s.peak_rss_kib)
            .max();
        let no_change = crate::measure::median(no_change).ok_or("no re-sync")?;
        drop(operator);
        let kube = bed.dir().join("kube");
        let row = ScaleRow {
            users,
            groups,
            full,
            no_change,
            operator_peak_kib,
            apiserver_peak_kib: peak_of(&kube.join("apiserver.pid")),
            etcd_peak_kib: peak_of(&kube.join("etcd.pid")),
            etcd_db_bytes: std::fs::metadata(kube.join("etcd/member/snap/db"))
                .ok()
                .map(|m| m.len()),
        };
        bed.stop(&format!("slapd-{tag}"))?;
        Ok(row)
    }
}

fn peak_of(pid_file: &Path) -> Option<u64> {
    let pid = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    peak_rss(pid)
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "–".to_owned(), |k| format!("{:.0}", k as f64 / 1024.0))
}

pub fn render(header: &str, rows: &[ScaleRow]) -> String {
    let mut out = String::new();
    out.push_str(header);
    out.push_str("\n| Users | Groups | UserGroup writes | Full sync (s) | Operator peak RSS, full sync (MiB) | KiB per user | Re-sync, nothing changed (s) | Operator peak RSS, whole life (MiB) | apiserver peak RSS (MiB) | etcd peak RSS (MiB) | etcd database (MiB) |\n");
    out.push_str(
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for r in rows {
        let per_user = r.full.peak_rss_kib.map(|k| k as f64 / r.users as f64);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} | {} | {} | {:.2} | {} | {} | {} | {} |",
            r.users,
            r.groups,
            r.full
                .user_group_writes
                .map_or_else(|| "–".to_owned(), |w| w.to_string()),
            r.full.wall_seconds,
            mib(r.full.peak_rss_kib),
            per_user.map_or_else(|| "–".to_owned(), |k| format!("{k:.2}")),
            r.no_change.wall_seconds,
            mib(r.operator_peak_kib),
            mib(r.apiserver_peak_kib),
            mib(r.etcd_peak_kib),
            r.etcd_db_bytes.map_or_else(
                || "–".to_owned(),
                |b| format!("{:.0}", b as f64 / 1048576.0)
            ),
        );
    }
    out.push_str("\n## Targets\n\n| Target | Measured | Met |\n| --- | --- | --- |\n");
    for (target, measured, met) in targets(rows) {
        let _ = writeln!(
            out,
            "| {target} | {measured} | {} |",
            if met { "yes" } else { "**no**" }
        );
    }
    out
}

/// (target, what was measured, whether it was met), for the largest directory against the first.
fn targets(rows: &[ScaleRow]) -> Vec<(String, String, bool)> {
    let (Some(small), Some(big)) = (rows.first(), rows.last()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let peak = big.operator_peak_kib.unwrap_or(u64::MAX);
    out.push((
        format!(
            "{} users complete; operator peak RSS under 1.5 GiB",
            big.users
        ),
        format!("{} MiB", mib(big.operator_peak_kib)),
        peak < MAX_PEAK_KIB,
    ));
    let per_user = peak as f64 / big.users as f64;
    out.push((
        "under 1.5 KiB per user".to_owned(),
        format!("{per_user:.2} KiB"),
        per_user < MAX_KIB_PER_USER,
    ));
    out.push((
        "re-sync with nothing changed under 2 s".to_owned(),
        format!("{:.2} s", big.no_change.wall_seconds),
        big.no_change.wall_seconds < MAX_NO_CHANGE_SECONDS,
    ));
    let size = big.users as f64 / small.users as f64;
    let time = big.full.wall_seconds / small.full.wall_seconds;
    out.push((
        format!(
            "full sync time growth from {} to {} users within 1.1 × linear",
            small.users, big.users
        ),
        format!(
            "{time:.2} × for {size:.0} × the users ({:.2} × linear)",
            time / size
        ),
        time / size <= MAX_GROWTH_OVER_LINEAR,
    ));
    if let (Some(a), Some(b)) = (small.operator_peak_kib, big.operator_peak_kib) {
        let memory = b as f64 / a as f64;
        out.push((
            "memory growth within 1.1 × linear".to_owned(),
            format!("{memory:.2} × ({:.2} × linear)", memory / size),
            memory / size <= MAX_GROWTH_OVER_LINEAR,
        ));
    }
    out
}
