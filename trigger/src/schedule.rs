//! When to dispatch: delays, quiet hours and local times across DST changes.

use chrono::{
    DateTime, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use serde_json::Value;

/// The instant of local time `local` in `tz`, as close as possible to "the first instant at or
/// after `local`, not before `not_before`":
///
/// - a local time that exists once is that instant;
/// - an ambiguous one (clocks go back, it happens twice) is its first occurrence that is not
///   before `not_before`, else the last one;
/// - a nonexistent one (clocks go forward, it is skipped) is the first instant after the gap,
///   i.e. the moment of the change (02:30 on a US spring-forward day becomes 03:00 EDT).
pub(crate) fn local_instant(
    tz: Tz,
    local: NaiveDateTime,
    not_before: DateTime<Utc>,
) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, second) => {
            let (first, second) = (first.with_timezone(&Utc), second.with_timezone(&Utc));
            let (first, second) = (first.min(second), first.max(second));
            if first >= not_before {
                first
            } else {
                second
            }
        }
        LocalResult::None => {
            // Gaps last at most a day and end on a whole minute in every zone of the tz
            // database: the first local minute after `local` that exists is the gap's end.
            let start = local
                .with_second(0)
                .and_then(|l| l.with_nanosecond(0))
                .unwrap_or(local);
            (1..=24 * 60 + 1)
                .filter_map(|m| start.checked_add_signed(TimeDelta::minutes(m)))
                .find_map(|l| tz.from_local_datetime(&l).earliest())
                .map(|t| t.with_timezone(&Utc))
                // Unreachable with the tz database; read the local time as UTC rather than fail.
                .unwrap_or_else(|| local.and_utc())
        }
    }
}

/// Moves `at` out of a daily quiet window `[start, end)` in local time of `tz` (spanning
/// midnight when `start > end`): a time inside the window becomes the first instant at or
/// after the window's end; other times stay. Returns the time and whether it moved.
pub fn apply_quiet_hours(
    at: DateTime<Utc>,
    tz: Tz,
    start: NaiveTime,
    end: NaiveTime,
) -> (DateTime<Utc>, bool) {
    if start == end {
        return (at, false);
    }
    let mut t = at;
    let mut moved = false;
    // Once is enough unless a DST gap lands the end inside the next window (a window that
    // nearly fills the day); a few rounds settle any real zone.
    for _ in 0..4 {
        let local = t.with_timezone(&tz).naive_local();
        let (date, time) = (local.date(), local.time());
        let end_date: Option<NaiveDate> = if start < end {
            (start <= time && time < end).then_some(date)
        } else if time >= start {
            date.succ_opt()
        } else if time < end {
            Some(date)
        } else {
            None
        };
        let Some(end_date) = end_date else { break };
        let next = local_instant(tz, end_date.and_time(end), t);
        if next <= t {
            break;
        }
        t = next;
        moved = true;
    }
    (t, moved)
}

/// A time read from an event field: an RFC 3339 timestamp, or a `YYYY-MM-DD` date meaning
/// local midnight in `tz` (the first instant of that day if midnight is skipped).
pub(crate) fn parse_time_value(value: &Value, tz: Tz) -> Option<DateTime<Utc>> {
    let s = value.as_str()?.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(local_instant(
        tz,
        date.and_time(NaiveTime::MIN),
        DateTime::<Utc>::MIN_UTC,
    ))
}

/// `t + seconds`, saturating at the ends of chrono's range.
pub(crate) fn add_seconds(t: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
    TimeDelta::try_seconds(seconds)
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(if seconds < 0 {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test time")
            .with_timezone(&Utc)
    }

    #[test]
    fn time_values() {
        let kolkata = Tz::Asia__Kolkata;
        let check = |v: Value, expect: Option<&str>| {
            assert_eq!(parse_time_value(&v, kolkata), expect.map(utc), "{v}")
        };
        check(
            json!("2025-03-10T09:00:00+05:30"),
            Some("2025-03-10T03:30:00Z"),
        );
        check(json!("2025-03-10"), Some("2025-03-09T18:30:00Z"));
        check(json!("10/03/2025"), None);
        check(json!(1741600000), None);
    }

    #[test]
    fn nonexistent_midnight_is_the_first_instant_of_the_day() {
        // Santiago skipped 00:00 to 01:00 on 2024-09-08 (UTC-4 → UTC-3).
        let t = local_instant(
            Tz::America__Santiago,
            NaiveDate::from_ymd_opt(2024, 9, 8)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .expect("date"),
            DateTime::<Utc>::MIN_UTC,
        );
        assert_eq!(t, utc("2024-09-08T04:00:00Z"));
    }

    #[test]
    fn saturating_add() {
        assert_eq!(
            add_seconds(DateTime::<Utc>::MAX_UTC, 10),
            DateTime::<Utc>::MAX_UTC
        );
        assert_eq!(
            add_seconds(utc("2025-01-01T00:00:00Z"), -60),
            utc("2024-12-31T23:59:00Z")
        );
    }
}
