//! Step 3 of a run: the complete snapshot of the task's part of the directory, read on a thread of
//! its own, incrementally when the feed allows.

use std::time::Duration;

use super::cpu::thread_cpu;
use super::resolve::Resolved;
use crate::api::DirectorySpec;
use crate::directory::connect::{Connection, connect};
use crate::directory::error::DirectoryError;
use crate::directory::kept::Entries;
use crate::directory::read::{Feed, Read, ReadOptions, read};
use crate::directory::reader_thread::on_reader_thread;
use crate::directory::session::{Bound, Session, Slot};
use crate::directory::settings::server_settings;

/// A read and the server that answered it.
pub struct Answered {
    pub read: Read,
    pub server: String,
    /// CPU time the read used (connecting, decoding, assembling), waits left out.
    pub cpu: Duration,
}

/// Connects to the first server of the resolved list that answers, binds, and reads `directory`.
/// With a `session`, the read runs on the session's thread, on the connection the task's last read
/// left bound when it still answers, and leaves its own bound for the next.
pub async fn read_directory(
    resolved: Resolved,
    directory: &DirectorySpec,
    options: &ReadOptions,
    feed: Feed,
    session: Option<&Session>,
) -> Result<Answered, DirectoryError> {
    let server_type = resolved.server.server_type;
    let settings = server_settings(&resolved.server, resolved.material)?;
    let mut directory = directory.clone();
    directory.preset.get_or_insert(server_type.default_preset());
    let options = options.clone();
    let first_url = settings.urls.first().cloned().unwrap_or_default();
    match session {
        None => {
            on_reader_thread(&first_url, async move {
                let started = thread_cpu();
                let conn = connect(&settings).await?;
                let (answered, discarded, conn) =
                    read_on(conn, &directory, &options, feed, started).await?;
                // The connection is done: a server that does not take the unbind costs at most
                // the task's per-operation timeout, and nothing else.
                let timeout = conn.timeout;
                conn.close(timeout).await;
                Ok((answered, discarded))
            })
            .await
        }
        Some(session) => {
            session
                .run(&first_url, move |slot: Slot<Bound>| async move {
                    let started = thread_cpu();
                    let conn = slot.connection(&settings).await?;
                    let (answered, discarded, conn) =
                        read_on(conn, &directory, &options, feed, started).await?;
                    slot.keep_connection(&settings, conn);
                    Ok((answered, discarded))
                })
                .await
        }
    }
}

/// Reads `directory` on `conn`; the read, what it discarded, and the connection.
async fn read_on(
    mut conn: Connection,
    directory: &DirectorySpec,
    options: &ReadOptions,
    feed: Feed,
    started: Duration,
) -> Result<(Answered, Option<Entries>, Connection), DirectoryError> {
    conn.progress = options.progress.clone();
    let mut read = read(&mut conn, directory, options, feed).await?;
    let discarded = read.discarded.take();
    let answered = Answered {
        read,
        server: conn.server.clone(),
        cpu: thread_cpu().saturating_sub(started),
    };
    Ok((answered, discarded, conn))
}
