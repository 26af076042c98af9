//! Properties of durations and schedules: any text parses or is refused (never a panic), intervals
//! count from the last run, and a daily cron schedule in a time zone fires at the first instant its
//! local time is due, across daylight-saving gaps and repeats, never missing a day.

use chrono::{Datelike, NaiveDate, NaiveTime, Offset, TimeZone, Timelike};
use chrono_tz::Tz;
use proptest::prelude::*;

use super::*;

/// Zones with a one-hour change (north and south), a half-hour change, a past change of the
/// base offset, and none at all.
const ZONES: [&str; 6] = [
    "Europe/Bratislava",
    "America/New_York",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "America/Sao_Paulo",
    "Asia/Kolkata",
];

/// 2000-01-01 to 2099-12-31, in seconds.
const YEARS: std::ops::Range<i64> = 946_684_800..4_102_444_800;

/// The instants a local time of day falls on during `date` in `zone`: none in a gap, two in a
/// repeat.
fn instants(zone: Tz, date: NaiveDate, time: NaiveTime) -> Vec<i64> {
    match zone.from_local_datetime(&date.and_time(time)) {
        chrono::LocalResult::None => Vec::new(),
        chrono::LocalResult::Single(t) => vec![t.timestamp()],
        chrono::LocalResult::Ambiguous(a, b) => vec![a.timestamp(), b.timestamp()],
    }
}

/// The instants in `year` at which `zone` changes its offset (found hour by hour, then to the
/// quarter hour: every zone here changes on a quarter hour).
fn transitions(zone: Tz, year: i32) -> Vec<i64> {
    let offset = |t: i64| {
        zone.offset_from_utc_datetime(&Utc.timestamp_opt(t, 0).unwrap().naive_utc())
            .fix()
    };
    let start = Utc
        .with_ymd_and_hms(year, 1, 1, 0, 0, 0)
        .unwrap()
        .timestamp();
    let end = Utc
        .with_ymd_and_hms(year + 1, 1, 1, 0, 0, 0)
        .unwrap()
        .timestamp();
    let mut found = Vec::new();
    let mut t = start;
    while t < end {
        if offset(t) != offset(t + 3600) {
            let mut q = t;
            while offset(q + 900) == offset(t) {
                q += 900;
            }
            found.push(q + 900);
        }
        t += 3600;
    }
    found
}

/// A daily schedule due near one of `zone`'s changes of offset, and a last run before it: the
/// cases a uniform draw over a century almost never meets.
fn near_a_change() -> impl Strategy<Value = (i64, u32, u32, &'static str)> {
    (
        2000i32..2100,
        prop::sample::select(&ZONES[..5]),
        0usize..2,
        -36 * 3600i64..12 * 3600,
        -1i32..=1,
    )
        .prop_filter_map(
            "a zone that changes that year",
            |(year, zone, which, before, shift)| {
                let tz: Tz = zone.parse().ok()?;
                let change = *transitions(tz, year).get(which)?;
                let local = tz.timestamp_opt(change - 1, 0).single()?;
                let hour = (local.hour() as i32 + shift).rem_euclid(24) as u32;
                Some((
                    change + before,
                    hour,
                    (local.minute() + 1) / 5 * 5 % 60,
                    zone,
                ))
            },
        )
}

proptest! {
    #[test]
    fn any_text_is_a_duration_or_refused(text in ".{0,40}", digits in "[0-9.hms]{0,30}") {
        for t in [text, digits] {
            if let Ok(d) = parse_duration(&t) {
                prop_assert!(d >= MIN_DURATION && d <= MAX_DURATION, "{t}: {d:?}");
            }
        }
    }

    #[test]
    fn hours_minutes_and_seconds_add_up(h in 0u64..10_000, m in 0u64..1_000, s in 0u64..100_000) {
        let total = h * 3600 + m * 60 + s;
        let parsed = parse_duration(&format!("{h}h{m}m{s}s"));
        match total {
            0 => prop_assert!(matches!(parsed, Err(DurationError::TooShort(_)))),
            t if t > MAX_DURATION.as_secs() => {
                prop_assert!(matches!(parsed, Err(DurationError::TooLong(_))))
            }
            t => prop_assert_eq!(parsed, Ok(Duration::from_secs(t))),
        }
    }

    #[test]
    fn an_interval_counts_from_the_last_run(from in YEARS, seconds in 1u64..=MAX_DURATION.as_secs()) {
        let next = Schedule::Every(Duration::from_secs(seconds)).next_after(from);
        prop_assert_eq!(next, Some(from + seconds as i64));
    }

    #[test]
    fn a_daily_schedule_fires_at_the_first_due_instant(
        from in YEARS,
        hour in 0u32..24,
        minute in (0u32..12).prop_map(|m| m * 5),
        zone in prop::sample::select(&ZONES),
    ) {
        daily_schedule_fires_when_due(from, hour, minute, zone)?;
    }

    #[test]
    fn a_daily_schedule_fires_when_due_across_a_change_of_offset(
        (from, hour, minute, zone) in near_a_change(),
    ) {
        daily_schedule_fires_when_due(from, hour, minute, zone)?;
    }
}

/// The next run of `minute hour * * *` in `zone` after `from` is the first instant the local time
/// is due: that time itself, or, in a gap, the instant the clock jumps; no day is missed.
fn daily_schedule_fires_when_due(
    from: i64,
    hour: u32,
    minute: u32,
    zone: &str,
) -> Result<(), TestCaseError> {
    {
        let zone: Tz = zone.parse().expect("zone");
        let cron = Schedule::Cron {
            cron: Box::new(format!("{minute} {hour} * * *").parse().expect("cron")),
            zone: Some(zone),
        };
        let next = cron
            .next_after(from)
            .expect("a daily schedule always has a next time");
        prop_assert!(next > from);
        prop_assert!(next - from <= 26 * 3600, "{} s later", next - from);
        let local = zone.timestamp_opt(next, 0).single().expect("an instant");
        let time = NaiveTime::from_hms_opt(hour, minute, 0).expect("time");
        if local.time() != time {
            // Only when that time does not exist that day (a gap): then it fires as the clock
            // jumps, at the first instant after the gap.
            prop_assert!(
                instants(zone, local.date_naive(), time).is_empty(),
                "{local}"
            );
            let before = zone.timestamp_opt(next - 1, 0).single().expect("instant");
            prop_assert!(
                before.offset().fix() != local.offset().fix(),
                "{local} is not where the clock jumped"
            );
            prop_assert_eq!(local.second(), 0);
        }
        // No day's first due instant lies between the last run and the next one.
        let start = zone
            .timestamp_opt(from, 0)
            .single()
            .expect("instant")
            .date_naive();
        let mut day = start.pred_opt().expect("a day before");
        while day <= local.date_naive() {
            if let Some(&first) = instants(zone, day, time).first() {
                prop_assert!(first <= from || first >= next, "{day} {time} missed");
            }
            day = day.succ_opt().expect("a day after");
        }
        prop_assert!(local.year() >= 2000);
    }
    Ok(())
}
