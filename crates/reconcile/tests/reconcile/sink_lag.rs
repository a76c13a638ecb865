//! What the sink has not applied yet is not drift to repair: a pending delete's event is not deleted by the
//! reconciler, and a new item without a row is only reported.

use anyhow::Result;
use reconcile::DriftKind;
use vocabulary::ReservationKind;

use crate::harness::{event_of, upsert, Harness, ROOM};

#[tokio::test]
async fn records_the_sink_has_not_applied_yet_are_reported_as_unmapped_and_nothing_is_repaired() -> Result<()> {
    let mut h = Harness::start().await?;
    let quiz = upsert(ReservationKind::Event, 1, "Quiz", 5, 10);
    h.send(&quiz).await?;
    h.start_sink();
    h.wait_applied().await?;
    h.stop_sink().await?;

    // The booking system moved on while the sink was down: the quiz was cancelled and a match was booked.
    h.send_tombstone(ROOM, "event:1").await?;
    h.send(&upsert(ReservationKind::Booking, 2, "Match", 6, 12)).await?;
    let events_before = h.events();
    let rows_before = h.rows().await?;
    let report = h.reconcile(false).await?;
    let found: Vec<(DriftKind, String)> = report.drift.iter().map(|d| (d.kind, d.item_key.clone())).collect();
    assert_eq!(found, vec![(DriftKind::Unmapped, "booking:2".to_owned())], "{report}");
    assert!(report.repairs.is_empty(), "{report}");
    assert_eq!(h.events(), events_before, "the quiz event is the sink's to delete, not the reconciler's");
    assert_eq!(h.rows().await?, rows_before);

    // Once the sink caught up, the calendar agrees and there is nothing to report.
    h.start_sink();
    h.wait_applied().await?;
    let events = h.events();
    assert!(event_of(&events, "event:1").is_none() && event_of(&events, "booking:2").is_some());
    let report = h.reconcile(false).await?;
    assert!(report.is_clean(), "{report}");
    h.stop_sink().await?;
    Ok(())
}
