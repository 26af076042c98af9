//! How far a read has come, for a progress display: entries received and search requests sent,
//! counted as they happen by the searches of one connection.

use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug, Default)]
pub struct Progress {
    entries: AtomicUsize,
    requests: AtomicUsize,
}

impl Progress {
    pub fn entry(&self) {
        self.entries.fetch_add(1, Ordering::Relaxed);
    }

    pub fn requests(&self, sent: usize) {
        self.requests.fetch_add(sent, Ordering::Relaxed);
    }

    /// (entries, requests) so far.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.entries.load(Ordering::Relaxed),
            self.requests.load(Ordering::Relaxed),
        )
    }
}
