//! Directory reads run on a thread of their own, with a single-threaded runtime.
//!
//! The LDAP library decodes messages on the connection's task and hands each entry to the reading
//! task through a channel. On a shared multi-threaded runtime the two tasks sit on different
//! workers, and nearly every entry costs a cross-thread wake-up; on one thread the hand-over is a
//! queue push (figures in `bench/notes.md`). The library also panics on some malformed server
//! messages: that fails the read, not the process.
//!
//! That channel has no bound, and each task gives way after a budget of operations: a reading task
//! that gave way with entries still queued would let the connection's task decode more than it takes
//! out, so a server sending entries faster than they are checked would grow the queue without end.
//! The reading task is exempt from the budget: it empties the queue before the connection's task
//! reads on, and what is queued stays within what one turn of that task reads from the socket.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};

use tokio::sync::oneshot;
use tracing::Instrument;

use super::error::DirectoryError;

/// Runs `work` (which connects, reads and disconnects) on a new thread and waits for its result.
/// `server` names the directory in the error a failed thread becomes. The work's second value is
/// what it leaves behind (a read's discarded entries): the thread frees that after handing the
/// first over, so the caller does not wait while a large read is freed.
pub async fn on_reader_thread<T, L, F>(server: &str, work: F) -> Result<T, DirectoryError>
where
    T: Send + 'static,
    L: Send + 'static,
    F: Future<Output = Result<(T, L), DirectoryError>> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let work = work.instrument(tracing::Span::current());
    let spawned = std::thread::Builder::new()
        .name("directory-read".to_owned())
        .spawn(move || match current_thread_runtime() {
            Ok(runtime) => run_for_caller(&runtime, work, tx),
            Err(e) => {
                let _ = tx.send(Err(Failure::Broken(format!("no runtime: {e}"))));
            }
        });
    if let Err(e) = spawned {
        return Err(unexpected(server, &format!("no thread: {e}")));
    }
    answer(server, rx).await
}

/// What the caller of a read on another thread receives.
pub(super) type Outcome<T> = Result<T, Failure>;

/// A runtime for one thread's reads: the connection's task and the reading task on one thread.
pub(super) fn current_thread_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Runs `work` on `runtime` (this thread's) and sends its value to the caller waiting on `tx`; then
/// frees what it left behind. A panic fails the work; a caller that stopped waiting stops it.
pub(super) fn run_for_caller<T, L>(
    runtime: &tokio::runtime::Runtime,
    work: impl Future<Output = Result<(T, L), DirectoryError>>,
    mut tx: oneshot::Sender<Outcome<T>>,
) {
    let (result, leftovers) = match catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(tokio::task::unconstrained(until_abandoned(work, &mut tx)))
    })) {
        Ok(Some(Ok((value, leftovers)))) => (Ok(value), Some(leftovers)),
        Ok(Some(Err(e))) => (Err(Failure::Read(e)), None),
        Ok(None) => return,
        Err(panic) => (Err(Failure::Broken(panic_text(&*panic))), None),
    };
    // The caller may have stopped waiting just now; then the result has no reader.
    let _ = tx.send(result);
    drop(leftovers);
}

/// The value the reading thread sends, or the error its failure becomes.
pub(super) async fn answer<T>(
    server: &str,
    rx: oneshot::Receiver<Outcome<T>>,
) -> Result<T, DirectoryError> {
    match rx.await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(Failure::Read(e))) => Err(e),
        Ok(Err(Failure::Broken(detail))) => Err(unexpected(server, &detail)),
        Err(_) => Err(unexpected(
            server,
            "the reading thread ended without a result",
        )),
    }
}

pub(super) fn unexpected(server: &str, detail: &str) -> DirectoryError {
    DirectoryError::MalformedData {
        server: server.to_owned(),
        detail: format!("reading the directory failed unexpectedly ({detail})"),
    }
}

/// The work's output, or `None` once the caller stops waiting (its run timed out or was stopped):
/// the read ends with it, its connection and buffers freed, instead of reading on beside the
/// task's next attempt.
async fn until_abandoned<O, R>(
    work: impl Future<Output = O>,
    tx: &mut oneshot::Sender<R>,
) -> Option<O> {
    tokio::select! {
        output = work => Some(output),
        () = tx.closed() => None,
    }
}

/// Why the thread has no value: the read's own error, or a panic or missing runtime (described
/// here, named after the server by the caller).
pub(super) enum Failure {
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
            Ok((std::thread::current().name().map(str::to_owned), ()))
        })
        .await;
        assert_eq!(name.expect("a value").as_deref(), Some("directory-read"));

        let refused = on_reader_thread::<(), (), _>("ldap://x", async {
            Err(DirectoryError::InvalidSettings("no".to_owned()))
        })
        .await;
        assert_eq!(
            refused.expect_err("the read's error").reason(),
            "InvalidSettings"
        );
    }

    #[tokio::test]
    async fn what_the_work_leaves_behind_is_freed_after_the_value_is_handed_over() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::time::{Duration, Instant};

        /// Slow to free, and says when it is freed.
        struct Slow(Arc<AtomicBool>);
        impl Drop for Slow {
            fn drop(&mut self) {
                std::thread::sleep(Duration::from_millis(500));
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let freed = Arc::new(AtomicBool::new(false));
        let leftovers = Slow(Arc::clone(&freed));
        let value = on_reader_thread("ldap://x", async move { Ok((7, leftovers)) }).await;
        assert_eq!(value.expect("a value"), 7);
        assert!(
            !freed.load(Ordering::SeqCst),
            "the value waited for the leftovers to be freed"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while !freed.load(Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "the leftovers were never freed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn a_read_nobody_waits_for_any_more_stops() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::time::{Duration, Instant};

        /// Says when the work holding it is dropped.
        struct Dropped(Arc<AtomicBool>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicBool::new(false));
        let held = Dropped(Arc::clone(&dropped));
        let endless = on_reader_thread::<(), (), _>("ldap://x", async move {
            let _held = held;
            std::future::pending().await
        });
        let gave_up = tokio::time::timeout(Duration::from_millis(50), endless).await;
        assert!(gave_up.is_err(), "the work never ends");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !dropped.load(Ordering::SeqCst) {
            assert!(
                Instant::now() < deadline,
                "the read went on after its caller stopped waiting"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn a_panic_fails_the_read_with_its_message() {
        let err = on_reader_thread::<(), (), _>("ldap://x", async { panic!("bad BER") })
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
