//! When a task runs next: after a fixed interval, at the next time of a cron schedule (in a time
//! zone), or only on triggers. Built by the validation step, so nothing here meets an unchecked spec.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use croner::Cron;

/// Seconds since the Unix epoch; the controller converts from and to API timestamps.
pub type UnixSeconds = i64;

/// The shortest duration a task may ask for: runs and full reads are not sub-second work.
pub const MIN_DURATION: Duration = Duration::from_secs(1);
/// The longest: a year. Longer values are typing mistakes, and larger ones overflow time arithmetic.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("{0:?} is not a duration such as 15m, 1h30m or 1.5h")]
    Syntax(String),
    #[error("{0:?} is shorter than the minimum of 1s")]
    TooShort(String),
    #[error("{0:?} is longer than the maximum of 8784h (a year)")]
    TooLong(String),
}

/// Go-style durations: `15m`, `1h30m`, `90s`, `1.5h`, between [`MIN_DURATION`] and [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let syntax = || DurationError::Syntax(text.into());
    let mut seconds = 0f64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(syntax());
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(syntax)?;
        let value: f64 = rest[..number_len].parse().map_err(|_| syntax())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(syntax()),
        };
        seconds += value * unit;
        rest = &rest[unit_len..];
    }
    // Compared as floats first: a huge value is not a Duration at all.
    if !seconds.is_finite() || seconds > MAX_DURATION.as_secs_f64() {
        return Err(DurationError::TooLong(text.into()));
    }
    if seconds < MIN_DURATION.as_secs_f64() {
        return Err(DurationError::TooShort(text.into()));
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| DurationError::TooLong(text.into()))
}

/// A task's timed runs.
#[derive(Clone, Debug)]
pub enum Schedule {
    /// Neither `interval` nor `schedule`: runs come from triggers only.
    Triggers,
    Every(Duration),
    Cron {
        cron: Box<Cron>,
        zone: Option<chrono_tz::Tz>,
    },
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Schedule::Triggers, Schedule::Triggers) => true,
            (Schedule::Every(a), Schedule::Every(b)) => a == b,
            (Schedule::Cron { cron: a, zone: x }, Schedule::Cron { cron: b, zone: y }) => {
                a.pattern.to_string() == b.pattern.to_string() && x == y
            }
            _ => false,
        }
    }
}

impl Schedule {
    /// The first timed run after `from` (the end of the last run, or creation); `None` when the
    /// task runs on triggers only or its cron expression has no time left.
    pub fn next_after(&self, from: UnixSeconds) -> Option<UnixSeconds> {
        match self {
            Schedule::Triggers => None,
            // Bounded by MAX_DURATION, so this cannot overflow for any time the clock shows.
            Schedule::Every(every) => {
                Some(from.saturating_add(i64::try_from(every.as_secs()).ok()?.max(1)))
            }
            Schedule::Cron { cron, zone } => {
                let start = Utc.timestamp_opt(from, 0).single()?;
                let next = match zone {
                    Some(tz) => cron
                        .find_next_occurrence(&start.with_timezone(tz), false)
                        .map(|t| t.timestamp()),
                    None => cron
                        .find_next_occurrence(&start, false)
                        .map(|t| t.timestamp()),
                };
                next.ok()
            }
        }
    }
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;

    fn cron(pattern: &str, zone: Option<&str>) -> Schedule {
        Schedule::Cron {
            cron: Box::new(pattern.parse().expect("cron")),
            zone: zone.map(|z| z.parse().expect("zone")),
        }
    }

    #[test]
    fn durations_parse_like_go_durations_within_bounds() {
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("8784h"), Ok(MAX_DURATION));
        for bad in ["", "15", "m", "10x", "1..5h", "h1"] {
            assert_eq!(parse_duration(bad), Err(DurationError::Syntax(bad.into())));
        }
        for short in ["500ms", "0s", "0.5s"] {
            assert_eq!(
                parse_duration(short),
                Err(DurationError::TooShort(short.into()))
            );
        }
        for long in ["8785h", "99999999999999999999h", &"9".repeat(400)] {
            let text = if long.ends_with('h') {
                long.to_owned()
            } else {
                format!("{long}s")
            };
            assert_eq!(
                parse_duration(&text),
                Err(DurationError::TooLong(text.clone()))
            );
        }
    }

    #[test]
    fn intervals_count_from_the_last_run() {
        assert_eq!(
            Schedule::Every(Duration::from_secs(900)).next_after(1_000),
            Some(1_900)
        );
        assert_eq!(Schedule::Triggers.next_after(1_000), None);
        assert_eq!(
            Schedule::Every(MAX_DURATION).next_after(i64::MAX - 5),
            Some(i64::MAX),
            "saturates instead of overflowing"
        );
    }

    #[test]
    fn schedules_in_utc_and_in_a_time_zone() {
        // 2026-01-01T00:10:00Z
        let from = 1_767_226_200;
        assert_eq!(
            cron("0 */6 * * *", None).next_after(from),
            Some(from - 600 + 6 * 3600)
        );
        // 06:00 in Bratislava (UTC+1 in January) is 05:00 UTC.
        assert_eq!(
            cron("0 6 * * *", Some("Europe/Bratislava")).next_after(from),
            Some(from - 600 + 5 * 3600)
        );
    }

    #[test]
    fn schedules_across_daylight_saving_changes() {
        // 2026-03-29 in Bratislava: 02:00 CET becomes 03:00 CEST; 02:30 does not exist that day,
        // and the run happens when the clock jumps (03:00 CEST, 01:00 UTC) rather than not at all.
        let from = 1_774_699_200;
        assert_eq!(
            cron("30 2 * * *", Some("Europe/Bratislava")).next_after(from),
            Some(1_774_746_000)
        );
        // 03:30 on the 29th exists, in summer time: 01:30 UTC.
        assert_eq!(
            cron("30 3 * * *", Some("Europe/Bratislava")).next_after(from),
            Some(1_774_747_800)
        );
    }
}
