//! Europe/Oslo wall-clock time, as the booking system stores it (`timestamp without time zone`), and the
//! rules that turn it into instants.
//!
//! Twice a year a wall-clock time is not one instant: in spring 02:00–03:00 does not exist, in autumn
//! 02:00–03:00 happens twice. The rules are explicit and configurable; the defaults are:
//! - a nonexistent time is shifted forward by the length of the gap (02:30 -> 03:30 summer time);
//! - a repeated time takes the earlier instant (summer time).

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Europe::Oslo;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The booking system's time zone.
pub const BOOKING_TIME_ZONE: Tz = Oslo;

/// What to do with a wall-clock time inside the spring gap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapRule {
    /// Shift forward by the gap's length (02:30 -> 03:30).
    #[default]
    ShiftForward,
    /// Refuse it: the item is dead-lettered with the reason.
    Reject,
}

/// What to do with a wall-clock time that happens twice in autumn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FoldRule {
    /// The earlier instant (still summer time).
    #[default]
    Earlier,
    /// The later instant (already standard time).
    Later,
}

/// The DST rules in force.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DstRules {
    /// Nonexistent times.
    #[serde(default)]
    pub gap: GapRule,
    /// Repeated times.
    #[serde(default)]
    pub fold: FoldRule,
}

/// A wall-clock time that has no instant under the rules in force.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum TimeError {
    /// Inside the spring gap, with [`GapRule::Reject`].
    #[error("{0} does not exist in Europe/Oslo (daylight-saving gap)")]
    Nonexistent(NaiveDateTime),
    /// Outside the range chrono can represent.
    #[error("{0} µs is outside the representable time range")]
    OutOfRange(i64),
}

impl DstRules {
    /// The instant of an Oslo wall-clock time.
    pub fn to_instant(self, local: NaiveDateTime) -> Result<DateTime<Utc>, TimeError> {
        match Oslo.from_local_datetime(&local) {
            LocalResult::Single(at) => Ok(at.with_timezone(&Utc)),
            LocalResult::Ambiguous(earlier, later) => Ok(match self.fold {
                FoldRule::Earlier => earlier.with_timezone(&Utc),
                FoldRule::Later => later.with_timezone(&Utc),
            }),
            LocalResult::None => match self.gap {
                GapRule::Reject => Err(TimeError::Nonexistent(local)),
                GapRule::ShiftForward => {
                    // Read the time with the offset in force before the gap: 02:30 at +01:00 is 01:30 UTC,
                    // which is 03:30 in summer time, i.e. shifted forward by the gap's length.
                    let before = Oslo
                        .from_local_datetime(&(local - Duration::hours(3)))
                        .earliest()
                        .ok_or(TimeError::Nonexistent(local))?;
                    let offset = before.offset().fix();
                    Ok(DateTime::<Utc>::from_naive_utc_and_offset(local - offset_duration(offset), Utc))
                }
            },
        }
    }

    /// The instant of a wall-clock time given as µs since 1970-01-01T00:00 local (Avro local-timestamp-micros).
    pub fn micros_to_instant(self, local_micros: i64) -> Result<DateTime<Utc>, TimeError> {
        self.to_instant(local_from_micros(local_micros)?)
    }
}

fn offset_duration(offset: chrono::FixedOffset) -> Duration {
    Duration::seconds(i64::from(offset.local_minus_utc()))
}

use chrono::Offset;

/// A wall-clock time as µs since 1970-01-01T00:00 (the Avro local-timestamp-micros encoding).
pub fn local_to_micros(local: NaiveDateTime) -> i64 {
    local.and_utc().timestamp_micros()
}

/// The wall-clock time of µs since 1970-01-01T00:00.
pub fn local_from_micros(micros: i64) -> Result<NaiveDateTime, TimeError> {
    DateTime::from_timestamp_micros(micros).map(|at| at.naive_utc()).ok_or(TimeError::OutOfRange(micros))
}

/// Whether a local interval is a whole number of days from midnight to midnight (an all-day item in Outlook).
pub fn is_all_day(start: NaiveDateTime, end: NaiveDateTime) -> bool {
    let midnight = chrono::NaiveTime::MIN;
    start.time() == midnight && end.time() == midnight && end > start
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("test literal")
    }

    fn utc(s: &str) -> DateTime<Utc> {
        local(s).and_utc()
    }

    #[test]
    fn ordinary_times_use_the_offset_of_the_day() {
        let rules = DstRules::default();
        assert_eq!(rules.to_instant(local("2026-01-15 18:00")), Ok(utc("2026-01-15 17:00")));
        assert_eq!(rules.to_instant(local("2026-07-15 18:00")), Ok(utc("2026-07-15 16:00")));
    }

    #[test]
    fn a_weekly_slot_keeps_its_wall_clock_across_the_spring_change() {
        // bb_sample.sql rows 101/102: 18:00 before and after 2026-03-29 are different UTC hours.
        let rules = DstRules::default();
        assert_eq!(rules.to_instant(local("2026-03-24 18:00")), Ok(utc("2026-03-24 17:00")));
        assert_eq!(rules.to_instant(local("2026-03-31 18:00")), Ok(utc("2026-03-31 16:00")));
    }

    #[test]
    fn a_time_in_the_spring_gap_is_shifted_forward_by_default() {
        let at = DstRules::default().to_instant(local("2026-03-29 02:30")).expect("shifted");
        assert_eq!(at, utc("2026-03-29 01:30"));
        assert_eq!(at.with_timezone(&Oslo).naive_local(), local("2026-03-29 03:30"));
    }

    #[test]
    fn a_time_in_the_spring_gap_can_be_rejected() {
        let rules = DstRules { gap: GapRule::Reject, ..DstRules::default() };
        assert_eq!(rules.to_instant(local("2026-03-29 02:30")), Err(TimeError::Nonexistent(local("2026-03-29 02:30"))));
    }

    #[test]
    fn a_repeated_autumn_time_takes_the_earlier_instant_by_default() {
        assert_eq!(DstRules::default().to_instant(local("2026-10-25 02:30")), Ok(utc("2026-10-25 00:30")));
        let later = DstRules { fold: FoldRule::Later, ..DstRules::default() };
        assert_eq!(later.to_instant(local("2026-10-25 02:30")), Ok(utc("2026-10-25 01:30")));
    }

    #[test]
    fn local_micros_round_trip() {
        let t = local("2026-10-25 02:30");
        assert_eq!(local_from_micros(local_to_micros(t)), Ok(t));
        assert_eq!(local_from_micros(i64::MAX), Err(TimeError::OutOfRange(i64::MAX)));
    }

    #[test]
    fn midnight_to_midnight_is_all_day() {
        assert!(is_all_day(local("2026-05-17 00:00"), local("2026-05-18 00:00")));
        assert!(!is_all_day(local("2026-05-17 00:00"), local("2026-05-17 23:59")));
        assert!(!is_all_day(local("2026-05-17 00:00"), local("2026-05-17 00:00")));
    }
}
