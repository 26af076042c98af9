//! A task's reads on one thread that outlives each of them, with the connection the last read left
//! bound: the next read skips the connection set-up and the bind (on Active Directory the first bind
//! of a connection costs more than the read of a few changes; figures in `bench/notes.md`).
//!
//! The thread ends once no read came for [`IDLE`], closing its connection first (servers close idle
//! connections themselves: Active Directory after 15 minutes by default), or as soon as the
//! session is dropped. A kept connection is used only with the same settings and after it answers.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tracing::{Instrument, debug};

use super::connect::{Connection, ServerSettings, connect};
use super::error::DirectoryError;
use super::reader_thread::{Outcome, answer, current_thread_runtime, run_for_caller, unexpected};

/// How long a session's thread waits for the next read before it closes the connection and ends.
pub const IDLE: Duration = Duration::from_secs(10 * 60);

/// How long a kept connection may take to show that it still answers before a new one is made.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// Work for the session's thread, given its runtime and what the last work kept.
type Job<K> = Box<dyn FnOnce(&Runtime, Slot<K>) + Send>;

/// Where the thread's work is sent; `None` once the thread has ended.
type Jobs<K> = Arc<Mutex<Option<Sender<Job<K>>>>>;

/// A thread for one task's reads, started on the first read and again after it ended. Cheap to
/// clone; the thread ends soon after the last clone is dropped.
pub struct Session<K: 'static = Bound> {
    jobs: Jobs<K>,
    idle: Duration,
}

impl<K: 'static> Clone for Session<K> {
    fn clone(&self) -> Self {
        Session {
            jobs: self.jobs.clone(),
            idle: self.idle,
        }
    }
}

impl<K: 'static> Default for Session<K> {
    fn default() -> Self {
        Session::with_idle(IDLE)
    }
}

/// What a work on the session's thread finds of the last one's: taken out by the work, put back
/// when it went well. A work that fails, panics or is abandoned leaves nothing.
pub struct Slot<K>(Rc<Cell<Option<K>>>);

impl<K> Slot<K> {
    pub fn take(&self) -> Option<K> {
        self.0.take()
    }

    pub fn keep(&self, value: K) {
        self.0.set(Some(value));
    }
}

impl<K: 'static> Session<K> {
    pub fn with_idle(idle: Duration) -> Session<K> {
        Session {
            jobs: Arc::new(Mutex::new(None)),
            idle,
        }
    }

    /// Runs `work` on the session's thread, as [`super::reader_thread::on_reader_thread`] runs it
    /// on a new one: `server` names the directory in the error a failed thread becomes.
    pub async fn run<T, L, W, F>(&self, server: &str, work: W) -> Result<T, DirectoryError>
    where
        T: Send + 'static,
        L: 'static,
        W: FnOnce(Slot<K>) -> F + Send + 'static,
        F: Future<Output = Result<(T, L), DirectoryError>> + 'static,
    {
        let (tx, rx) = oneshot::channel::<Outcome<T>>();
        let span = tracing::Span::current();
        let job: Job<K> = Box::new(move |runtime, slot| {
            run_for_caller(runtime, work(slot).instrument(span), tx);
        });
        if let Err(e) = self.send(job) {
            return Err(unexpected(server, &format!("no thread: {e}")));
        }
        answer(server, rx).await
    }

    /// Sends `job` to the thread, starting one when there is none.
    fn send(&self, job: Job<K>) -> std::io::Result<()> {
        let mut jobs = lock(&self.jobs);
        let job = match jobs.as_ref() {
            Some(tx) => match tx.send(job) {
                Ok(()) => return Ok(()),
                // The thread ended without clearing its sender: it panicked.
                Err(returned) => returned.0,
            },
            None => job,
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let (weak, idle) = (Arc::downgrade(&self.jobs), self.idle);
        std::thread::Builder::new()
            .name("directory-session".to_owned())
            .spawn(move || serve(&rx, &weak, idle))?;
        let sent = tx.send(job);
        *jobs = Some(tx);
        debug_assert!(sent.is_ok(), "the new thread holds its receiver");
        Ok(())
    }
}

fn lock<K>(jobs: &Jobs<K>) -> std::sync::MutexGuard<'_, Option<Sender<Job<K>>>> {
    // Holding the lock never panics, so a poisoned lock still holds a consistent value.
    jobs.lock().unwrap_or_else(|e| e.into_inner())
}

