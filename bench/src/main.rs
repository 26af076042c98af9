//! The benchmark behind `cargo xtask bench`: brings up its own apiserver and directories under
//! `.bench/`, measures usersync against two floors and a baseline in the same run, and writes the
//! report (by default `docs/benchmarks.md`).

mod baseline;
mod bed;
mod floors;
mod measure;
mod operator;
mod push;
mod report;
mod scale;
mod target;

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use clap::Parser;
use kube::api::{Api, ListParams};
use usersync::api::{UserGroup, UserSynchronization};
use usersync_testbed::fixture::FixtureSpec;

use measure::{AuditLog, Sample};
use operator::Operator;
use report::TargetReport;
use target::Target;

/// Runs of each short scenario whose median is reported.
const REPEATS: usize = 3;
/// UserGroup writes in flight, for floor B and for the operator.
const WRITES_AT_ONCE: usize = 16;

#[derive(Parser)]
struct Args {
    /// Users in the big OpenLDAP directory (with one group per 20 users and a group of half of
    /// them); 0 skips it, e.g. to measure Samba alone.
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    /// Users in the small OpenLDAP directory that growth is measured against; 0 skips it.
    #[arg(long, default_value_t = 10_000)]
    small_users: usize,
    /// Users in the Samba AD directory; 0 skips it (Samba loads about 130 users a second).
    #[arg(long, default_value_t = 20_000)]
    samba_users: usize,
    /// Member range forced on Samba.
    #[arg(long, default_value_t = 500)]
    member_range: usize,
    /// The usersync binary to measure (a release build).
    #[arg(long)]
    usersync: PathBuf,
    /// Python of a venv with bench/baseline/requirements.txt; without it the baseline is skipped.
    #[arg(long)]
    python: Option<PathBuf>,
    /// Where the report goes: docs/benchmarks.md, or docs/scale.md with `--scale-users`.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Measures growth instead: OpenLDAP directories of `--users` and of this many users, each
    /// synced from empty and again with nothing changed (see `scale.rs`).
    #[arg(long, default_value_t = 0)]
    scale_users: usize,
    /// Seconds the operator watches the big directory with a push feed open and nothing changing
    /// (its CPU is measured); 0 skips it.
    #[arg(long, default_value_t = 300)]
    idle_seconds: u64,
}

struct Run<'a> {
    args: &'a Args,
    root: PathBuf,
    client: kube::Client,
    kubeconfig: String,
    audit: AuditLog,
    logs: PathBuf,
}

