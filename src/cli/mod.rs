//! The `usersync` command line.

mod report;
mod task_file;

use std::path::PathBuf;
use std::time::Instant;

use clap::{Parser, Subcommand};
use futures::FutureExt;

use crate::directory::connect::connect;
use crate::directory::read::{Feed, ReadOptions};
use crate::directory::reader_thread::on_reader_thread;
use crate::directory::settings::server_settings;
use crate::directory::snapshot::Snapshot;
use task_file::{Overrides, TaskFile};

/// usersync: synchronize Active Directory and LDAP users and groups into UserGroup resources.
#[derive(Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions as YAML, or write them to a file.
    Crd {
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Read the directory as a task file describes and print what a sync would see. No cluster needed.
    Preview {
        #[command(flatten)]
        task: TaskArgs,
    },
    /// Run the operator: watch UserSynchronizations and keep their UserGroups in sync.
    Run {
        /// Watch only these namespaces (repeat the flag or separate with commas; default: all).
        #[arg(long = "namespace", env = "USERSYNC_NAMESPACES", value_delimiter = ',')]
        namespaces: Vec<String>,
        /// Tasks synchronized at the same time.
        #[arg(long, default_value_t = 4, env = "USERSYNC_CONCURRENCY")]
        concurrency: u16,
        /// UserGroups written at the same time within one run.
        #[arg(long, default_value_t = 8, env = "USERSYNC_WRITE_CONCURRENCY")]
        write_concurrency: usize,
        /// UserGroup writes per second across all runs (0: no limit), to spare a busy apiserver.
        #[arg(long, default_value_t = 0, env = "USERSYNC_WRITE_RATE")]
        write_rate: u32,
        /// Ask Active Directory for members in explicit ranges of this size.
        #[arg(long, value_name = "N")]
        member_range: Option<usize>,
        /// Seconds between checks of a task's Secrets for rotation.
        #[arg(long, default_value_t = 60, env = "USERSYNC_REFERENCE_POLL_SECONDS")]
        reference_poll_seconds: u64,
        /// Namespace of the leader-election Lease; set it to run several replicas safely.
        #[arg(long, env = "USERSYNC_LEADER_ELECTION_NAMESPACE")]
        leader_election_namespace: Option<String>,
        /// Name of the leader-election Lease.
        #[arg(long, default_value = "usersync-leader", env = "USERSYNC_LEASE_NAME")]
        lease_name: String,
        /// Address of /healthz, /readyz and /metrics.
        #[arg(long, default_value = "0.0.0.0:8080", env = "USERSYNC_LISTEN")]
        listen: std::net::SocketAddr,
        /// Log format: json or text.
        #[arg(long, default_value = "json", env = "USERSYNC_LOG_FORMAT")]
        log_format: String,
    },
    /// Plan a task's sync against the cluster and print the changes it would make (needs --dry-run:
    /// writing is the operator's job).
    Sync {
        #[command(flatten)]
        task: TaskArgs,
        /// Print the plan, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Namespace of the task (default: the file's, else the kubeconfig's).
        #[arg(long, short = 'n')]
        namespace: Option<String>,
    },
    /// List the tree under the task's base DN: containers, groups and counts. No cluster needed.
    Browse {
        #[command(flatten)]
        task: TaskArgs,
        /// Levels below the base DN to show.
        #[arg(long, default_value_t = 3)]
        depth: usize,
        /// Show this DN instead of the task's baseDN.
        #[arg(long, value_name = "DN")]
        base: Option<String>,
    },
}

#[derive(clap::Args)]
struct TaskArgs {
    /// YAML file with a UserSynchronization (and, optionally, its Secrets and ConfigMaps).
    #[arg(long, short = 'f')]
    file: PathBuf,
    #[command(flatten)]
    overrides: Overrides,
    /// Ask Active Directory for members in explicit ranges of this size.
    #[arg(long, value_name = "N")]
    member_range: Option<usize>,
}

