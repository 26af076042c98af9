//! The resourceVersion of each task's last status write. The controllers' caches deliver a task as
//! it was when an event came; a look at a task older than the operator's own last write would
//! decide on a stale status (a run that just finished would seem never to have run), so it waits
//! for the cache instead.

use std::collections::HashMap;
use std::sync::Mutex;

/// Whether `seen` is `wanted` or later. resourceVersions are etcd revisions on every apiserver in
/// use; should one not be a number, only the same version counts.
pub fn at_least(seen: &str, wanted: &str) -> bool {
    match (seen.parse::<u64>(), wanted.parse::<u64>()) {
        (Ok(seen), Ok(wanted)) => seen >= wanted,
        _ => seen == wanted,
    }
}

/// Last written resourceVersion by task uid.
#[derive(Default)]
pub struct StatusWrites {
    versions: Mutex<HashMap<String, String>>,
}

impl StatusWrites {
    pub fn record(&self, task_uid: &str, version: String) {
        self.lock().insert(task_uid.to_owned(), version);
    }

    /// Whether a task at resourceVersion `seen` shows the operator's last status write.
    pub fn seen_in(&self, task_uid: &str, seen: &str) -> bool {
        self.lock()
            .get(task_uid)
            .is_none_or(|wanted| at_least(seen, wanted))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        // Holding the map never panics, so a poisoned lock still holds consistent data.
        self.versions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_versions_count_as_caught_up() {
        assert!(at_least("12", "12"));
        assert!(at_least("13", "12"));
        assert!(!at_least("11", "12"));
        assert!(at_least("abc", "abc"));
        assert!(!at_least("abd", "abc"));
    }

    #[test]
    fn a_task_older_than_the_last_write_is_stale() {
        let writes = StatusWrites::default();
        assert!(writes.seen_in("t", "1"), "nothing written yet");
        writes.record("t", "20".into());
        assert!(!writes.seen_in("t", "19"));
        assert!(writes.seen_in("t", "20"));
        assert!(writes.seen_in("t", "25"));
        assert!(writes.seen_in("other", "1"));
    }
}
