//! The `usersync` command line: the operator (`run`), the commands that need no cluster (`preview`,
//! `browse`, `crd`, `version`, `completion`), `sync --dry-run`, and the day-2 commands on the
//! tasks in the cluster (`get`, `run-now`, `approve`, `suspend`, `resume`, `wait`, `explain`). The
//! same binary installed as `kubectl-usersync` is a kubectl plugin: `kubectl usersync get`.

mod exit;
mod kube_args;
mod operator;
mod output;
mod progress;
mod report;
mod sync;
mod task_file;
mod tasks;
mod version;

use std::path::PathBuf;
use std::time::Instant;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::directory::read::{Feed, ReadOptions};
use crate::directory::snapshot::Snapshot;
use crate::run::read::{Answered, read_directory};
pub use exit::Failure;
use operator::LogFormat;
use output::Format;
use task_file::{TaskArgs, prepare};

/// usersync: synchronize Active Directory and LDAP users and groups into UserGroup resources.
#[derive(Parser)]
#[command(version, about, after_help = exit::CODES)]
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
        /// Read below this DN instead of the task's baseDN and groups (needed to read through a
        /// connection without a task).
        #[arg(long, value_name = "DN")]
        base: Option<String>,
        /// text, json or yaml (the counts, and each group with its DN and counts).
        #[arg(long, short = 'o', value_enum, default_value_t)]
        output: Format,
    },
    /// Run the operator: watch UserSynchronizations and keep their UserGroups in sync.
    Run(operator::RunArgs),
    /// Plan a task's sync against the cluster and print the changes it would make (needs
    /// --dry-run: writing is the operator's job). Exit 0: nothing would change; 1: changes pending.
    Sync(sync::SyncArgs),
    /// List the tree under the task's base DN: containers, groups and counts. No cluster needed.
    Browse {
        #[command(flatten)]
        task: TaskArgs,
        /// Levels below the base DN to show.
        #[arg(long, default_value_t = 3)]
        depth: usize,
        /// Show this DN instead of the task's baseDN (needed to browse through a connection
        /// without a task).
        #[arg(long, value_name = "DN")]
        base: Option<String>,
        /// text (the tree, with DNs), or json or yaml: a `directory` snippet with the baseDN and
        /// the DNs of the groups shown, to paste into a task's spec.
        #[arg(long, short = 'o', value_enum, default_value_t)]
        output: Format,
    },
    /// The tasks of a namespace (or all, -A) and how they are doing.
    Get(tasks::GetArgs),
    /// Ask the operator to run a task now.
    RunNow {
        #[command(flatten)]
        task: tasks::TaskArgs,
        #[command(flatten)]
        wait: tasks::WaitFlags,
    },
    /// Show what a run held back by maxDeletions would remove, and let one run through.
    Approve(tasks::ApproveArgs),
    /// Stop a task's runs (spec.suspend) until it is resumed.
    Suspend(tasks::TaskArgs),
    /// Let a suspended task run again.
    Resume(tasks::TaskArgs),
    /// Wait for a successful run of the task's current generation. Exit 1: the run failed; 3:
    /// timed out.
    Wait(tasks::WaitArgs),
    /// What a reason on a task's conditions or push status means, and what to do.
    Explain(tasks::ExplainArgs),
    /// The version and commit of this build.
    Version {
        /// text, json or yaml.
        #[arg(long, short = 'o', value_enum, default_value_t)]
        output: Format,
    },
    /// A shell completion script, for `source <(usersync completion bash)` and the like.
    Completion { shell: clap_complete::Shell },
}

/// The command line as given; help and errors name the command as it was invoked (`kubectl
/// usersync` when kubectl runs the binary as its plugin).
pub fn parse() -> Cli {
    let invoked_as = std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    let mut command = Cli::command();
    if invoked_as.starts_with("kubectl-usersync") {
        command = command.bin_name("kubectl usersync");
    }
    let matches = command.get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Runs one command of the command line.
pub async fn dispatch(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Run(args) => {
            operator_logging(args.log_format);
            return operator::run(args).await;
        }
        _ => command_logging(),
    }
    match cli.command {
        Command::Run(_) => Ok(()),
        Command::Crd { output } => Ok(write_crds(output)?),
        Command::Preview { task, base, output } => {
            let (snapshot, server, seconds) = read(&task, base).await?;
            let doc = report::summary_doc(&snapshot, &server, seconds);
            output::print(output, &doc, |_| {
                report::summary(&snapshot, &server, seconds)
            })?;
            Ok(())
        }
        Command::Sync(args) => sync::sync(args).await,
        Command::Browse {
            task,
            depth,
            base,
            output,
        } => {
            let (snapshot, _, _) = read(&task, base).await?;
            let picked = report::picked(&snapshot, depth);
            output::print(output, &picked, |_| report::tree(&snapshot, depth))?;
            Ok(())
        }
        Command::Get(args) => tasks::get(args).await,
        Command::RunNow { task, wait } => tasks::run_now(task, wait).await,
        Command::Approve(args) => tasks::approve(args).await,
        Command::Suspend(task) => tasks::suspend(task, true).await,
        Command::Resume(task) => tasks::suspend(task, false).await,
        Command::Wait(args) => tasks::wait(args).await,
        Command::Explain(args) => tasks::explain(args),
        Command::Version { output } => version::print(output),
        Command::Completion { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "usersync", &mut std::io::stdout());
            Ok(())
        }
    }
}

/// Reads the directory as the task file says (below `base` instead of its baseDN and groups, when
/// given).
async fn read(args: &TaskArgs, base: Option<String>) -> Result<(Snapshot, String, f64), String> {
    let (file, _, resolved) = prepare(args, base.as_deref()).await?;
    let started = Instant::now();
    let (progress, shown) = progress::start();
    let options = ReadOptions {
        member_range: args.member_range,
        progress,
    };
    let directory = &file.task.spec.directory;
    let Answered { read, server, .. } =
        read_directory(resolved, directory, &options, Feed::Off, None)
            .await
            .map_err(|e| format!("{} ({})", e, e.reason()))?;
    drop(shown);
    Ok((read.snapshot, server, started.elapsed().as_secs_f64()))
}

/// The operator's logs: JSON (or text) on standard output, at the level RUST_LOG sets (else info).
fn operator_logging(format: LogFormat) {
    let builder = tracing_subscriber::fmt().with_env_filter(level_or("info"));
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

/// The other commands' logs: text on standard error, apart from what they print; warnings only
/// unless RUST_LOG says otherwise.
fn command_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(level_or("warn"))
        .with_writer(std::io::stderr)
        .init();
}

fn level_or(default: &str) -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default))
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
