//! Directory reads run on a thread of their own, with a single-threaded runtime.
//!
//! The LDAP library decodes messages on the connection's task and hands each entry to the reading
//! task through a channel. On a shared multi-threaded runtime the two tasks sit on different
//! workers, and every entry costs a cross-thread wake-up (a read of 100,000 entries made about
//! 70,000 futex calls); on one thread the hand-over is a queue push. The library also panics on
//! some malformed server messages: that fails the read, not the process.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};

use tokio::sync::oneshot;
use tracing::Instrument;

use super::error::DirectoryError;

/// Runs `work` (which connects, reads and disconnects) on a new thread and waits for its result.
/// `server` names the directory in the error a failed thread becomes.
pub async fn on_reader_thread<T, F>(server: &str, work: F) -> Result<T, DirectoryError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, DirectoryError>> + Send + 'static,
{
    let failed = |detail: String| DirectoryError::MalformedData {
        server: server.to_owned(),
        detail: format!("reading the directory failed unexpectedly ({detail})"),
    };
    let (tx, rx) = oneshot::channel();
    let work = work.instrument(tracing::Span::current());
    std::thread::Builder::new()
        .name("directory-read".to_owned())
        .spawn(move || {
            let result = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => match catch_unwind(AssertUnwindSafe(|| runtime.block_on(work))) {
                    Ok(read) => read.map_err(Failure::Read),
                    Err(panic) => Err(Failure::Broken(panic_text(&*panic))),
                },
                Err(e) => Err(Failure::Broken(format!("no runtime: {e}"))),
            };
            // The caller may have stopped waiting; then the result has no reader.
            let _ = tx.send(result);
        })
        .map_err(|e| failed(format!("no thread: {e}")))?;
    match rx.await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(Failure::Read(e))) => Err(e),
        Ok(Err(Failure::Broken(detail))) => Err(failed(detail)),
        Err(_) => Err(failed(
            "the reading thread ended without a result".to_owned(),
        )),
    }
}

/// Why the thread has no value: the read's own error, or a panic or missing runtime (described
/// here, named after the server by the caller).
enum Failure {
    Read(DirectoryError),
    Broken(String),
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_work_runs_on_its_own_thread_and_its_result_comes_back() {
        let name = on_reader_thread("ldap://x", async {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            Ok(std::thread::current().name().map(str::to_owned))
        })
        .await;
        assert_eq!(name.expect("a value").as_deref(), Some("directory-read"));

        let refused = on_reader_thread::<(), _>("ldap://x", async {
            Err(DirectoryError::InvalidSettings("no".to_owned()))
        })
        .await;
        assert_eq!(
            refused.expect_err("the read's error").reason(),
            "InvalidSettings"
        );
    }

    #[tokio::test]
    async fn a_panic_fails_the_read_with_its_message() {
        let err = on_reader_thread::<(), _>("ldap://x", async { panic!("bad BER") })
            .await
            .expect_err("a panic is an error");
        assert_eq!(err.reason(), "MalformedData");
        let text = err.to_string();
        assert!(
            text.contains("ldap://x") && text.contains("bad BER"),
            "{text}"
        );
    }
}
