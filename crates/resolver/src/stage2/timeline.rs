//! From a reservation's Europe/Oslo wall-clock times to instants on a room's timeline.
//!
//! The booking system stores local wall clock without offset. The DST rules ([`vocabulary::oslo::DstRules`],
//! defaults: a time in the spring gap is shifted forward by the gap, a repeated autumn time takes the earlier
//! instant) make every wall-clock time one instant. All-day means midnight to midnight local (Graph accepts
//! isAllDay only with midnight boundaries in the event's zone).

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Europe::Oslo;
use vocabulary::oslo::{is_all_day, DstRules, TimeError};
use vocabulary::records::Reservation;
use vocabulary::ReservationKind;

/// One reservation on a room's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Kind (and so priority).
    pub kind: ReservationKind,
    /// Reservation id.
    pub reservation_id: i32,
    /// Start, µs since the epoch (UTC).
    pub start: i64,
    /// End, µs since the epoch (UTC).
    pub end: i64,
}

/// The timeline item of a reservation; `Ok(None)` when it ends before it starts (nothing to show).
pub fn item_of(reservation: &Reservation, rules: DstRules) -> Result<Option<Item>, TimeError> {
    let start = rules.micros_to_instant(reservation.start_local)?.timestamp_micros();
    let end = rules.micros_to_instant(reservation.end_local)?.timestamp_micros();
    if end <= start {
        return Ok(None);
    }
    Ok(Some(Item { kind: reservation.kind, reservation_id: reservation.reservation_id, start, end }))
}

/// The Oslo wall-clock time of an instant (µs since the epoch).
pub fn local_of(instant: i64) -> Option<NaiveDateTime> {
    DateTime::<Utc>::from_timestamp_micros(instant).map(|at| at.with_timezone(&Oslo).naive_local())
}

/// Whether `[start, end)` (instants) is midnight to midnight in Oslo: a Graph all-day event.
pub fn is_all_day_span(start: i64, end: i64) -> bool {
    match (local_of(start), local_of(end)) {
        (Some(start), Some(end)) => is_all_day(start, end),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage1::assemble::deleted;
    use vocabulary::oslo::{local_to_micros, GapRule};

    fn local(s: &str) -> i64 {
        local_to_micros(NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("test literal"))
    }

    fn utc(s: &str) -> i64 {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("test literal").and_utc().timestamp_micros()
    }

    fn reservation(from: &str, to: &str) -> Reservation {
        let mut r = deleted(ReservationKind::Allocation, 101, 2, 0);
        r.start_local = local(from);
        r.end_local = local(to);
        r
    }

    #[test]
    fn a_weekly_series_keeps_its_wall_clock_across_the_spring_change() {
        let before = item_of(&reservation("2026-03-24 18:00", "2026-03-24 20:00"), DstRules::default());
        let after = item_of(&reservation("2026-03-31 18:00", "2026-03-31 20:00"), DstRules::default());
        assert_eq!(before.expect("valid").map(|i| i.start), Some(utc("2026-03-24 17:00")));
        assert_eq!(after.expect("valid").map(|i| i.start), Some(utc("2026-03-31 16:00")));
    }

    #[test]
    fn a_start_in_the_spring_gap_is_shifted_forward_by_default_or_rejected() {
        let r = reservation("2026-03-29 02:30", "2026-03-29 04:00");
        let item = item_of(&r, DstRules::default()).expect("valid").expect("item");
        assert_eq!(item.start, utc("2026-03-29 01:30"), "02:30 does not exist: 03:30 summer time");
        assert_eq!(item.end, utc("2026-03-29 02:00"));
        let reject = DstRules { gap: GapRule::Reject, ..DstRules::default() };
        assert!(item_of(&r, reject).is_err());
    }

    #[test]
    fn a_time_in_the_autumn_fold_takes_the_earlier_instant() {
        let r = reservation("2026-10-25 02:30", "2026-10-25 04:00");
        let item = item_of(&r, DstRules::default()).expect("valid").expect("item");
        assert_eq!(item.start, utc("2026-10-25 00:30"), "the first 02:30, still summer time");
        assert_eq!(item.end - item.start, 150 * 60 * 1_000_000, "two and a half real hours");
    }

    #[test]
    fn midnight_to_midnight_local_is_all_day_even_across_a_dst_change() {
        let r = reservation("2026-03-29 00:00", "2026-03-30 00:00");
        let item = item_of(&r, DstRules::default()).expect("valid").expect("item");
        assert_eq!(item.end - item.start, 23 * 3_600_000_000, "the spring day has 23 hours");
        assert!(is_all_day_span(item.start, item.end));
        let evening = item_of(&reservation("2026-05-17 00:00", "2026-05-17 23:00"), DstRules::default());
        let evening = evening.expect("valid").expect("item");
        assert!(!is_all_day_span(evening.start, evening.end));
    }
}
