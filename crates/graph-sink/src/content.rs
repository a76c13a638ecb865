//! The Graph event roomsync writes for a desired item.
//!
//! Invariants: start and end are written as Europe/Oslo (or the item's zone) wall clock with the zone's name,
//! never with an offset inside `dateTime`, so Outlook shows the booking in the room's zone; a wall clock that
//! the zone's autumn fold makes ambiguous (02:00-03:00 in Oslo) is written in UTC instead, since Exchange would
//! read it as standard time whatever instant the resolver chose (`sync.dst.fold`); every written event carries the four extended properties of
//! `graph_client::properties`, so the Graph source recognises roomsync's own events and a later run (or the PHP
//! integration's successor) adopts them instead of creating duplicates. An all-day item is passed through as it
//! is: if its times are not local midnights Graph refuses it (400) and the item is parked, the honest outcome.

use chrono::{DateTime, LocalResult, TimeZone, Utc};
use chrono_tz::Tz;
use graph_client::properties::{BOOKING_SYSTEM_ID, BOOKING_SYSTEM_TYPE, ROOMSYNC_CONTENT_HASH, ROOMSYNC_ITEM_KEY};
use graph_client::{DateTimeTimeZone, Event, ItemBody, Location, Sensitivity, ShowAs};
use vocabulary::records::{DesiredContent, DesiredItem};

/// The zone events are written in when the item names none or one chrono-tz does not know.
pub const DEFAULT_ZONE: &str = "Europe/Oslo";

/// Why an item's content cannot become an event (before Graph is asked).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    /// An upsert without content.
    #[error("upsert without content")]
    Missing,
    /// A start or end outside the representable range.
    #[error("time {0} µs is out of range")]
    BadInstant(i64),
}

fn wall_clock(micros: i64, zone: Tz, zone_name: &str) -> Result<DateTimeTimeZone, ContentError> {
    let instant = DateTime::<Utc>::from_timestamp_micros(micros).ok_or(ContentError::BadInstant(micros))?;
    let local = instant.with_timezone(&zone).naive_local();
    // Graph's dateTime has four year digits; chrono would write other years with a sign ("+244399-05-27").
    if !(1..=9999).contains(&chrono::Datelike::year(&local)) {
        return Err(ContentError::BadInstant(micros));
    }
    if matches!(zone.from_local_datetime(&local), LocalResult::Ambiguous(..)) {
        // The wall clock names two instants: only UTC keeps the one chosen.
        return Ok(DateTimeTimeZone::utc(instant));
    }
    Ok(DateTimeTimeZone::local(local, zone_name))
}

fn show_as(text: &str) -> ShowAs {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).unwrap_or(ShowAs::Busy)
}

fn sensitivity(text: &str) -> Sensitivity {
    match serde_json::from_value(serde_json::Value::String(text.to_owned())) {
        Ok(Sensitivity::Unknown) | Err(_) => Sensitivity::Normal,
        Ok(s) => s,
    }
}

fn fields(mailbox: &str, content: &DesiredContent) -> Result<Event, ContentError> {
    let (zone, zone_name) = match content.time_zone.parse::<Tz>() {
        Ok(zone) => (zone, content.time_zone.as_str()),
        Err(_) => (chrono_tz::Europe::Oslo, DEFAULT_ZONE),
    };
    let location = Location {
        display_name: content.location.clone().unwrap_or_default(),
        location_email_address: mailbox.contains('@').then(|| mailbox.to_owned()),
    };
    Ok(Event {
        subject: Some(content.subject.clone()),
        body: Some(ItemBody { content_type: "text".into(), content: content.body.clone().unwrap_or_default() }),
        start: Some(wall_clock(content.start, zone, zone_name)?),
        end: Some(wall_clock(content.end, zone, zone_name)?),
        is_all_day: Some(content.is_all_day),
        show_as: Some(match show_as(&content.show_as) {
            ShowAs::Unknown => ShowAs::Busy,
            other => other,
        }),
        sensitivity: Some(sensitivity(&content.sensitivity)),
        categories: Some(content.categories.clone()),
        location: Some(location),
        ..Event::default()
    })
}

/// The full event (content and tags) for a create or a full update of `item`.
pub fn event_for(item: &DesiredItem) -> Result<Event, ContentError> {
    let content = item.content.as_ref().ok_or(ContentError::Missing)?;
    let mut event = fields(&item.mailbox, content)?;
    event.set_extended(BOOKING_SYSTEM_TYPE, item.kind.as_str());
    event.set_extended(BOOKING_SYSTEM_ID, &item.reservation_id.to_string());
    event.set_extended(ROOMSYNC_ITEM_KEY, &item.item_key);
    event.set_extended(ROOMSYNC_CONTENT_HASH, &item.content_hash);
    Ok(event)
}

