//! `--scale-users N`: growth instead of the default run. The operator syncs an OpenLDAP directory
//! of `--users` and then one of N (one group per 20 users and a group of half of them, as the
//! default run's), each from empty and then again with nothing changed; the report gives its peak
//! memory, the growth of time and memory against linear, and what the apiserver and etcd held and
//! needed. Each sync starts from empty in a fresh cluster, and the smaller directory is synced
//! three times (the median is reported). The apiserver's own growth is measured in the same run:
//! after each sync, the objects it wrote are created again by a plain loop into another fresh
//! cluster, and the CPU time of each part shows whose work grew. Written to `docs/scale.md`
//! unless `--output` says otherwise.

use std::fmt::Write;
use std::path::Path;

use crate::measure::{AuditLog, Sample, cpu_seconds, peak_rss};
use crate::operator::{self, Operator};
use crate::target::Target;
use crate::{Run, bed::Bed, floors};
use usersync_testbed::fixture::FixtureSpec;

/// No-change re-syncs of each directory; the median is reported.
const NO_CHANGE_RUNS: usize = 3;
/// Full syncs (and plain create loops) of the smaller directory; the median is reported.
const SMALL_REPEATS: usize = 3;
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
    /// CPU seconds each part used during the full sync.
    pub cpu: CpuUse,
    /// The same objects created by a plain loop into a fresh cluster (see `Run::scale_once`), and
    /// the CPU the apiserver and etcd used meanwhile.
    pub floor: Option<Sample>,
    pub floor_cpu: CpuUse,
    /// The wall times of every full sync and every plain create loop of this size.
    pub runs: (Vec<f64>, Vec<f64>),
}

/// CPU seconds used by each part of the bed over one scenario.
#[derive(Default)]
pub struct CpuUse {
    pub operator: Option<f64>,
    pub apiserver: Option<f64>,
    pub etcd: Option<f64>,
    pub slapd: Option<f64>,
}

/// The processes whose CPU time is measured, in the order of [`CpuUse`]'s fields.
struct Parts([Option<u32>; 4]);

impl Parts {
    fn now(&self) -> [Option<f64>; 4] {
        self.0.map(|pid| pid.and_then(cpu_seconds))
    }

    fn since(&self, before: [Option<f64>; 4]) -> CpuUse {
        let after = self.now();
        let [operator, apiserver, etcd, slapd] =
            std::array::from_fn(|i| Some(after[i]? - before[i]?));
        CpuUse {
            operator,
            apiserver,
            etcd,
            slapd,
        }
    }
}

