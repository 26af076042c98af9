//! When a task runs next: after `interval`, at the next `schedule` time (in `timeZone`), or only on
//! triggers when neither is set.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use croner::Cron;

use crate::api::UserSynchronizationSpec;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("schedule {0:?} is not a valid cron expression: {1}")]
    Cron(String, String),
    #[error("timeZone {0:?} is not an IANA time zone name")]
    TimeZone(String),
    #[error("interval {0:?} is not a duration such as 15m or 1h30m")]
    Interval(String),
}

/// Seconds since the Unix epoch; the controller converts from and to API timestamps.
pub type UnixSeconds = i64;

/// The next run after `from` (the end of the last run, or creation), or `None` when the task only
/// runs on triggers.
pub fn next_run(
    spec: &UserSynchronizationSpec,
    from: UnixSeconds,
) -> Result<Option<UnixSeconds>, ScheduleError> {
    if let Some(interval) = spec.interval.as_deref() {
        let d = parse_interval(interval)?;
        return Ok(Some(
            from + i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2).max(1),
        ));
    }
    let Some(pattern) = spec.schedule.as_deref() else {
        return Ok(None);
    };
    let cron: Cron = pattern.parse().map_err(|e: croner::errors::CronError| {
        ScheduleError::Cron(pattern.into(), e.to_string())
    })?;
    let start = Utc.timestamp_opt(from, 0).single().unwrap_or_else(Utc::now);
    let next = match spec.time_zone.as_deref() {
        Some(name) => {
            let tz: chrono_tz::Tz = name
                .parse()
                .map_err(|_| ScheduleError::TimeZone(name.into()))?;
            cron.find_next_occurrence(&start.with_timezone(&tz), false)
                .map(|t| t.timestamp())
        }
        None => cron
            .find_next_occurrence(&start, false)
            .map(|t| t.timestamp()),
    };
    next.map(Some)
        .map_err(|e| ScheduleError::Cron(pattern.into(), e.to_string()))
}

/// Go-style durations: `15m`, `1h30m`, `90s`, `1.5h`.
pub fn parse_interval(text: &str) -> Result<Duration, ScheduleError> {
    let err = || ScheduleError::Interval(text.into());
    let mut total = 0f64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(err());
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        let value: f64 = rest[..number_len].parse().map_err(|_| err())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(err()),
        };
        total += value * seconds;
        rest = &rest[unit_len..];
    }
    if total < 1.0 {
        return Err(err());
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> UserSynchronizationSpec {
        let base =
            "targetGroup: all\nserver: {urls: ['ldaps://dc']}\ndirectory: {baseDN: 'DC=x'}\n";
        serde_norway::from_str(&format!("{base}{yaml}")).expect("spec")
    }

    #[test]
    fn intervals_parse_like_go_durations() {
        assert_eq!(parse_interval("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_interval("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_interval("1.5h"), Ok(Duration::from_secs(5400)));
        for bad in ["", "15", "m", "10x", "500ms"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn interval_counts_from_the_last_run() {
        assert_eq!(next_run(&spec("interval: 15m"), 1_000), Ok(Some(1_900)));
        assert_eq!(
            next_run(&spec(""), 1_000),
            Ok(None),
            "no schedule: triggers only"
        );
    }

    #[test]
    fn schedule_in_utc_and_in_a_time_zone() {
        // 2026-01-01T00:10:00Z
        let from = 1_767_226_200;
        assert_eq!(
            next_run(&spec("schedule: '0 */6 * * *'"), from),
            Ok(Some(1_767_226_200 - 600 + 6 * 3600))
        );
        // 06:00 in Bratislava (UTC+1 in January) is 05:00 UTC.
        let next = next_run(
            &spec("schedule: '0 6 * * *'\ntimeZone: Europe/Bratislava"),
            from,
        )
        .unwrap()
        .unwrap();
        assert_eq!(next, 1_767_226_200 - 600 + 5 * 3600);
    }

    #[test]
    fn bad_schedules_are_errors() {
        assert!(matches!(
            next_run(&spec("schedule: '61 * * * *'"), 0),
            Err(ScheduleError::Cron(..))
        ));
        assert!(matches!(
            next_run(&spec("schedule: '0 * * * *'\ntimeZone: Mars/Olympus"), 0),
            Err(ScheduleError::TimeZone(_))
        ));
    }
}
