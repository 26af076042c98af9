//! What each task's UserGroups were when its last run ended (their resourceVersions, as the view
//! showed them after the run's writes), so that an object edited or deleted by someone else since
//! is noticed and restored; and whether that run left them exactly as the directory asks
//! ([`crate::planner::plan::Plan::exact`]), so that the next run may plan from them alone.

use std::collections::HashMap;
use std::sync::Mutex;

/// How a task's last run left its objects.
struct Left {
    /// resourceVersion by object name.
    versions: HashMap<String, String>,
    /// The task's generation when the run left every object exactly as planned.
    exact_for: Option<i64>,
}

/// How each task's last run left its objects, by task uid.
#[derive(Default)]
pub struct Settled {
    tasks: Mutex<HashMap<String, Left>>,
}

impl Settled {
    /// Records the objects a run left, and, when its plan was exact, the generation it ran.
    pub fn record(
        &self,
        task_uid: &str,
        versions: HashMap<String, String>,
        exact_for: Option<i64>,
    ) {
        self.lock().insert(
            task_uid.to_owned(),
            Left {
                versions,
                exact_for,
            },
        );
    }

    pub fn forget(&self, task_uid: &str) {
        self.lock().remove(task_uid);
    }

    /// Whether the task's objects are no longer as its last run left them: one edited, deleted or
    /// added by someone else. `false` when no run of this process settled the task.
    pub fn drifted(&self, task_uid: &str, now: &HashMap<String, String>) -> bool {
        self.lock()
            .get(task_uid)
            .is_some_and(|then| then.versions != *now)
    }

    /// Whether the task's last run, of this `generation`, left its objects exactly as planned and
    /// they are still as it left them (`unchanged`, asked of the versions it left).
    pub fn exact(
        &self,
        task_uid: &str,
        generation: i64,
        unchanged: impl FnOnce(&HashMap<String, String>) -> bool,
    ) -> bool {
        self.lock()
            .get(task_uid)
            .is_some_and(|then| then.exact_for == Some(generation) && unchanged(&then.versions))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Left>> {
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
        settled.record("t", then.clone(), None);
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

    #[test]
    fn exact_holds_for_its_generation_and_untouched_objects() {
        let settled = Settled::default();
        let then = versions(&[("a", "1"), ("b", "2")]);
        let same_as =
            |now: HashMap<String, String>| move |then: &HashMap<String, String>| *then == now;
        assert!(
            !settled.exact("t", 1, same_as(then.clone())),
            "nothing recorded"
        );
        settled.record("t", then.clone(), None);
        assert!(!settled.exact("t", 1, same_as(then.clone())), "not exact");
        settled.record("t", then.clone(), Some(1));
        assert!(settled.exact("t", 1, same_as(then.clone())));
        assert!(
            !settled.exact("t", 2, same_as(then.clone())),
            "another generation"
        );
        assert!(
            !settled.exact("t", 1, same_as(versions(&[("a", "1"), ("b", "3")]))),
            "edited since"
        );
        settled.forget("t");
        assert!(!settled.exact("t", 1, same_as(then)), "forgotten");
    }
}
