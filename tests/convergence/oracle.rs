//! The independent oracle: from the final booking tables (plain SQL) and the Outlook history the generator
//! recorded, what every mapped room calendar must hold, which conflicts must be recorded and which Outlook
//! bookings must be imported. It follows architecture.md's domain rules with the default policies and does not
//! call any roomsync code (times go through chrono-tz here).
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
//! - all-day: midnight to midnight local. Window: pieces overlapping `[now - past, now + horizon)`.
//! - Outlook-origin bookings stay as their owner left them; one that overlaps an active reservation of the room
//!   (untrimmed) is a conflict per reservation (one `roomsync_conflicts` row per booking and reservation); a
//!   single one overlapping nothing is imported (a mapping row of type `outlook`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Duration as TimeDelta, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Europe::Oslo;
use tokio_postgres::Client;

use super::outlook::oslo_instant;
use super::workload::{History, Kind};

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

/// A conflict that must be recorded: mailbox, Outlook event id (`None` for an occurrence of a series, whose id the
/// generator does not know), reservation kind and id, and the overlap (for the message only: a recorded row keeps
/// the span of its first detection, see chaos-findings F6).
pub type ExpectedConflict = (String, Option<String>, &'static str, i32, DateTime<Utc>, DateTime<Utc>);

/// What the room calendars, the mapping table and the conflicts must hold.
#[derive(Debug, Default)]
pub struct Expected {
    /// roomsync's items per mailbox: item key -> (subject, slot).
    pub items: BTreeMap<String, BTreeMap<String, (String, Slot)>>,
    /// Outlook-origin events per mailbox (subject, slot), sorted.
    pub outlook: BTreeMap<String, Vec<(String, Slot)>>,
    /// Conflicts that must be in roomsync_conflicts.
    pub conflicts: BTreeSet<ExpectedConflict>,
    /// (mailbox, event id) of Outlook bookings that must be imported.
    pub imports: BTreeSet<(String, String)>,
    /// Every mapped mailbox.
    pub mailboxes: BTreeSet<String>,
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

#[derive(Debug, Clone)]
struct Item {
    kind: Kind,
    id: i32,
    subject: String,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
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

fn local(t: DateTime<Utc>) -> NaiveDateTime {
    t.with_timezone(&Oslo).naive_local()
}

/// The compared form of an interval.
pub fn slot(start: DateTime<Utc>, end: DateTime<Utc>) -> Slot {
    let (ls, le) = (local(start), local(end));
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

impl Rules {
    /// The rules of `config` as of now.
    pub fn of(config: &roomsync::config::Config) -> anyhow::Result<Rules> {
        let now = chrono::Utc::now();
        Ok(Rules {
            window_start: now - TimeDelta::from_std(config.sync.window_past)?,
            window_end: now + TimeDelta::from_std(config.sync.horizon)?,
            min_piece: config.sync.min_piece,
        })
    }
}

/// Computes the expectation from the tables as they are now and the Outlook history.
pub async fn expected(db: &Client, history: &History, rules: Rules) -> anyhow::Result<Expected> {
    let mut out = Expected::default();
    for row in db.query("select outlook_item_id from bb_resource_outlook_item where active = 1", &[]).await? {
        out.mailboxes.insert(row.get(0));
    }
    let mut rooms: BTreeMap<String, BTreeMap<(Kind, i32), Item>> = BTreeMap::new();
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
        let item = Item { kind, id, subject: subject.unwrap_or_default(), start, end };
        rooms.entry(row.get(5)).or_default().insert((kind, id), item);
    }
    let min_piece = TimeDelta::from_std(rules.min_piece)?;
    for (mailbox, items) in &rooms {
        let room = out.items.entry(mailbox.clone()).or_default();
        for item in items.values() {
            let higher: Vec<_> =
                items.values().filter(|o| o.kind.priority() < item.kind.priority()).map(|o| (o.start, o.end)).collect();
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
    }
    for (id, booking) in &history.outlook_bookings {
        let entry = (booking.subject.clone(), slot(booking.start, booking.end));
        out.outlook.entry(booking.mailbox.clone()).or_default().push(entry);
        let items: Vec<&Item> = rooms.get(&booking.mailbox).map(|m| m.values().collect()).unwrap_or_default();
        let mut overlaps_any = false;
        for k in 0..booking.occurrences {
            let week = TimeDelta::days(7 * i64::from(k));
            // The first occurrence is where Outlook put it; later ones repeat its wall clock, as Outlook expands.
            let (start, end) = if k == 0 {
                (booking.start, booking.end)
            } else {
                (oslo_instant(local(booking.start) + week), oslo_instant(local(booking.end) + week))
            };
            if end <= rules.window_start || start >= rules.window_end {
                continue;
            }
            for item in items.iter().filter(|i| i.end > start && i.start < end) {
                overlaps_any = true;
                let event = (booking.occurrences == 1).then(|| id.clone());
                let conflict = (
                    booking.mailbox.clone(),
                    event,
                    item.kind.as_str(),
                    item.id,
                    item.start.max(start),
                    item.end.min(end),
                );
                out.conflicts.insert(conflict);
            }
        }
        let in_window = booking.end > rules.window_start && booking.start < rules.window_end;
        if booking.occurrences == 1 && !overlaps_any && in_window {
            out.imports.insert((booking.mailbox.clone(), id.clone()));
        }
    }
    for list in out.outlook.values_mut() {
        list.sort();
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
}
