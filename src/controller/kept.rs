//! What each task's last directory read kept, so that its next run reads only the changes. The
//! position is also written to the task's status: a kept read is used only while status still
//! describes it (another replica may have run the task since), and only until a full read is due.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::api::IncrementalStatus;
use crate::directory::delta::Mark;
use crate::directory::read::Kept;
use crate::directory::session::Session;
use crate::directory::snapshot::Snapshot;

/// Kept reads by task uid, and the sessions whose threads keep the tasks' connections bound.
#[derive(Default)]
pub struct KeptReads {
    reads: Mutex<HashMap<String, Box<Kept>>>,
    sessions: Mutex<HashMap<String, Session>>,
}

impl KeptReads {
    /// The task's kept read, when `status` still describes it and the last full read is less than
    /// `full_every` old. Taken out: a run that fails keeps nothing.
    pub fn take(
        &self,
        uid: &str,
        status: Option<&IncrementalStatus>,
        full_every: Duration,
        now: SystemTime,
    ) -> Option<Box<Kept>> {
        let kept = lock(&self.reads).remove(uid)?;
        let described = status == Some(&status_of(&kept));
        let fresh = now
            .duration_since(kept.full_read_at)
            .is_ok_and(|age| age < full_every);
        (described && fresh).then_some(kept)
    }

    /// A copy of the snapshot the task's kept read holds, with the server that gave it, when
    /// `status` still describes that read: what a run restoring the task's objects plans against
    /// instead of reading the directory.
    pub fn snapshot(
        &self,
        uid: &str,
        status: Option<&IncrementalStatus>,
    ) -> Option<(Snapshot, String)> {
        let reads = lock(&self.reads);
        let kept = reads.get(uid)?;
        (status == Some(&status_of(kept))).then(|| (kept.snapshot.clone(), kept.server.clone()))
    }

    /// Keeps a task's read, and forgets the reads and sessions of tasks that are gone.
    pub fn put(&self, uid: &str, kept: Box<Kept>, exists: impl Fn(&str) -> bool) {
        let mut reads = lock(&self.reads);
        reads.retain(|other, _| exists(other));
        reads.insert(uid.to_owned(), kept);
        drop(reads);
        lock(&self.sessions).retain(|other, _| other == uid || exists(other));
    }

    /// The task's session, started on first use.
    pub fn session(&self, uid: &str) -> Session {
        lock(&self.sessions)
            .entry(uid.to_owned())
            .or_default()
            .clone()
    }

    pub fn forget(&self, uid: &str) {
        lock(&self.reads).remove(uid);
        lock(&self.sessions).remove(uid);
    }
}

fn lock<T>(map: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Holding a map never panics, so a poisoned lock still holds consistent data.
    map.lock().unwrap_or_else(|e| e.into_inner())
}

/// How status shows a kept read's position. Times are whole seconds, as status stores them.
pub fn status_of(kept: &Kept) -> IncrementalStatus {
    let seconds = kept
        .full_read_at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last_full_read_time = i64::try_from(seconds)
        .ok()
        .and_then(|s| Timestamp::from_second(s).ok())
        .map(Time);
    let mut status = IncrementalStatus {
        method: kept.mark.method().to_owned(),
        server: kept.server.clone(),
        last_full_read_time,
        ..Default::default()
    };
    match &kept.mark {
        Mark::Syncrepl { cookie } => status.cookie = Some(cookie.clone()),
        Mark::Usn { invocation_id, usn } => {
            status.invocation_id = Some(invocation_id.clone());
            status.highest_committed_usn = Some(*usn);
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::kept::Entries;

    fn kept(full_read_at: SystemTime, usn: i64) -> Box<Kept> {
        Box::new(Kept {
            settings: 1,
            server: "ldaps://dc1".into(),
            mark: Mark::Usn {
                invocation_id: "inv".into(),
                usn,
            },
            entries: Entries::default(),
            snapshot: Default::default(),
            full_read_at,
        })
    }

    #[test]
    fn a_kept_read_is_used_only_while_status_describes_it_and_is_fresh() {
        let reads = KeptReads::default();
        let hour = Duration::from_secs(3600);
        let then = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let status = status_of(&kept(then, 7));
        assert_eq!(status.method, "USNChanged");
        assert_eq!(status.highest_committed_usn, Some(7));

        reads.put("a", kept(then, 7), |_| true);
        assert!(
            reads
                .take("a", Some(&status), hour, then + hour / 2)
                .is_some()
        );
        assert!(
            reads.take("a", Some(&status), hour, then).is_none(),
            "taken out by the first run"
        );

        reads.put("a", kept(then, 7), |_| true);
        let other = status_of(&kept(then, 8));
        assert!(
            reads.take("a", Some(&other), hour, then).is_none(),
            "another position"
        );
        reads.put("a", kept(then, 7), |_| true);
        assert!(reads.take("a", None, hour, then).is_none(), "status lost");
        reads.put("a", kept(then, 7), |_| true);
        assert!(
            reads.take("a", Some(&status), hour, then + hour).is_none(),
            "a full read is due"
        );
    }

    #[test]
    fn reads_of_deleted_tasks_are_forgotten() {
        let reads = KeptReads::default();
        let now = SystemTime::now();
        reads.put("gone", kept(now, 1), |_| true);
        reads.put("kept", kept(now, 1), |uid| uid != "gone");
        assert_eq!(lock(&reads.reads).len(), 1);
        assert!(lock(&reads.reads).contains_key("kept"));
    }
}