impl Run<'_> {
    /// Each size's directory synced from empty in a fresh cluster, the smaller one `SMALL_REPEATS`
    /// times (a sync of half a minute moves by a tenth from run to run on a shared machine).
    pub async fn scale(
        &mut self,
        bed: &mut Bed,
        sizes: [usize; 2],
    ) -> Result<Vec<ScaleRow>, String> {
        let mut rows = Vec::new();
        for (i, users) in sizes.into_iter().enumerate() {
            let repeats = if i == 0 { SMALL_REPEATS } else { 1 };
            rows.push(self.scale_step(bed, users, repeats).await?);
        }
        Ok(rows)
    }

    /// One directory of `users`: its own slapd, synced `repeats` times; the row of the median full
    /// sync, with the median plain create loop.
    async fn scale_step(
        &mut self,
        bed: &mut Bed,
        users: usize,
        repeats: usize,
    ) -> Result<ScaleRow, String> {
        let tag = format!("scale-{users}");
        eprintln!("bench: {users} users");
        let target = bed.start_slapd(&format!("slapd-{tag}"), FixtureSpec::scaled(users))?;
        let mut rows = Vec::new();
        for _ in 0..repeats {
            rows.push(self.scale_once(bed, users, &target).await?);
        }
        bed.stop(&format!("slapd-{tag}"))?;
        let fulls: Vec<f64> = rows.iter().map(|r| r.full.wall_seconds).collect();
        let mut floors: Vec<(Sample, CpuUse)> = rows
            .iter_mut()
            .filter_map(|r| Some((r.floor.take()?, std::mem::take(&mut r.floor_cpu))))
            .collect();
        floors.sort_by(|a, b| a.0.wall_seconds.total_cmp(&b.0.wall_seconds));
        let loops: Vec<f64> = floors.iter().map(|f| f.0.wall_seconds).collect();
        rows.sort_by(|a, b| a.full.wall_seconds.total_cmp(&b.full.wall_seconds));
        let middle = rows.len() / 2;
        let mut row = rows.into_iter().nth(middle).ok_or("no sync")?;
        if let Some((floor, cpu)) = floors.into_iter().nth(middle) {
            (row.floor, row.floor_cpu) = (Some(floor), cpu);
        }
        row.runs = (fulls, loops);
        Ok(row)
    }

    /// One full sync and its no-change re-syncs in a fresh cluster, then the objects it wrote
    /// created again by a plain loop into another fresh cluster.
    async fn scale_once(
        &mut self,
        bed: &mut Bed,
        users: usize,
        target: &Target,
    ) -> Result<ScaleRow, String> {
        let tag = format!("scale-{users}");
        self.fresh_cluster(bed).await?;
        let ns = format!("bench-{tag}");
        operator::prepare_namespace(&self.client, &ns, target).await?;
        let operator = Operator::start(
            &self.args.usersync.to_string_lossy(),
            &ns,
            &self.kubeconfig,
            &self.logs.join(format!("operator-{tag}.log")),
            None,
        )?;
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let tasks = kube::Api::namespaced(self.client.clone(), &ns);
        let kube = bed.dir().join("kube");
        let parts = Parts([
            Some(operator.pid()),
            pid_of(&kube.join("apiserver.pid")),
            pid_of(&kube.join("etcd.pid")),
            pid_of(&bed.dir().join(format!("slapd-{tag}/slapd.pid"))),
        ]);
        let before = parts.now();
        let full = self
            .observe(&operator, &ns, operator::first_run(&tasks, target))
            .await?;
        let cpu = parts.since(before);
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
        let mut row = ScaleRow {
            users,
            groups: target.fixture.groups.len(),
            full,
            no_change,
            operator_peak_kib,
            apiserver_peak_kib: peak_of(&kube.join("apiserver.pid")),
            etcd_peak_kib: peak_of(&kube.join("etcd.pid")),
            etcd_db_bytes: std::fs::metadata(kube.join("etcd/member/snap/db"))
                .ok()
                .map(|m| m.len()),
            cpu,
            floor: None,
            floor_cpu: CpuUse::default(),
            runs: Default::default(),
        };
        let bodies = floors::stored_bodies(&self.client, &ns).await?;
        self.fresh_cluster(bed).await?;
        operator::create_namespace(&self.client, &ns).await?;
        let parts = Parts([
            None,
            pid_of(&kube.join("apiserver.pid")),
            pid_of(&kube.join("etcd.pid")),
            None,
        ]);
        let before = parts.now();
        let floor = floors::create_loop(&self.client, &ns, &bodies, crate::WRITES_AT_ONCE).await?;
        row.floor_cpu = parts.since(before);
        eprintln!(
            "bench:   plain create loop: {} objects in {:.2} s",
            bodies.len(),
            floor.wall_seconds
        );
        row.floor = Some(floor);
        Ok(row)
    }

    /// Stops the cluster and starts an empty one, settled: its CRDs installed, its first
    /// UserGroup written (the first waits about 2 s) and the apiserver quiet again (a CRD just
    /// installed keeps it busy for seconds).
    async fn fresh_cluster(&mut self, bed: &mut Bed) -> Result<(), String> {
        bed.stop("kube")?;
        let env = bed.start_kube()?;
        self.client = crate::connect(&env.kubeconfig).await?;
        self.kubeconfig = env.kubeconfig;
        self.audit = AuditLog::new(env.audit_log);
        crate::install_crds(&self.client).await?;
        operator::create_namespace(&self.client, "warm-up").await?;
        let body = serde_json::json!({
            "apiVersion": "usersync.io/v1alpha1",
            "kind": "UserGroup",
            "metadata": {"name": "warm-up"},
            "spec": {"displayName": "warm-up"},
        });
        let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
        floors::create_loop(&self.client, "warm-up", &[("warm-up".to_owned(), body)], 1).await?;
        if let Some(pid) = pid_of(&bed.dir().join("kube/apiserver.pid")) {
            until_quiet(pid).await;
        }
        Ok(())
    }
}

/// Waits (a minute at most) until a process uses under a tenth of a core over a second.
async fn until_quiet(pid: u32) {
    for _ in 0..60 {
        let before = cpu_seconds(pid);
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        match (before, cpu_seconds(pid)) {
            (Some(b), Some(a)) if a - b < 0.1 => return,
            (None, _) | (_, None) => return,
            _ => {}
        }
    }
}

