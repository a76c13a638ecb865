//! The independent oracle of the booking side: from the booking tables as they are now (plain SQL), what every
//! mapped room calendar must hold. It follows docs/architecture.md's domain rules with the default policies and does
//! not call any roomsync code (times go through chrono-tz here), so a test that compares roomsync's output with
//! it checks roomsync against the rules, not against itself.
//!
//! Rules as implemented:
//! - active: events `active = 1`; bookings and allocations `active = 1` in a season with `active = 1` and
//!   `status = 'PUBLISHED'`; only resources linked now, only rooms with an active mapping row.
//! - subjects: event -> name, booking -> its group's name, allocation -> its organization's name.
//! - Europe/Oslo wall clock -> instant: a time in the spring gap is read with the offset before the gap (02:30 ->
//!   03:30 summer time); a repeated autumn time takes the earlier instant (summer time).
//! - per room, Event > Booking > Allocation with `trim`: a lower item keeps only the parts no strictly higher item
//!   covers, pieces shorter than `min_piece` are dropped, pieces are numbered `:1`, `:2`, ... only when there are
//!   two or more; a reservation linked to two resources of one room is one item.
//! - all-day: midnight to midnight local. Window: pieces overlapping `[window_start, window_end)`.
//!
//! The Outlook side (imports, conflicts) is the caller's: [`Calendars::reservations`] gives the untrimmed
//! reservations of each room it needs for that.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Duration as TimeDelta, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Europe::Oslo;
use tokio_postgres::Client;

/// One of the three reservation levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// bb_event
    Event,
    /// bb_booking
    Booking,
    /// bb_allocation
    Allocation,
}

impl Kind {
    /// As in item keys and roomsync_conflicts.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Event => "event",
            Kind::Booking => "booking",
            Kind::Allocation => "allocation",
        }
    }

    /// 1 (highest) to 3.
    pub fn priority(self) -> u8 {
        match self {
            Kind::Event => 1,
            Kind::Booking => 2,
            Kind::Allocation => 3,
        }
    }
}

/// Where an event lies, as compared: UTC for timed events, Oslo wall clock for all-day ones.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Slot {
    /// Start (`%Y-%m-%dT%H:%M:%S`).
    pub start: String,
    /// End.
    pub end: String,
    /// All-day.
    pub all_day: bool,
}

/// The sync window and the trim minimum, as configured.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Window start.
    pub window_start: DateTime<Utc>,
    /// Window end.
    pub window_end: DateTime<Utc>,
    /// Shortest piece shown.
    pub min_piece: Duration,
}

/// An active reservation in a mapped room, untrimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// Its level.
    pub kind: Kind,
    /// Its id in its table.
    pub id: i32,
    /// What the calendar shows as subject.
    pub subject: String,
    /// Start instant.
    pub start: DateTime<Utc>,
    /// End instant (after the start).
    pub end: DateTime<Utc>,
}

/// What the mapped room calendars must hold.
#[derive(Debug, Default)]
pub struct Calendars {
    /// Every mailbox with an active mapping row.
    pub mailboxes: BTreeSet<String>,
    /// roomsync's items per mailbox: item key -> (subject, slot). A mailbox with no item may be absent.
    pub items: BTreeMap<String, BTreeMap<String, (String, Slot)>>,
    /// The active reservations of each mailbox's rooms, untrimmed and whatever the window.
    pub reservations: BTreeMap<String, Vec<Reservation>>,
}

/// Booking-system wall clock -> instant under the default DST rules.
pub fn booking_instant(local: NaiveDateTime) -> DateTime<Utc> {
    match Oslo.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
        chrono::LocalResult::None => {
            // In the gap: read with the offset in force before it, i.e. shifted forward by the gap's length.
            let before = Oslo.offset_from_utc_datetime(&(local - TimeDelta::hours(12))).fix();
            (local - TimeDelta::seconds(i64::from(before.local_minus_utc()))).and_utc()
        }
    }
}

/// The Oslo wall clock of an instant.
pub fn oslo_local(t: DateTime<Utc>) -> NaiveDateTime {
    t.with_timezone(&Oslo).naive_local()
}

/// The compared form of an interval.
pub fn slot(start: DateTime<Utc>, end: DateTime<Utc>) -> Slot {
    let (ls, le) = (oslo_local(start), oslo_local(end));
    let all_day = ls.time() == NaiveTime::MIN && le.time() == NaiveTime::MIN && le > ls;
    let format = |t: NaiveDateTime| t.format("%Y-%m-%dT%H:%M:%S").to_string();
    if all_day {
        Slot { start: format(ls), end: format(le), all_day }
    } else {
        Slot { start: format(start.naive_utc()), end: format(end.naive_utc()), all_day }
    }
}

