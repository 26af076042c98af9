use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match usersync::cli::dispatch(usersync::cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !failure.message.is_empty() {
                eprintln!("usersync: {}", failure.message);
            }
            ExitCode::from(failure.code)
        }
    }
}