/// The session's thread: runs its jobs in turn until the session is dropped or idle.
fn serve<K: 'static>(
    jobs: &Receiver<Job<K>>,
    session: &Weak<Mutex<Option<Sender<Job<K>>>>>,
    idle: Duration,
) {
    let Ok(runtime) = current_thread_runtime() else {
        // The jobs' callers learn it when their result channels close.
        return;
    };
    let slot = Slot(Rc::new(Cell::new(None)));
    loop {
        match jobs.recv_timeout(idle) {
            Ok(job) => job(&runtime, Slot(slot.0.clone())),
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                let Some(session) = session.upgrade() else {
                    break;
                };
                // Under the lock no job can be sent: one sent just before it is run, not lost.
                let mut sender = lock(&session);
                if let Ok(job) = jobs.try_recv() {
                    drop(sender);
                    job(&runtime, Slot(slot.0.clone()));
                    continue;
                }
                *sender = None;
                break;
            }
        }
    }
    drop(slot.take());
    debug!("directory session ended");
}

/// A kept connection and the settings it was made with.
pub struct Bound {
    settings: u64,
    connection: Connection,
}

impl Slot<Bound> {
    /// A connection for `settings`: the kept one when it was made with the same settings and the
    /// server still answers on it, else a new one.
    pub async fn connection(
        &self,
        settings: &ServerSettings,
    ) -> Result<Connection, DirectoryError> {
        if let Some(mut kept) = self.take() {
            let within = ANSWER_WITHIN.min(settings.timeout);
            if kept.settings == settings.fingerprint() && kept.connection.answers(within).await {
                return Ok(kept.connection);
            }
            debug!(server = %kept.connection.server, "not using the kept connection");
            kept.connection.close(within).await;
        }
        connect(settings).await
    }

    /// Keeps `connection`, made with `settings`, for the session's next work.
    pub fn keep_connection(&self, settings: &ServerSettings, connection: Connection) {
        self.keep(Bound {
            settings: settings.fingerprint(),
            connection,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broken_server_message() -> ((), ()) {
        panic!("broken server message")
    }

    fn thread_id() -> std::thread::ThreadId {
        std::thread::current().id()
    }

    #[tokio::test]
    async fn works_run_on_one_thread_and_find_what_the_last_kept() {
        let session: Session<u32> = Session::default();
        let first = session
            .run("s", |slot: Slot<u32>| async move {
                assert!(slot.take().is_none());
                slot.keep(7);
                Ok((thread_id(), ()))
            })
            .await
            .expect("first");
        let (second, found) = session
            .run("s", |slot: Slot<u32>| async move {
                let found = slot.take();
                Ok(((thread_id(), found), ()))
            })
            .await
            .expect("second");
        assert_eq!(first, second);
        assert_ne!(first, thread_id());
        assert_eq!(found, Some(7));
    }

    #[tokio::test]
    async fn a_failed_work_leaves_nothing_kept() {
        let session: Session<u32> = Session::default();
        let failed = session
            .run("s", |slot: Slot<u32>| async move {
                slot.keep(1);
                let _kept = slot.take();
                Err::<((), ()), _>(DirectoryError::InvalidSettings("no".into()))
            })
            .await;
        assert!(failed.is_err());
        let found = session
            .run("s", |slot: Slot<u32>| async move { Ok((slot.take(), ())) })
            .await
            .expect("found");
        assert_eq!(found, None);
    }

    #[tokio::test]
    async fn an_idle_thread_ends_and_the_next_work_starts_another() {
        let session: Session<u32> = Session::with_idle(Duration::from_millis(50));
        let first = session
            .run("s", |slot: Slot<u32>| async move {
                slot.keep(1);
                Ok((thread_id(), ()))
            })
            .await
            .expect("first");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while lock(&session.jobs).is_some() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the idle thread ends"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (second, found) = session
            .run("s", |slot: Slot<u32>| async move {
                Ok(((thread_id(), slot.take()), ()))
            })
            .await
            .expect("second");
        assert_ne!(first, second);
        assert_eq!(found, None, "what the ended thread kept went with it");
    }

    #[tokio::test]
    async fn a_panicking_work_fails_its_read_and_the_session_goes_on() {
        let session: Session<u32> = Session::default();
        let panicked = session
            .run("s", |_slot: Slot<u32>| async move {
                Ok(broken_server_message())
            })
            .await;
        assert!(
            matches!(&panicked, Err(DirectoryError::MalformedData { detail, .. }) if detail.contains("broken server message")),
            "{panicked:?}"
        );
        let after = session
            .run("s", |_slot: Slot<u32>| async move { Ok((1, ())) })
            .await;
        assert_eq!(after.ok(), Some(1));
    }
}
