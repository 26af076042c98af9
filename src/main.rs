use std::process::ExitCode;

use clap::Parser;

// A directory read allocates and frees millions of small strings; glibc's allocator spent a third
// of a 100k-user read in malloc and free.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    match usersync::cli::run(usersync::cli::Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("usersync: {message}");
            ExitCode::FAILURE
        }
    }
}
