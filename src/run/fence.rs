//! Writes only while this replica's lease is current. A replica paused past its lease (SIGSTOP, a
//! frozen VM, a long GC pause of its node) wakes up with writes in flight, before it has even looked
//! at the Lease again; each write first asks the fence, which closed when the lease ran out by this
//! process's own clock, so nothing is written after another replica may have taken over.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Until when this process may write (milliseconds since the epoch).
#[derive(Debug)]
pub struct WriteFence {
    open_until: AtomicI64,
}

/// A write refused because the lease it depends on is no longer current.
#[derive(Debug, thiserror::Error)]
#[error(
    "this replica's leader lease is not current (it ran out {0:.1?} ago, by this process's clock); it writes nothing more"
)]
pub struct Fenced(Duration);

impl WriteFence {
    /// A fence for a process that writes without leader election: always open.
    pub fn open() -> WriteFence {
        WriteFence {
            open_until: AtomicI64::new(i64::MAX),
        }
    }

    /// A fence for a replica that has not yet seen its lease renewed: closed.
    pub fn closed() -> WriteFence {
        WriteFence {
            open_until: AtomicI64::new(0),
        }
    }

    /// Writes are allowed until `until` (and no longer, even if an earlier call said later).
    pub fn open_until(&self, until: SystemTime) {
        self.open_until.store(millis(until), Ordering::Release);
    }

    pub fn close(&self) {
        self.open_until.store(0, Ordering::Release);
    }

    pub fn is_open(&self) -> bool {
        self.check_at(SystemTime::now()).is_ok()
    }

    /// Whether a write may be sent now.
    pub fn check(&self) -> Result<(), Fenced> {
        self.check_at(SystemTime::now())
    }

    fn check_at(&self, now: SystemTime) -> Result<(), Fenced> {
        let until = self.open_until.load(Ordering::Acquire);
        let now = millis(now);
        if now < until {
            Ok(())
        } else {
            let late = u64::try_from(now.saturating_sub(until)).unwrap_or_default();
            Err(Fenced(Duration::from_millis(late)))
        }
    }
}

fn millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fence_is_open_until_the_time_it_was_given_and_no_longer() {
        let now = SystemTime::now();
        let fence = WriteFence::closed();
        assert!(fence.check_at(now).is_err());
        fence.open_until(now + Duration::from_secs(3));
        assert!(fence.check_at(now).is_ok());
        assert!(fence.check_at(now + Duration::from_millis(2999)).is_ok());
        let late = fence.check_at(now + Duration::from_secs(4)).unwrap_err();
        assert_eq!(late.0, Duration::from_secs(1));
        fence.open_until(now + Duration::from_secs(1));
        assert!(
            fence.check_at(now + Duration::from_secs(2)).is_err(),
            "an earlier time wins"
        );
        fence.close();
        assert!(fence.check_at(now).is_err());
        assert!(
            WriteFence::open()
                .check_at(now + Duration::from_secs(1 << 40))
                .is_ok()
        );
    }
}
