use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    match usersync::cli::dispatch(usersync::cli::Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("usersync: {message}");
            ExitCode::FAILURE
        }
    }
}