#[tokio::main]
async fn main() {
    if let Err(e) = bench(Args::parse()).await {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

async fn bench(args: Args) -> Result<(), String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no workspace root")?
        .to_owned();
    let mut bed = bed::Bed::new(&root);
    let kube_env = bed.start_kube()?;
    let client = connect(&kube_env.kubeconfig).await?;
    install_crds(&client).await?;
    let mut run = Run {
        args: &args,
        root: root.clone(),
        client,
        kubeconfig: kube_env.kubeconfig.clone(),
        audit: AuditLog::new(kube_env.audit_log.clone()),
        logs: bed.dir().to_owned(),
    };

    if args.scale_users > 0 {
        let rows = run.scale(&mut bed, [args.users, args.scale_users]).await?;
        let output = args.output.clone().unwrap_or("docs/scale.md".into());
        return write_text(&root.join(output), &scale::render(&scale_header(), &rows));
    }
    let mut reports = Vec::new();
    if args.small_users > 0 {
        let target = bed.start_slapd("slapd-small", FixtureSpec::scaled(args.small_users))?;
        reports.push(run.measure(&target, "small", false).await?);
    }
    if args.users > 0 {
        let target = bed.start_slapd("slapd-big", FixtureSpec::scaled(args.users))?;
        reports.push(run.measure(&target, "big", true).await?);
        // What is measured so far is kept even if a later directory fails.
        write_report(&root, &args, &reports)?;
    }
    if args.samba_users > 0 {
        let target = bed.start_samba(FixtureSpec::scaled(args.samba_users), args.member_range)?;
        reports.push(run.measure(&target, "samba", true).await?);
    }
    write_report(&root, &args, &reports)
}

fn write_report(
    root: &std::path::Path,
    args: &Args,
    reports: &[TargetReport],
) -> Result<(), String> {
    let header = format!(
        "# Benchmarks\n\nWritten by `cargo xtask bench` on {} ({} cores). Every number comes from the same run, \
         against the local apiserver and directories the test bed's scripts start; wall times include the \
         apiserver and the directory, which share the machine. Scenarios run one after another on each \
         directory; UserGroup writes are counted in the apiserver's audit log. The operator runs with \
         `--write-concurrency {WRITES_AT_ONCE}`, as many writes in flight as floor B (its default is 8).\n",
        utc_now(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let notes = std::fs::read_to_string(root.join("bench/notes.md")).unwrap_or_default();
    let text = report::render(&header, reports, &notes);
    let output = args.output.clone().unwrap_or("docs/benchmarks.md".into());
    write_text(&root.join(output), &text)
}

fn scale_header() -> String {
    format!(
        "# Scale\n\nWritten by `cargo xtask bench -- --scale-users N` on {} ({} cores): the operator \
         (`usersync run`, release build) syncs OpenLDAP directories of two sizes into the local \
         apiserver, each from empty in a fresh cluster and then three times with nothing changed \
         (the median is shown); the smaller directory is synced three times, each in a fresh \
         cluster, and the run with the median full sync is shown. The objects each full sync wrote \
         are then created again by a plain loop into another fresh cluster. Each directory has one \
         group per 20 users and a group of half of the users. Peak RSS is VmHWM; the apiserver's \
         and etcd's are since they started, with that directory's objects alone.\n",
        utc_now(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    )
}

fn write_text(output: &std::path::Path, text: &str) -> Result<(), String> {
    if let Some(dir) = output.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(output, text).map_err(|e| format!("{}: {e}", output.display()))?;
    eprintln!("bench: wrote {}", output.display());
    Ok(())
}

/// A client of the apiserver `kubeconfig` names.
async fn connect(kubeconfig: &str) -> Result<kube::Client, String> {
    let kubeconfig =
        kube::config::Kubeconfig::read_from(kubeconfig).map_err(|e| format!("kubeconfig: {e}"))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| format!("kubeconfig: {e}"))?;
    kube::Client::try_from(config).map_err(|e| format!("kube client: {e}"))
}

/// The time the report is written, from `date` (no calendar crate needed for one line).
fn utc_now() -> String {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output();
    out.ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The CRDs as the Rust types define them, applied and established.
async fn install_crds(client: &kube::Client) -> Result<(), String> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Patch, PatchParams};
    use kube::runtime::wait::{await_condition, conditions};
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in usersync::api::crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(
            &name,
            &PatchParams::apply("usersync-bench").force(),
            &Patch::Apply(&crd),
        )
        .await
        .map_err(|e| format!("CRD {name}: {e}"))?;
        let established = await_condition(api.clone(), &name, conditions::is_crd_established());
        tokio::time::timeout(std::time::Duration::from_secs(30), established)
            .await
            .map_err(|_| format!("CRD {name} not established"))?
            .map_err(|e| format!("CRD {name}: {e}"))?;
    }
    Ok(())
}

impl Run<'_> {
    async fn measure(
        &mut self,
        target: &Target,
        tag: &str,
        full: bool,
    ) -> Result<TargetReport, String> {
        let label = target.label();
        eprintln!("bench: {label}");
        let mut report = TargetReport {
            label,
            users: target.fixture.users.len(),
            rows: Vec::new(),
            one_user_visible: None,
            one_user_work: None,
            push: None,
        };
        let dump = floors::dump(target)?;
        eprintln!("bench:   floor A {:.2} s", dump.wall_seconds);
        report.rows.push((report::FLOOR_A, dump));

        let ns = format!("bench-{tag}");
        operator::prepare_namespace(&self.client, &ns, target).await?;
        let operator = Operator::start(
            &self.args.usersync.to_string_lossy(),
            &ns,
            &self.kubeconfig,
            &self.logs.join(format!("operator-{tag}.log")),
            target.member_range,
        )?;
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let tasks: Api<UserSynchronization> = Api::namespaced(self.client.clone(), &ns);
        let groups: Api<UserGroup> = Api::namespaced(self.client.clone(), &ns);

        let sample = self
            .observe(&operator, &ns, operator::first_run(&tasks, target))
            .await?;
        report.rows.push((report::FULL, sample));
        let sample = self
            .observe(&operator, &ns, operator::run_now(&tasks, "no-change"))
            .await?;
        report.rows.push((report::NO_CHANGE, sample));
        if !full {
            // Floor B here too: the apiserver's own growth, which the full sync's growth follows.
            drop(operator);
            report.rows.push((
                report::FLOOR_B,
                self.floor_b(target, tag, &ns, false).await?,
            ));
            return Ok(report);
        }
        // The preview is compared with floor A: both take a few seconds, so each runs several
        // times, alternately, and their medians are compared.
        let (mut previews, mut dumps) = (Vec::new(), Vec::new());
        for _ in 0..REPEATS {
            previews.push(self.preview(target, &ns)?);
            dumps.push(floors::dump(target)?);
        }
        let floor_a = measure::median(dumps).ok_or("no floor A run")?;
        for (scenario, sample) in &mut report.rows {
            if *scenario == report::FLOOR_A {
                *sample = floor_a.clone();
            }
        }
        let preview = measure::median(previews).ok_or("no preview run")?;
        eprintln!("bench:   preview {:.2} s", preview.wall_seconds);
        report.rows.push((report::PREVIEW, preview));

        // One user renamed, three times: how soon its group shows it, and what the run costs.
        let (group, dn) = group_of_a_user(&groups, target).await?;
        let log = self.logs.join(format!("operator-{tag}.log"));
        let (mut samples, mut seen, mut work) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..REPEATS {
            let before = push::log_offset(&log);
            let name = format!("renamed {i}");
            target.modify(&target.rename_users_ldif(0, 1, &name))?;
            let started = Instant::now();
            let shown = format!("User 0 {name}");
            let visible = operator::until_member_shows(&groups, &group, &dn, &shown, started);
            let token = format!("one-user-{i}");
            let (sample, visible) = tokio::join!(
                self.observe(&operator, &ns, operator::run_now(&tasks, &token)),
                visible
            );
            samples.push(sample?);
            seen.push(visible?);
            work.push(
                push::step_field(&log, before, "read", "cpu_seconds")
                    + push::step_field(&log, before, "planned", "cpu_seconds"),
            );
        }
        report
            .rows
            .push((report::ONE_USER, measure::median(samples).ok_or("no run")?));
        report.one_user_visible = measure::median_of(seen);
        report.one_user_work = measure::median_of(work);

        let hundredth = target.fixture.users.len() / 100;
        target.modify(&target.rename_users_ldif(1, 1 + hundredth, "changed"))?;
        let sample = self
            .observe(&operator, &ns, operator::run_now(&tasks, "one-percent"))
            .await?;
        report.rows.push((report::ONE_PERCENT, sample));

        target.modify(&format!(
            "dn: {}\nchangetype: modify\ndelete: member\nmember: {}\n\n",
            target.big_group_dn(),
            target.user_dn(target.fixture.users.len() / 2 - 1)
        ))?;
        let sample = self
            .observe(&operator, &ns, operator::run_now(&tasks, "big-group"))
            .await?;
        report.rows.push((report::BIG_GROUP, sample));
        // The idle CPU is measured on the biggest directory only.
        let idle = if target.fixture.users.len() >= 100_000 {
            self.args.idle_seconds
        } else {
            0
        };
        report.push = Some(push::measure(&self.client, &ns, &operator, &log, target, idle).await?);
        drop(operator);

        report.rows.push((
            report::FLOOR_B,
            self.floor_b(target, tag, &ns, false).await?,
        ));
        report.rows.push((
            report::FLOOR_B_TWO,
            self.floor_b(target, tag, &ns, true).await?,
        ));

        if let Some(python) = &self.args.python {
            let base_ns = format!("bench-{tag}-baseline");
            operator::prepare_namespace(&self.client, &base_ns, target).await?;
            let script = self.root.join("bench/baseline/sync.py");
            match baseline::run(python, &script, target, &base_ns, &self.kubeconfig) {
                Ok(mut sample) => {
                    sample.user_group_writes = Some(self.audit.user_group_writes(&base_ns));
                    eprintln!("bench:   baseline {:.2} s", sample.wall_seconds);
                    report.rows.push((report::BASELINE, sample));
                }
                Err(e) => eprintln!("bench:   the baseline failed: {e}"),
            }
        }
        Ok(report)
    }

    /// Floor B: the objects the operator wrote in `ns`, applied afresh to a namespace of their own,
    /// each in one request (`two_requests`: the object, then its count, as before the count moved
    /// into the object).
    async fn floor_b(
        &mut self,
        target: &Target,
        tag: &str,
        ns: &str,
        two_requests: bool,
    ) -> Result<Sample, String> {
        let floor_ns = match two_requests {
            true => format!("bench-{tag}-floor-b2"),
            false => format!("bench-{tag}-floor-b"),
        };
        operator::prepare_namespace(&self.client, &floor_ns, target).await?;
        let mut sample =
            floors::apply_loop(&self.client, ns, &floor_ns, WRITES_AT_ONCE, two_requests).await?;
        sample.user_group_writes = Some(self.audit.user_group_writes(&floor_ns));
        sample.note = format!("{WRITES_AT_ONCE} at a time");
        eprintln!("bench:   floor B {:.2} s", sample.wall_seconds);
        Ok(sample)
    }

    /// Runs one operator scenario and collects its peak RSS, entries read and writes.
    async fn observe(
        &mut self,
        operator: &Operator,
        ns: &str,
        scenario: impl std::future::Future<Output = Result<Sample, String>>,
    ) -> Result<Sample, String> {
        self.audit.user_group_writes(ns);
        let entries = operator.entries_read().await?;
        operator.reset_peak();
        let mut sample = scenario.await?;
        sample.peak_rss_kib = operator.peak_rss_kib();
        sample.entries_read = Some(operator.entries_read().await? - entries);
        sample.user_group_writes = Some(self.audit.user_group_writes(ns));
        eprintln!("bench:   {:.2} s {}", sample.wall_seconds, sample.note);
        Ok(sample)
    }

    /// `usersync sync --dry-run`: the same read, planned against the namespace, nothing written.
    fn preview(&self, target: &Target, ns: &str) -> Result<Sample, String> {
        let file = self.logs.join(format!("{ns}-task.yaml"));
        let task =
            serde_json::to_string(&target.task(operator::TASK)).map_err(|e| e.to_string())?;
        std::fs::write(&file, task).map_err(|e| e.to_string())?;
        let (mut timings, mut counts) = (String::new(), String::new());
        let mut sample = measure::time_command(
            Command::new(&self.args.usersync)
                .args(["sync", "--dry-run", "-n", ns, "-f"])
                .arg(&file)
                .args([
                    "--username",
                    &target.bind,
                    "--password-env",
                    "BENCH_PASSWORD",
                ])
                .args(["--ca-file", &target.ca_file])
                .env("BENCH_PASSWORD", &target.password)
                .env("KUBECONFIG", &self.kubeconfig),
            |line| {
                // "task …: N users, M groups read from S in R s; K UserGroups listed in L s"
                if let Some((_, steps)) = line.split_once(" read from ")
                    && let Some((_, steps)) = steps.split_once(" in ")
                {
                    timings = steps.to_owned();
                }
                if line.starts_with("create ") {
                    counts = line.to_owned();
                }
            },
        )?;
        // The namespace holds what a sync just wrote: a preview that plans anything is wrong.
        if !counts.starts_with("create 0, update 0, remove 0,") {
            return Err(format!("preview planned changes after a sync: {counts:?}"));
        }
        sample.note = format!("no changes to plan; read in {timings}");
        Ok(sample)
    }
}

/// A UserGroup with user 0 of the fixture among its members: (its name, the user's DN).
async fn group_of_a_user(
    groups: &Api<UserGroup>,
    target: &Target,
) -> Result<(String, String), String> {
    let dn = target.user_dn(0);
    let all = groups
        .list(&ListParams::default())
        .await
        .map_err(|e| format!("list: {e}"))?;
    // The smallest of its groups: watching for the change polls the object, and polling a group of
    // half the users would load the apiserver the run writes to.
    all.items
        .iter()
        .filter(|g| g.spec.users.iter().any(|u| u.dn.eq_ignore_ascii_case(&dn)))
        .min_by_key(|g| g.spec.users.len())
        .and_then(|g| g.metadata.name.clone())
        .map(|name| (name, dn))
        .ok_or_else(|| "user 0 is in no UserGroup".to_owned())
}
