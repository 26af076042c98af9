//! `cargo xtask …`: the project's developer tasks.
//!
//! - `test`: builds the image, starts the test bed (Kubernetes, Samba AD, OpenLDAP, 389-DS, and a
//!   second cluster with a real node that runs the image), runs all tests, stops it; then runs each
//!   fuzz target for 30 s.
//! - `fuzz`: the cargo-fuzz targets (nightly, libFuzzer), each for a bounded time.
//! - `image`: the operator's multi-platform OCI image (layout and tar), without a container engine.
//! - `demo`: the README quick start: test bed + CRDs + an example task, then `kubectl get usync,ug`.
//! - `up` / `down`: start or stop the test bed and leave it for manual use (`source .testbed/env`);
//!   `up --node` adds the cluster with a node, and builds the image for it.
//! - `fixture`: write the fixture LDIF for a server.
//! - `bench`: measure usersync against floors and a baseline; writes `docs/benchmarks.md`.

mod bench;
mod fuzz;
mod image;
mod testbed;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use usersync_testbed::env::Ds389;
use usersync_testbed::fixture::{FixtureSpec, generate};
use usersync_testbed::ldif;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the image, start the test bed, run all tests against it, stop it.
    Test {
        /// Arguments passed on to `cargo test` (after `--`).
        #[arg(last = true)]
        cargo_args: Vec<String>,
    },
    /// Run each fuzz target (nightly, cargo-fuzz) for a bounded time.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 300)]
        seconds: u64,
    },
    /// Build the operator's OCI image for linux/amd64 and linux/arm64 (no container engine needed).
    Image(image::Options),
    /// Start the test bed, install the CRDs and the example task, show the result.
    Demo,
    /// Start the test bed and leave it running.
    Up {
        /// Also start the cluster with a real node (kubelet, containerd) and load the image into it.
        #[arg(long)]
        node: bool,
    },
    /// Stop a test bed left running by `up`.
    Down,
    /// Measure usersync on big directories against floors and a baseline; writes docs/benchmarks.md.
    Bench {
        /// Arguments for the benchmark (see `cargo run -p usersync-bench -- --help`), after `--`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Write the fixture as LDIF.
    Fixture {
        #[arg(long, value_enum)]
        server: Server,
        /// Number of users (default: the fixture the test bed loads into that server).
        #[arg(long)]
        users: Option<usize>,
        /// OpenLDAP only: include memberOf values, for offline slapadd loads.
        #[arg(long)]
        member_of: bool,
        #[arg(long, short)]
        output: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Server {
    ActiveDirectory,
    Openldap,
    #[value(name = "389ds")]
    Ds389,
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        // The packaging tests read the image and the node runs it, so it is built first.
        Command::Test { cargo_args } => image::build(image::Options::default())
            .and_then(|image| testbed::run_tests(&image, &cargo_args))
            .and_then(|()| fuzz::fuzz(fuzz::TEST_SECONDS)),
        Command::Fuzz { seconds } => fuzz::fuzz(seconds),
        Command::Image(options) => image::build(options).map(|_| ()),
        Command::Demo => testbed::demo(),
        Command::Up { node: false } => testbed::up(None).map(|_| ()),
        Command::Up { node: true } => image::build(image::Options::default())
            .and_then(|image| testbed::up(Some(&image)))
            .map(|_| ()),
        Command::Down => testbed::down(),
        Command::Bench { args } => bench::bench(&args),
        Command::Fixture {
            server,
            users,
            member_of,
            output,
        } => write_fixture(server, users, member_of, &output),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn write_fixture(
    server: Server,
    users: Option<usize>,
    member_of: bool,
    output: &PathBuf,
) -> Result<(), String> {
    let default = match server {
        Server::Ds389 => Ds389::FIXTURE,
        Server::ActiveDirectory | Server::Openldap => FixtureSpec::STANDARD,
    };
    let spec = users.map_or(default, FixtureSpec::scaled);
    let fixture = generate(spec);
    let file =
        File::create(output).map_err(|e| format!("cannot create {}: {e}", output.display()))?;
    let mut out = BufWriter::new(file);
    match server {
        Server::ActiveDirectory => ldif::write_active_directory(&fixture, &mut out),
        Server::Openldap => ldif::write_openldap(&fixture, member_of, &mut out),
        Server::Ds389 => ldif::write_389ds(&fixture, &mut out),
    }
    .and_then(|()| out.flush())
    .map_err(|e| format!("cannot write {}: {e}", output.display()))
}
