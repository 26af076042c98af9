//! Step 3 of a run: the complete snapshot of the task's part of the directory, read on a thread of
//! its own, incrementally when the feed allows.

use std::time::Duration;

use super::cpu::thread_cpu;
use super::resolve::Resolved;
use crate::api::DirectorySpec;
use crate::directory::connect::connect;
use crate::directory::error::DirectoryError;
use crate::directory::read::{Feed, Read, ReadOptions, read};
use crate::directory::reader_thread::on_reader_thread;
use crate::directory::settings::server_settings;

/// A read and the server that answered it.
pub struct Answered {
    pub read: Read,
    pub server: String,
    /// CPU time the read used (connecting, decoding, assembling), waits left out.
    pub cpu: Duration,
}

/// Connects to the first server of the resolved list that answers, binds, and reads `directory`.
pub async fn read_directory(
    resolved: Resolved,
    directory: &DirectorySpec,
    options: &ReadOptions,
    feed: Feed,
) -> Result<Answered, DirectoryError> {
    let server_type = resolved.server.server_type;
    let settings = server_settings(&resolved.server, resolved.material)?;
    let mut directory = directory.clone();
    directory.preset.get_or_insert(server_type.default_preset());
    let options = options.clone();
    let first_url = settings.urls.first().cloned().unwrap_or_default();
    on_reader_thread(&first_url, async move {
        let started = thread_cpu();
        let mut conn = connect(&settings).await?;
        conn.progress = options.progress.clone();
        let mut read = read(&mut conn, &directory, &options, feed).await?;
        // The connection is done: a server that does not take the unbind costs at most the
        // task's per-operation timeout, and nothing else.
        let _ = tokio::time::timeout(conn.timeout, conn.ldap.unbind()).await;
        let discarded = read.discarded.take();
        let answered = Answered {
            read,
            server: conn.server,
            cpu: thread_cpu().saturating_sub(started),
        };
        Ok((answered, discarded))
    })
    .await
}