/// Whether `event`, as Graph holds it, shows `content` ([`DesiredContent::is_shown_by`], the resolver's rule
/// too). A create answered with an existing event (transactionId
/// de-duplication) or an event found by its tags may have been edited in Outlook since roomsync wrote it: its
/// content-hash tag still names roomsync's content, so only its fields tell. `None`: the answer lacks readable
/// times, so it cannot be told.
pub fn shows(event: &Event, content: &DesiredContent) -> Option<bool> {
    let zone = content.time_zone.parse::<Tz>().unwrap_or(chrono_tz::Europe::Oslo);
    let (start, end) = event.span(zone).ok()?;
    Some(content.is_shown_by(
        event.subject.as_deref(),
        start.timestamp_micros(),
        end.timestamp_micros(),
        event.is_all_day.unwrap_or(false),
        event.is_cancelled.unwrap_or(false),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vocabulary::records::UpsertOrDelete;
    use vocabulary::ReservationKind;

    fn item(start: &str, end: &str, all_day: bool) -> DesiredItem {
        let micros = |s: &str| DateTime::parse_from_rfc3339(s).map(|t| t.timestamp_micros()).unwrap_or_default();
        DesiredItem {
            op: UpsertOrDelete::Upsert,
            mailbox: "hall-a@kommune.no".into(),
            resource_id: 4,
            item_key: "event:7".into(),
            kind: ReservationKind::Event,
            reservation_id: 7,
            priority: 1,
            content_hash: "h1".into(),
            content: Some(DesiredContent {
                subject: "Korps".into(),
                body: Some("Øving".into()),
                start: micros(start),
                end: micros(end),
                time_zone: "Europe/Oslo".into(),
                is_all_day: all_day,
                show_as: "busy".into(),
                sensitivity: "private".into(),
                location: Some("Hall A".into()),
                categories: vec!["roomsync".into()],
            }),
            commit_lsn: 1,
            source_committed_at: None,
            rewrite: false,
        }
    }

    #[test]
    fn times_are_written_as_oslo_wall_clock_without_an_offset() {
        // 2026-03-29 is the spring DST change: 10:00Z is 12:00 CEST; 2026-01-10 10:00Z is 11:00 CET.
        let e = event_for(&item("2026-03-29T10:00:00Z", "2026-03-29T11:30:00Z", false)).expect("event");
        let start = e.start.expect("start");
        assert_eq!(start.date_time, "2026-03-29T12:00:00.0000000");
        assert_eq!(start.time_zone, "Europe/Oslo");
        assert_eq!(e.end.expect("end").date_time, "2026-03-29T13:30:00.0000000");
        let winter = event_for(&item("2026-01-10T10:00:00Z", "2026-01-10T11:00:00Z", false)).expect("event");
        assert_eq!(winter.start.expect("start").date_time, "2026-01-10T11:00:00.0000000");
    }

    #[test]
    fn a_time_in_the_autumn_fold_is_written_in_utc_so_the_chosen_instant_stays_exact() {
        // 2026-10-25 02:30 in Oslo is both 00:30Z (summer time) and 01:30Z (standard time).
        for (start, end) in
            [("2026-10-25T00:30:00Z", "2026-10-25T03:00:00Z"), ("2026-10-25T01:30:00Z", "2026-10-25T03:00:00Z")]
        {
            let e = event_for(&item(start, end, false)).expect("event");
            let written = e.start.expect("start");
            let expected = format!("{}.0000000", &start[..19]);
            assert_eq!((written.date_time.as_str(), written.time_zone.as_str()), (expected.as_str(), "UTC"));
            // 03:00Z is 04:00 standard time: not ambiguous, written as Oslo wall clock.
            let end = e.end.expect("end");
            assert_eq!(
                (end.date_time.as_str(), end.time_zone.as_str()),
                ("2026-10-25T04:00:00.0000000", "Europe/Oslo")
            );
        }
    }

    #[test]
    fn every_event_carries_the_four_tags_and_the_room_as_location() {
        let e = event_for(&item("2026-01-10T10:00:00Z", "2026-01-10T11:00:00Z", false)).expect("event");
        assert_eq!(e.extended(BOOKING_SYSTEM_TYPE), Some("event"));
        assert_eq!(e.extended(BOOKING_SYSTEM_ID), Some("7"));
        assert_eq!(e.extended(ROOMSYNC_ITEM_KEY), Some("event:7"));
        assert_eq!(e.extended(ROOMSYNC_CONTENT_HASH), Some("h1"));
        let location = e.location.expect("location");
        assert_eq!(location.display_name, "Hall A");
        assert_eq!(location.location_email_address.as_deref(), Some("hall-a@kommune.no"));
        assert_eq!(e.show_as, Some(ShowAs::Busy));
        assert_eq!(e.sensitivity, Some(Sensitivity::Private));
        assert!(e.transaction_id.is_none(), "the writer sets it for creates only");
    }

    #[test]
    fn an_all_day_item_is_written_from_midnight_to_midnight_local() {
        let e = event_for(&item("2026-01-09T23:00:00Z", "2026-01-10T23:00:00Z", true)).expect("event");
        assert_eq!(e.start.expect("start").date_time, "2026-01-10T00:00:00.0000000");
        assert_eq!(e.is_all_day, Some(true));
    }

    #[test]
    fn an_event_shows_the_content_it_was_written_with_and_not_after_an_outlook_move() {
        for (start, end, all_day) in [
            ("2026-03-29T10:00:00Z", "2026-03-29T11:30:00Z", false),
            ("2026-01-09T23:00:00Z", "2026-01-10T23:00:00Z", true),
        ] {
            let desired = item(start, end, all_day);
            let content = desired.content.as_ref().expect("content");
            // As written (Oslo wall clock), and as Graph answers (UTC, or all-day floating midnights).
            let written = event_for(&desired).expect("event");
            assert_eq!(shows(&written, content), Some(true), "{start}");
            let mut answered = written.clone();
            let utc = |micros: i64| DateTimeTimeZone::utc(DateTime::from_timestamp_micros(micros).expect("t"));
            if !all_day {
                answered.start = Some(utc(content.start));
                answered.end = Some(utc(content.end));
                assert_eq!(shows(&answered, content), Some(true));
            }
            let mut moved = answered.clone();
            moved.start = Some(utc(content.start + 3_600_000_000));
            moved.end = Some(utc(content.end + 3_600_000_000));
            moved.is_all_day = Some(false);
            assert_eq!(shows(&moved, content), Some(false), "moved by an hour");
            let mut renamed = answered.clone();
            renamed.subject = Some("Privat fest".into());
            assert_eq!(shows(&renamed, content), Some(false), "renamed");
            let mut cancelled = answered.clone();
            cancelled.is_cancelled = Some(true);
            assert_eq!(shows(&cancelled, content), Some(false), "cancelled");
            answered.start = None;
            assert_eq!(shows(&answered, content), None, "no start: cannot tell");
        }
    }

    #[test]
    fn unknown_values_fall_back_instead_of_failing() {
        let mut i = item("2026-01-10T10:00:00Z", "2026-01-10T11:00:00Z", false);
        if let Some(c) = i.content.as_mut() {
            c.show_as = "sideways".into();
            c.sensitivity = "".into();
            c.time_zone = "Mars/Olympus".into();
        }
        let e = event_for(&i).expect("event");
        assert_eq!(e.show_as, Some(ShowAs::Busy));
        assert_eq!(e.sensitivity, Some(Sensitivity::Normal));
        assert_eq!(e.start.expect("start").time_zone, DEFAULT_ZONE);
        i.content = None;
        assert_eq!(event_for(&i), Err(ContentError::Missing));
    }

    #[test]
    fn arbitrary_times_and_zones_never_panic_and_never_put_an_offset_in_date_time() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let zones = ["Europe/Oslo", "UTC", "", "Europe/Osl", "W. Europe Standard Time", "+01:00", "\u{0}"];
        for _ in 0..5_000 {
            let mut i = item("2026-01-10T10:00:00Z", "2026-01-10T11:00:00Z", rng.gen_bool(0.5));
            if let Some(c) = i.content.as_mut() {
                c.start = if rng.gen_bool(0.5) { rng.gen() } else { rng.gen_range(-10i64.pow(15)..10i64.pow(16)) };
                c.end = rng.gen();
                c.time_zone = zones[rng.gen_range(0..zones.len())].to_owned();
                c.show_as = zones[rng.gen_range(0..zones.len())].to_owned();
            }
            if let Ok(e) = event_for(&i) {
                for t in [e.start, e.end].into_iter().flatten() {
                    assert!(!t.date_time.contains('+') && !t.date_time.ends_with('Z'), "{}", t.date_time);
                    assert!(t.time_zone == DEFAULT_ZONE || t.time_zone == "UTC", "{}", t.time_zone);
                }
            }
        }
    }
}
