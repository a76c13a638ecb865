//! Events that already carry the tags (from the PHP integration, or from an earlier roomsync whose mapping row
//! is missing) are adopted, never duplicated.

use anyhow::Result;
use graph_client::properties::{BOOKING_SYSTEM_ID, BOOKING_SYSTEM_TYPE, ROOMSYNC_CONTENT_HASH, ROOMSYNC_ITEM_KEY};
use graph_client::{DateTimeTimeZone, Event};
use vocabulary::ReservationKind;

use crate::harness::{tag, upsert, Harness, ROOM_A, ROOM_B};

/// An event 2030-01-`day` from `hour`:00 to `hour+1`:30 Oslo time (the times of `upsert(.., day, hour - 1)`).
fn existing_at(subject: &str, day: u32, hour: u32, tags: &[(&str, impl AsRef<str>)]) -> Event {
    let at = |h: u32, m: u32| DateTimeTimeZone {
        date_time: format!("2030-01-{day:02}T{h:02}:{m:02}:00"),
        time_zone: "Europe/Oslo".into(),
    };
    let mut e = Event {
        subject: Some(subject.into()),
        start: Some(at(hour, 0)),
        end: Some(at(hour + 1, 30)),
        ..Event::default()
    };
    for (id, value) in tags {
        e.set_extended(id, value.as_ref());
    }
    e
}

/// Runs a sink until everything sent is applied; returns the creates and updates it sent to Graph.
async fn apply(h: &Harness) -> Result<(usize, usize)> {
    let sink = h.spawn(h.config());
    h.wait_applied().await?;
    sink.stop().await?;
    let log = h.emu.requests();
    let count = |method: &str| log.iter().filter(|r| r.method == method && (method != "POST" || r.in_batch)).count();
    Ok((count("POST"), count("PATCH")))
}

fn existing(subject: &str, tags: &[(&str, &str)]) -> Event {
    existing_at(subject, 10, 9, tags)
}

fn own_tags(item: &vocabulary::records::DesiredItem) -> Vec<(&'static str, String)> {
    vec![
        (BOOKING_SYSTEM_TYPE, item.kind.as_str().to_owned()),
        (BOOKING_SYSTEM_ID, item.reservation_id.to_string()),
        (ROOMSYNC_ITEM_KEY, item.item_key.clone()),
        (ROOMSYNC_CONTENT_HASH, item.content_hash.clone()),
    ]
}

#[tokio::test]
async fn pre_existing_tagged_events_are_adopted_not_duplicated() -> Result<()> {
    let mut h = Harness::start().await?;
    let graph = h.graph();
    // The PHP integration's event for event 42, and roomsync's own event for booking 7 whose row was lost.
    let php = graph
        .create_event(ROOM_A, &existing("Old title", &[(BOOKING_SYSTEM_TYPE, "event"), (BOOKING_SYSTEM_ID, "42")]))
        .await?;
    let booking = upsert(ROOM_A, ReservationKind::Booking, 7, "Team", 11, 8);
    // 2030-01-11 09:00-10:30 Oslo is the booking's 08:00Z-09:30Z: the event shows the content its tag names.
    let own = graph.create_event(ROOM_A, &existing_at("Team", 11, 9, &own_tags(&booking))).await?;
    // A piece of another reservation with the same id must not be taken for the PHP event of event 42.
    let event = upsert(ROOM_A, ReservationKind::Event, 42, "New title", 10, 8);
    h.emu.reset_requests();
    h.send(&event).await?;
    h.send(&booking).await?;
    assert_eq!(apply(&h).await?, (0, 1), "nothing was created; only the PHP event needed new content");
    let events = h.events(ROOM_A);
    assert_eq!(events.len(), 2);
    let adopted = events.iter().find(|e| e["id"].as_str() == php.id.as_deref()).expect("php event");
    assert_eq!(adopted["subject"], "New title");
    assert_eq!(tag(adopted, ROOMSYNC_ITEM_KEY), Some("event:42"));
    let rows = h.rows(ROOM_A).await?;
    let by_key = |k: &str| rows.iter().find(|r| r.item_key == k).cloned().expect("row");
    assert_eq!(by_key("event:42").event_id, php.id);
    assert_eq!(by_key("booking:7").event_id, own.id);
    assert!(rows.iter().all(|r| r.status == "synced"));
    Ok(())
}