pub async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Crd { output } => write_crds(output),
        Command::Run {
            namespaces,
            concurrency,
            write_concurrency,
            write_rate,
            member_range,
            reference_poll_seconds,
            leader_election_namespace,
            lease_name,
            listen,
            log_format,
        } => {
            init_logging(&log_format);
            let client = kube::Client::try_default()
                .await
                .map_err(|e| format!("cannot reach Kubernetes: {e}"))?;
            let options = crate::controller::Options {
                // The chart passes an empty value for "all namespaces".
                namespaces: namespaces
                    .into_iter()
                    .map(|n| n.trim().to_owned())
                    .filter(|n| !n.is_empty())
                    .collect(),
                concurrency,
                read_options: ReadOptions { member_range },
                reference_poll: std::time::Duration::from_secs(reference_poll_seconds),
                shard_bytes: crate::planner::shard::DEFAULT_SHARD_BYTES,
                write_concurrency,
                write_rate: std::num::NonZeroU32::new(write_rate),
                listen: Some(listen),
                leader_election: leader_election_namespace
                    .filter(|n| !n.trim().is_empty())
                    .map(|namespace| crate::controller::leader::LeaderElection {
                        namespace,
                        lease_name,
                        identity: std::env::var("POD_NAME")
                            .or_else(|_| std::env::var("HOSTNAME"))
                            .unwrap_or_else(|_| format!("usersync-{}", std::process::id())),
                        lease_duration: std::time::Duration::from_secs(15),
                    }),
            };
            crate::controller::run(client, options).await;
            Ok(())
        }
        Command::Preview { task } => {
            let (snapshot, server, seconds) = read(&task, None).await?;
            print!("{}", report::summary(&snapshot, &server, seconds));
            Ok(())
        }
        Command::Sync {
            task,
            dry_run,
            namespace,
        } => {
            if !dry_run {
                return Err(
                    "sync only plans (--dry-run); the operator (usersync run) applies".into(),
                );
            }
            sync_dry_run(&task, namespace).await
        }
        Command::Browse { task, depth, base } => {
            let (snapshot, _, _) = read(&task, base).await?;
            print!("{}", report::tree(&snapshot, depth));
            Ok(())
        }
    }
}

async fn read(args: &TaskArgs, base: Option<String>) -> Result<(Snapshot, String, f64), String> {
    let file = TaskFile::load(&args.file)?;
    let material = file.material(&args.overrides)?;
    let spec = &file.task.spec;
    let settings = server_settings(&spec.server, material).map_err(|e| e.to_string())?;
    let mut directory = spec.directory.clone();
    if let Some(base) = base {
        directory.base_dn = base;
        directory.groups.clear();
    }
    let started = Instant::now();
    let options = ReadOptions {
        member_range: args.member_range,
    };
    let first_url = settings.urls.first().cloned().unwrap_or_default();
    let (snapshot, server) = on_reader_thread(&first_url, async move {
        let mut conn = connect(&settings).await?;
        let read = crate::directory::read::read(&mut conn, &directory, &options, Feed::Off).await?;
        Ok(((read.snapshot, conn.server), read.discarded))
    })
    .await
    .map_err(|e| format!("{} ({})", e, e.reason()))?;
    Ok((snapshot, server, started.elapsed().as_secs_f64()))
}

/// Structured logs; the level comes from RUST_LOG (default info).
fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if format == "text" {
        builder.init();
    } else {
        builder.json().flatten_event(true).init();
    }
}

