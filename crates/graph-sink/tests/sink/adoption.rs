//! Events that already carry the tags (from the PHP integration, or from an earlier roomsync whose mapping row
//! is missing) are adopted, never duplicated.

use anyhow::Result;
use graph_client::properties::{BOOKING_SYSTEM_ID, BOOKING_SYSTEM_TYPE, ROOMSYNC_CONTENT_HASH, ROOMSYNC_ITEM_KEY};
use graph_client::{DateTimeTimeZone, Event};
use vocabulary::ReservationKind;

use crate::harness::{tag, upsert, Harness, ROOM_A};

fn existing(subject: &str, tags: &[(&str, &str)]) -> Event {
    let mut e = Event {
        subject: Some(subject.into()),
        start: Some(DateTimeTimeZone { date_time: "2030-01-10T09:00:00".into(), time_zone: "Europe/Oslo".into() }),
        end: Some(DateTimeTimeZone { date_time: "2030-01-10T10:00:00".into(), time_zone: "Europe/Oslo".into() }),
        ..Event::default()
    };
    for (id, value) in tags {
        e.set_extended(id, value);
    }
    e
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
    let own = graph
        .create_event(
            ROOM_A,
            &existing(
                "Team",
                &[
                    (BOOKING_SYSTEM_TYPE, "booking"),
                    (BOOKING_SYSTEM_ID, "7"),
                    (ROOMSYNC_ITEM_KEY, "booking:7"),
                    (ROOMSYNC_CONTENT_HASH, &booking.content_hash),
                ],
            ),
        )
        .await?;
    // A piece of another reservation with the same id must not be taken for the PHP event of event 42.
    let event = upsert(ROOM_A, ReservationKind::Event, 42, "New title", 10, 8);
    h.emu.reset_requests();
    h.send(&event).await?;
    h.send(&booking).await?;
    let sink = h.spawn(h.config());
    h.wait_applied().await?;
    sink.stop().await?;

    let log = h.emu.requests();
    assert_eq!(log.iter().filter(|r| r.method == "POST" && r.in_batch).count(), 0, "nothing was created");
    assert_eq!(log.iter().filter(|r| r.method == "PATCH").count(), 1, "only the PHP event needed new content");
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
