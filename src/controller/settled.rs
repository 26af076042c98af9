//! What each task's UserGroups were when its last run ended (their resourceVersions, as the view
//! showed them after the run's writes), so that an object edited or deleted by someone else since
//! is noticed and restored.

use std::collections::HashMap;
use std::sync::Mutex;

/// resourceVersion by object name, by task uid.
#[derive(Default)]
pub struct Settled {
    tasks: Mutex<HashMap<String, HashMap<String, String>>>,
}

impl Settled {
    pub fn record(&self, task_uid: &str, versions: HashMap<String, String>) {
        self.lock().insert(task_uid.to_owned(), versions);
    }

    pub fn forget(&self, task_uid: &str) {
        self.lock().remove(task_uid);
    }

    /// Whether the task's objects are no longer as its last run left them: one edited, deleted or
    /// added by someone else. `false` when no run of this process settled the task.
    pub fn drifted(&self, task_uid: &str, now: &HashMap<String, String>) -> bool {
        self.lock().get(task_uid).is_some_and(|then| then != now)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, String>>> {
        // Holding the map never panics, so a poisoned lock still holds consistent data.
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn edits_deletions_and_additions_are_drift() {
        let settled = Settled::default();
        let then = versions(&[("a", "1"), ("b", "2")]);
        assert!(!settled.drifted("t", &then), "nothing settled yet");
        settled.record("t", then.clone());
        assert!(!settled.drifted("t", &then));
        assert!(
            settled.drifted("t", &versions(&[("a", "1"), ("b", "3")])),
            "edited"
        );
        assert!(settled.drifted("t", &versions(&[("a", "1")])), "deleted");
        assert!(
            settled.drifted("t", &versions(&[("a", "1"), ("b", "2"), ("c", "4")])),
            "added"
        );
        settled.forget("t");
        assert!(!settled.drifted("t", &versions(&[])));
    }
}