/// Reads the directory as the task file says, compares with the task's UserGroups in the cluster,
/// and prints the plan: the same diff a dry-run task shows on its status.
async fn sync_dry_run(args: &TaskArgs, namespace: Option<String>) -> Result<(), String> {
    use crate::api::UserGroup;
    use crate::controller::metadata_list::{download, list_by_metadata, rebuild};
    use crate::controller::reconcile::{desired_of, plan_changes, preview, read_directory};
    use crate::planner::shard::DEFAULT_SHARD_BYTES;
    use kube::ResourceExt;

    let file = TaskFile::load(&args.file)?;
    let material = file.material(&args.overrides)?;
    let options = ReadOptions {
        member_range: args.member_range,
    };
    let failed = |e: crate::controller::error::ControllerError| format!("{e} ({})", e.reason());
    let users = crate::api::UserPool::default();
    let started = Instant::now();
    // The task as the cluster has it (its uid tells which UserGroups it owns), or the file's; and
    // the namespace's UserGroups.
    let cluster = async {
        let client = kube::Client::try_default()
            .await
            .map_err(|e| format!("cannot reach Kubernetes: {e}"))?;
        let namespace = namespace
            .or_else(|| file.task.namespace())
            .unwrap_or_else(|| client.default_namespace().to_owned());
        let tasks: kube::Api<crate::api::UserSynchronization> =
            kube::Api::namespaced(client.clone(), &namespace);
        let mut task = tasks
            .get_opt(&file.task.name_any())
            .await
            .map_err(|e| e.to_string())?
            .unwrap_or_else(|| file.task.clone());
        task.spec = file.task.spec.clone();
        let groups: kube::Api<UserGroup> = kube::Api::namespaced(client, &namespace);
        let listing = list_by_metadata(&groups, &users, &task)
            .await
            .map_err(failed)?;
        let seconds = started.elapsed().as_secs_f64();
        Ok::<_, String>((namespace, task, groups, listing, seconds))
    };
    // The directory (which needs only the file's spec) and the apiserver answer at the same time.
    let ((read, read_seconds), cluster) = tokio::join!(
        read_directory(&file.task, material, &options, Feed::Off)
            .map(|r| (r, started.elapsed().as_secs_f64())),
        cluster
    );
    let (read, server) = read.map_err(failed)?;
    let (namespace, task, groups, listing, list_seconds) = cluster?;
    let mut snapshot = read.snapshot;
    // Downloaded objects compare with the directory's records by address once they share them;
    // the objects rebuilt from digests hold the directory's own records already.
    if !listing.downloaded.is_empty() {
        users.share_all(&mut snapshot.users);
    }
    let planning = Instant::now();
    let desired = desired_of(&task, &snapshot);
    let mut downloaded = listing.downloaded.len();
    let (mut objects, differing) = rebuild(listing, &desired, &task, DEFAULT_SHARD_BYTES);
    downloaded += differing.len();
    objects.extend(
        download(&groups, &users, differing.into_iter())
            .await
            .map_err(failed)?,
    );
    let (plan, _) = plan_changes(&objects, &task, desired, false).map_err(failed)?;
    let plan_seconds = planning.elapsed().as_secs_f64();
    let summary = preview(&plan);
    println!(
        "task {namespace}/{}: {} users, {} groups read from {server} in {read_seconds:.2} s; \
         {} UserGroups listed in {list_seconds:.2} s ({downloaded} downloaded); planned in {plan_seconds:.2} s",
        task.name_any(),
        snapshot.users.len(),
        snapshot.groups.len(),
        objects.len(),
    );
    println!(
        "create {}, update {}, remove {}, skip {}, unchanged {}",
        summary.create, summary.update, summary.remove, summary.skip, plan.unchanged
    );
    for w in &plan.create {
        println!(
            "+ {}  ({}, {} users)",
            w.name,
            w.spec.display_name,
            w.spec.users.len()
        );
    }
    for w in &plan.update {
        println!(
            "~ {}  ({}, {} users)",
            w.name,
            w.spec.display_name,
            w.spec.users.len()
        );
    }
    for name in &plan.remove {
        println!("- {name}");
    }
    for s in &plan.skipped {
        println!("! {}  skipped: {:?}", s.name, s.reason);
    }
    if let Some(brake) = plan.brake {
        println!(
            "brake: {} removals exceed maxDeletions ({}); a run would remove nothing",
            brake.would_remove, brake.limit
        );
    }
    // The process ends here: freeing every record one by one would only delay the exit.
    std::mem::forget((plan, objects, snapshot));
    Ok(())
}

fn write_crds(output: Option<PathBuf>) -> Result<(), String> {
    let yaml = crate::api::crds_yaml().map_err(|e| format!("cannot render the CRDs: {e}"))?;
    match output {
        Some(path) => {
            std::fs::write(&path, yaml).map_err(|e| format!("cannot write {}: {e}", path.display()))
        }
        None => {
            print!("{yaml}");
            Ok(())
        }
    }
}