/// `[start, end)` minus the union of `covers`.
fn subtract(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    covers: &[(DateTime<Utc>, DateTime<Utc>)],
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut covers: Vec<_> = covers.iter().copied().filter(|(s, e)| *e > start && *s < end).collect();
    covers.sort();
    let mut out = Vec::new();
    let mut cursor = start;
    for (s, e) in covers {
        if s > cursor {
            out.push((cursor, s.min(end)));
        }
        cursor = cursor.max(e);
    }
    if cursor < end {
        out.push((cursor, end));
    }
    out
}

const QUERY: &str = "
    select 'event', e.id, e.name, e.from_, e.to_, m.outlook_item_id
      from bb_event e join bb_event_resource r on r.event_id = e.id
      join bb_resource_outlook_item m on m.resource_id = r.resource_id and m.active = 1
     where e.active = 1
    union
    select 'booking', b.id, g.name, b.from_, b.to_, m.outlook_item_id
      from bb_booking b join bb_group g on g.id = b.group_id join bb_season s on s.id = b.season_id
      join bb_booking_resource r on r.booking_id = b.id
      join bb_resource_outlook_item m on m.resource_id = r.resource_id and m.active = 1
     where b.active = 1 and s.active = 1 and s.status = 'PUBLISHED'
    union
    select 'allocation', a.id, o.name, a.from_, a.to_, m.outlook_item_id
      from bb_allocation a join bb_organization o on o.id = a.organization_id join bb_season s on s.id = a.season_id
      join bb_allocation_resource r on r.allocation_id = a.id
      join bb_resource_outlook_item m on m.resource_id = r.resource_id and m.active = 1
     where a.active = 1 and s.active = 1 and s.status = 'PUBLISHED'";

/// What the mapped room calendars must hold, from the booking tables as they are now.
pub async fn calendars(db: &Client, rules: Rules) -> anyhow::Result<Calendars> {
    let mut out = Calendars::default();
    for row in db.query("select outlook_item_id from bb_resource_outlook_item where active = 1", &[]).await? {
        out.mailboxes.insert(row.get(0));
    }
    let mut rooms: BTreeMap<String, BTreeMap<(Kind, i32), Reservation>> = BTreeMap::new();
    for row in db.query(QUERY, &[]).await? {
        let kind = match row.get::<_, &str>(0) {
            "event" => Kind::Event,
            "booking" => Kind::Booking,
            _ => Kind::Allocation,
        };
        let id: i32 = row.get(1);
        let subject: Option<String> = row.get(2);
        let (start, end) = (booking_instant(row.get(3)), booking_instant(row.get(4)));
        if end <= start {
            continue;
        }
        let reservation = Reservation { kind, id, subject: subject.unwrap_or_default(), start, end };
        rooms.entry(row.get(5)).or_default().insert((kind, id), reservation);
    }
    let min_piece = TimeDelta::from_std(rules.min_piece)?;
    for (mailbox, reservations) in rooms {
        let room = out.items.entry(mailbox.clone()).or_default();
        for item in reservations.values() {
            let higher: Vec<_> = reservations
                .values()
                .filter(|o| o.kind.priority() < item.kind.priority())
                .map(|o| (o.start, o.end))
                .collect();
            let pieces: Vec<_> =
                subtract(item.start, item.end, &higher).into_iter().filter(|(s, e)| *e - *s >= min_piece).collect();
            let split = pieces.len() > 1;
            for (n, (start, end)) in pieces.into_iter().enumerate() {
                if end <= rules.window_start || start >= rules.window_end {
                    continue;
                }
                let key = if split {
                    format!("{}:{}:{}", item.kind.as_str(), item.id, n + 1)
                } else {
                    format!("{}:{}", item.kind.as_str(), item.id)
                };
                room.insert(key, (item.subject.clone(), slot(start, end)));
            }
        }
        out.reservations.insert(mailbox, reservations.into_values().collect());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap_or_default()
    }

    #[test]
    fn gap_and_fold_follow_the_default_rules() {
        assert_eq!(booking_instant(naive("2027-03-28 02:30")), naive("2027-03-28 01:30").and_utc());
        assert_eq!(booking_instant(naive("2026-10-25 02:30")), naive("2026-10-25 00:30").and_utc());
    }

    #[test]
    fn a_lower_item_keeps_the_parts_no_higher_item_covers() {
        let at = |h: i64| naive("2030-01-07 00:00").and_utc() + TimeDelta::hours(h);
        assert_eq!(
            subtract(at(10), at(20), &[(at(12), at(13)), (at(12), at(14))]),
            vec![(at(10), at(12)), (at(14), at(20))]
        );
        assert_eq!(subtract(at(10), at(20), &[(at(9), at(21))]), vec![]);
    }
}
