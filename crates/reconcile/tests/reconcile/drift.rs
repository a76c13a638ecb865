//! Drift made by people directly in the room calendar is found, reported without changes in a dry run, and
//! repaired through the sink otherwise.

use std::time::Duration;

use anyhow::{Context, Result};
use graph_client::{DateTimeTimeZone, Event};
use reconcile::{DriftKind, Outcome};
use testkit::wait_until;
use vocabulary::ReservationKind;

use crate::harness::{event_of, upsert, Harness, ROOM};

fn id_of(events: &[serde_json::Value], item_key: &str) -> Result<String> {
    event_of(events, item_key)
        .and_then(|e| e["id"].as_str())
        .map(str::to_owned)
        .with_context(|| format!("event of {item_key}"))
}

#[tokio::test]
async fn a_deleted_a_moved_and_an_unknown_tagged_event_are_found_then_repaired_and_outlook_events_are_left_alone(
) -> Result<()> {
    let mut h = Harness::start().await?;
    let quiz = upsert(ReservationKind::Event, 1, "Quiz", 5, 10);
    let korps = upsert(ReservationKind::Event, 2, "Korps", 6, 17);
    let handball = upsert(ReservationKind::Booking, 3, "Handball", 7, 8);
    let club = upsert(ReservationKind::Allocation, 5, "Club", 8, 9);
    for item in [&quiz, &korps, &handball, &club] {
        h.send(item).await?;
    }
    h.send_tombstone(ROOM, "allocation:5").await?;
    h.start_sink();
    h.wait_applied().await?;
    wait_until("three events in the calendar", Duration::from_secs(30), || async {
        Ok((h.events().len() == 3).then_some(()))
    })
    .await?;
    let events = h.events();
    let (quiz_id, korps_id) = (id_of(&events, "event:1")?, id_of(&events, "event:2")?);

    // People at work: one deletes an event, one moves another by two hours, a stray tool leaves a tagged event
    // for an item nothing desires, and someone books the room in Outlook.
    let person = h.person();
    person.delete_event(ROOM, &quiz_id).await?;
    let moved = Event {
        start: Some(DateTimeTimeZone { date_time: "2030-01-06T19:00:00".into(), time_zone: "UTC".into() }),
        end: Some(DateTimeTimeZone { date_time: "2030-01-06T20:30:00".into(), time_zone: "UTC".into() }),
        ..Event::default()
    };
    person.update_event(ROOM, &korps_id, &moved, None).await?;
    let stranger_id = h.tagged_stranger("event:99", 99, "2030-01-09T10:00:00", "2030-01-09T11:00:00").await?;
    let outlook_id = h.outlook_booking("Board meeting", "2030-01-10T12:00:00", "2030-01-10T13:00:00").await?;
    let outlook_before = h.events().into_iter().find(|e| e["id"] == outlook_id.as_str()).context("outlook event")?;

    // Dry run: exactly the three drifts, and nothing written anywhere.
    let rows_before = h.rows().await?;
    let events_before = h.events();
    let high_before = h.desired_high_watermark()?;
    h.emu.reset_requests();
    let report = h.reconcile(true).await?;
    let mut found: Vec<(DriftKind, String, Option<String>)> =
        report.drift.iter().map(|d| (d.kind, d.item_key.clone(), d.event_id.clone())).collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            (DriftKind::Missing, "event:1".to_owned(), Some(quiz_id.clone())),
            (DriftKind::Changed, "event:2".to_owned(), Some(korps_id.clone())),
            (DriftKind::Stale, "event:99".to_owned(), Some(stranger_id.clone())),
        ],
        "{report}"
    );
    let changed = report.drift.iter().find(|d| d.kind == DriftKind::Changed).context("changed")?;
    assert!(
        changed.detail.contains("start desired 2030-01-06T17:00:00Z, calendar 2030-01-06T19:00:00Z"),
        "{changed:?}"
    );
    assert!(report.repairs.is_empty());
    let writes: Vec<_> = h
        .emu
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET" && !(r.method == "POST" && r.path.contains("$batch")))
        .collect();
    assert!(writes.is_empty(), "a dry run wrote to Graph: {writes:?}");
    assert_eq!(h.rows().await?, rows_before, "a dry run changed mapping rows");
    assert_eq!(h.events(), events_before, "a dry run changed the calendar");
    assert_eq!(h.desired_high_watermark()?, high_before, "a dry run produced records");

    // Repair: the reconciler resets the rows and produces the desired records again; the sink rewrites them.
    let report = h.reconcile(false).await?;
    assert_eq!(report.drift.len(), 3, "{report}");
    for repair in &report.repairs {
        match (&repair.drift.kind, &repair.outcome) {
            (DriftKind::Missing | DriftKind::Changed, Outcome::Reproduced { offset, .. }) => {
                h.last_offset = h.last_offset.max(*offset);
            }
            (DriftKind::Stale, Outcome::Deleted) => {}
            other => panic!("unexpected repair {other:?}"),
        }
    }
    assert_eq!(report.repairs.len(), 3);
    h.wait_applied().await?;
    let events = wait_until("the calendar to match the desired state", Duration::from_secs(30), || async {
        let events = h.events();
        let quiz_back =
            event_of(&events, "event:1").is_some_and(|e| e["start"]["dateTime"] == "2030-01-05T10:00:00.0000000");
        let korps_back =
            event_of(&events, "event:2").is_some_and(|e| e["start"]["dateTime"] == "2030-01-06T17:00:00.0000000");
        Ok((quiz_back && korps_back).then_some(events))
    })
    .await?;
    assert_eq!(events.len(), 4, "three desired events and the Outlook booking: {events:#?}");
    assert!(event_of(&events, "event:99").is_none(), "the stale event is gone");
    assert!(event_of(&events, "event:3").is_none() && event_of(&events, "booking:3").is_some());
    assert_ne!(id_of(&events, "event:1")?, quiz_id, "a deleted event comes back as a new generation");
    assert_eq!(id_of(&events, "event:2")?, korps_id, "a moved event is patched back, not replaced");
    let outlook_after = events.iter().find(|e| e["id"] == outlook_id.as_str()).context("outlook event kept")?;
    assert_eq!(outlook_after, &outlook_before, "the Outlook-origin event is untouched");
    let rows = h.rows().await?;
    assert!(
        rows.iter().filter(|r| r.0 != "allocation:5").all(|r| r.1 == "synced" && r.3.is_some() && r.4 == "none"),
        "{rows:?}"
    );

    // Nothing left to find.
    let again = h.reconcile(false).await?;
    assert!(again.is_clean(), "{again}");
    assert!(again.repairs.is_empty());
    h.stop_sink().await?;
    Ok(())
}
