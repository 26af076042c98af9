use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// usersync: synchronize Active Directory and LDAP users and groups into UserGroup resources.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crd { output } => write_crds(output),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("usersync: {message}");
            ExitCode::FAILURE
        }
    }
}

fn write_crds(output: Option<PathBuf>) -> Result<(), String> {
    let yaml = usersync::api::crds_yaml().map_err(|e| format!("cannot render the CRDs: {e}"))?;
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