fn pid_of(pid_file: &Path) -> Option<u32> {
    std::fs::read_to_string(pid_file).ok()?.trim().parse().ok()
}

fn peak_of(pid_file: &Path) -> Option<u64> {
    peak_rss(pid_of(pid_file)?)
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "–".to_owned(), |k| format!("{:.0}", k as f64 / 1024.0))
}

pub fn render(header: &str, rows: &[ScaleRow]) -> String {
    let mut out = String::new();
    out.push_str(header);
    out.push_str("\n| Users | Groups | UserGroup writes | Full sync (s) | Plain create loop of the same objects (s) | Operator peak RSS, full sync (MiB) | KiB per user | Re-sync, nothing changed (s) | Operator peak RSS, whole life (MiB) | apiserver peak RSS (MiB) | etcd peak RSS (MiB) | etcd database (MiB) |\n");
    out.push_str(
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for r in rows {
        let per_user = r.full.peak_rss_kib.map(|k| k as f64 / r.users as f64);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} | {} | {} | {} | {:.2} | {} | {} | {} | {} |",
            r.users,
            r.groups,
            r.full
                .user_group_writes
                .map_or_else(|| "–".to_owned(), |w| w.to_string()),
            r.full.wall_seconds,
            r.floor
                .as_ref()
                .map_or_else(|| "–".to_owned(), |f| format!("{:.1}", f.wall_seconds)),
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
    out.push('\n');
    for r in rows.iter().filter(|r| r.runs.0.len() > 1) {
        let times = |t: &[f64]| {
            t.iter()
                .map(|t| format!("{t:.1}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "{} users, the median of {} runs: full syncs {} s; plain create loops {} s.",
            r.users,
            r.runs.0.len(),
            times(&r.runs.0),
            times(&r.runs.1)
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
    out.push_str(&growth(rows));
    out
}

/// One figure of a row, where it was measured.
type Measured = fn(&ScaleRow) -> Option<f64>;

/// Whose time grew: the full sync next to the plain create loop of the same objects, and the CPU
/// time of each part during the full sync, from the first directory to the last.
fn growth(rows: &[ScaleRow]) -> String {
    let (Some(small), Some(big)) = (rows.first(), rows.last()) else {
        return String::new();
    };
    let size = big.users as f64 / small.users as f64;
    let mut out = format!(
        "\n## Growth by part\n\nFrom {} to {} users ({size:.0} × the users). The plain create \
         loop creates the objects usersync wrote again, {} at a time, into a fresh cluster (the \
         apiserver's and etcd's own growth); CPU is user and system time during the full sync or \
         the loop.\n\n| Part | {} users | {} users | Growth × linear |\n\
         | --- | ---: | ---: | ---: |\n",
        small.users,
        big.users,
        crate::WRITES_AT_ONCE,
        small.users,
        big.users
    );
    let floor = |r: &ScaleRow| r.floor.as_ref().map(|f| f.wall_seconds);
    let lines: [(&str, Measured); 8] = [
        ("Full sync (s)", |r| Some(r.full.wall_seconds)),
        ("Plain create loop of the same objects (s)", floor),
        ("CPU, operator (s)", |r| r.cpu.operator),
        ("CPU, apiserver (s)", |r| r.cpu.apiserver),
        ("CPU, etcd (s)", |r| r.cpu.etcd),
        ("CPU, slapd (s)", |r| r.cpu.slapd),
        ("CPU, apiserver, plain create loop (s)", |r| {
            r.floor_cpu.apiserver
        }),
        ("CPU, etcd, plain create loop (s)", |r| r.floor_cpu.etcd),
    ];
    for (part, value) in lines {
        let (a, b) = (value(small), value(big));
        let shown = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.1}"));
        let ratio = match (a, b) {
            (Some(a), Some(b)) if a > 0.0 => format!("{:.2}", b / a / size),
            _ => "–".to_owned(),
        };
        let _ = writeln!(out, "| {part} | {} | {} | {ratio} |", shown(a), shown(b));
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
    if let (Some(a), Some(b)) = (&small.floor, &big.floor) {
        let floor = b.wall_seconds / a.wall_seconds;
        out.push((
            "full sync time growth within 1.1 × the plain create loop's growth (the same objects \
             in the same run: what the apiserver's own growth leaves to usersync)"
                .to_owned(),
            format!(
                "{time:.2} × against {floor:.2} × ({:.2} × the loop's growth)",
                time / floor
            ),
            time / floor <= MAX_GROWTH_OVER_LINEAR,
        ));
    }
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
