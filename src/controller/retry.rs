//! Back-off for a task whose reconcile failed before it could report (its status write refused, the
//! apiserver away): each failure in a row waits longer, with jitter, so a task that cannot write its
//! status neither re-runs its sync every few seconds nor retries in step with the others.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

const FIRST: Duration = Duration::from_secs(5);
const MAX: Duration = Duration::from_secs(600);

/// Failures in a row, per task.
pub struct Retries<K> {
    failures: Mutex<HashMap<K, usize>>,
}

impl<K> Default for Retries<K> {
    fn default() -> Self {
        Retries {
            failures: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq> Retries<K> {
    /// Counts a failure of `task` and returns how long to wait before the next try.
    pub fn failed(&self, task: K) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let count = failures.entry(task).or_default();
        *count += 1;
        delay(*count)
    }

    /// `task` reconciled: its next failure starts from the first delay again.
    pub fn succeeded(&self, task: &K) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(task);
    }
}

/// The wait after the `failures`-th failure in a row: 5 s doubling up to 10 minutes, each plus up
/// to as much again at random.
fn delay(failures: usize) -> Duration {
    ExponentialBuilder::default()
        .with_min_delay(FIRST)
        .with_max_delay(MAX)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
        .nth(failures.saturating_sub(1).min(16))
        .unwrap_or(MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_with_jitter_up_to_the_cap() {
        for failures in 1..=20usize {
            let base = (FIRST * 2u32.pow(failures as u32 - 1)).min(MAX);
            let wait = delay(failures);
            assert!(wait >= base && wait <= base * 2, "{failures}: {wait:?}");
        }
        let spread: std::collections::BTreeSet<_> = (0..20).map(|_| delay(3)).collect();
        assert!(spread.len() > 1, "jitter spreads the retries");
    }

    #[test]
    fn a_success_starts_over_and_tasks_count_apart() {
        let retries = Retries::default();
        assert!(retries.failed("a/x") < FIRST * 2);
        assert!(retries.failed("a/x") >= FIRST * 2);
        assert!(retries.failed("a/y") < FIRST * 2);
        retries.succeeded(&"a/x");
        assert!(retries.failed("a/x") < FIRST * 2);
    }
}