/// roomsync created the event, its answer was lost, and an Outlook user moved it before the sink looked again:
/// the event still carries roomsync's content-hash tag, but not that content. Taking it as written would record
/// the moved version's changeKey as roomsync's own, and the resolver would never revert the move (F10 of the
/// chaos test); the sink rewrites it instead.
#[tokio::test]
async fn a_tagged_event_moved_in_outlook_is_rewritten_not_adopted() -> Result<()> {
    let mut h = Harness::start().await?;
    let graph = h.graph();
    let booking = upsert(ROOM_A, ReservationKind::Booking, 8, "Team", 11, 8);
    // One hour later than the booking (10:00-11:30 Oslo instead of 09:00-10:30).
    let moved = graph.create_event(ROOM_A, &existing_at("Team", 11, 10, &own_tags(&booking))).await?;
    h.emu.reset_requests();
    h.send(&booking).await?;
    assert_eq!(apply(&h).await?, (0, 1), "nothing was created; the moved event was rewritten");
    let events = h.events(ROOM_A);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["id"].as_str(), moved.id.as_deref());
    let start = graph_client::DateTimeTimeZone {
        date_time: events[0]["start"]["dateTime"].as_str().unwrap_or_default().into(),
        time_zone: events[0]["start"]["timeZone"].as_str().unwrap_or_default().into(),
    };
    let content = booking.content.as_ref().expect("content");
    assert_eq!(start.instant()?.timestamp_micros(), content.start, "back at the booking's time");
    let rows = h.rows(ROOM_A).await?;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].event_id, moved.id);
    assert_eq!(rows[0].status, "synced");
    assert_ne!(
        rows[0].change_key, moved.change_key,
        "the recorded changeKey is the rewrite's, not the moved version's"
    );
    assert_eq!(rows[0].change_key.as_deref(), events[0]["changeKey"].as_str());
    Ok(())
}

/// The GETs of the log that look one item up by its tags (they expand the tags), and those that check a whole
/// calendar for tagged events (they select only ids).
fn lookups(h: &Harness) -> (usize, usize) {
    let log = h.emu.requests();
    let gets = |part: &str| log.iter().filter(|r| r.method == "GET" && r.path.contains(part)).count();
    (gets("$expand="), gets("$select=id"))
}

#[tokio::test]
async fn items_seen_first_in_a_calendar_without_tagged_events_are_created_without_a_lookup_each() -> Result<()> {
    let mut h = Harness::start().await?;
    for id in 1..=12 {
        h.send(&upsert(ROOM_A, ReservationKind::Event, id, "Quiz", 10, 8 + id as u32 % 10)).await?;
    }
    let (creates, _) = apply(&h).await?;
    assert_eq!(creates, 12);
    assert_eq!(h.events(ROOM_A).len(), 12);
    // One check of the calendar, no lookup per item.
    assert_eq!(lookups(&h), (0, 1));
    Ok(())
}

#[tokio::test]
async fn a_calendar_holding_an_event_tagged_with_any_booking_system_type_keeps_its_lookups() -> Result<()> {
    let mut h = Harness::start().await?;
    // A kind roomsync does not write (an older integration's spelling): the calendar is not clean all the same.
    h.graph()
        .create_event(ROOM_A, &existing("Old", &[(BOOKING_SYSTEM_TYPE, "Arrangement"), (BOOKING_SYSTEM_ID, "7")]))
        .await?;
    h.send(&upsert(ROOM_A, ReservationKind::Event, 1, "Quiz", 10, 8)).await?;
    h.send(&upsert(ROOM_B, ReservationKind::Event, 2, "Quiz", 10, 9)).await?;
    let (creates, _) = apply(&h).await?;
    assert_eq!(creates, 2);
    assert_eq!(lookups(&h), (1, 2), "room A's item looked up, room B's not; one check per calendar");
    Ok(())
}

#[tokio::test]
async fn a_calendar_holding_the_php_integrations_events_keeps_its_lookups_and_adopts_them() -> Result<()> {
    let mut h = Harness::start().await?;
    let graph = h.graph();
    graph
        .create_event(ROOM_A, &existing("Old title", &[(BOOKING_SYSTEM_TYPE, "event"), (BOOKING_SYSTEM_ID, "42")]))
        .await?;
    h.send(&upsert(ROOM_A, ReservationKind::Event, 42, "New title", 10, 8)).await?;
    h.send(&upsert(ROOM_A, ReservationKind::Event, 43, "Other", 11, 8)).await?;
    let (creates, updates) = apply(&h).await?;
    assert_eq!((creates, updates), (1, 1), "event 42 adopted and updated, event 43 created");
    assert_eq!(h.events(ROOM_A).len(), 2);
    assert_eq!(lookups(&h).0, 2, "each item looked up by its id");

    // With lookups = "always" no calendar is checked.
    let mut h = Harness::start().await?;
    h.send(&upsert(ROOM_A, ReservationKind::Event, 1, "Quiz", 10, 8)).await?;
    let mut config = h.config();
    config.lookups = graph_sink::Lookups::Always;
    let sink = h.spawn(config);
    h.wait_applied().await?;
    sink.stop().await?;
    assert_eq!(lookups(&h), (1, 0));
    Ok(())
}
