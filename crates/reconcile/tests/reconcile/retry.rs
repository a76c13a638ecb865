//! Retrying parked items: the sink parks an item it cannot write; once the cause is gone, a retry writes it
//! through the sink's exactly-once path.

use anyhow::Result;
use reconcile::{retry_parked, Outcome, RetryOptions};
use vocabulary::ReservationKind;

use crate::harness::{event_of, upsert, Harness, ROOM};

#[tokio::test]
async fn a_parked_item_is_written_once_the_cause_is_gone_and_a_dry_run_changes_nothing() -> Result<()> {
    let mut h = Harness::start().await?;
    // The mailbox refuses roomsync (403 ErrorAccessDenied, a definite error): the sink parks the items.
    let mut faults = h.emu.faults();
    faults.denied_mailboxes = vec![ROOM.to_owned()];
    h.emu.set_faults(faults.clone());
    h.start_sink();
    let (a, b) =
        (upsert(ReservationKind::Booking, 11, "Fotball", 3, 17), upsert(ReservationKind::Event, 12, "Konsert", 4, 18));
    h.send(&a).await?;
    h.send(&b).await?;
    h.wait_applied().await?;
    let statuses: Vec<String> = h.rows().await?.into_iter().map(|r| r.1).collect();
    assert_eq!(statuses, vec!["parked", "parked"], "{:?}", h.rows().await?);

    let config = h.config();
    let all = RetryOptions { rooms: vec![ROOM.to_owned()], ..RetryOptions::default() };
    let dry = retry_parked(&config, &RetryOptions { dry_run: true, ..all.clone() }).await?;
    assert_eq!((dry.items.len(), dry.retried()), (2, 0), "{dry}");
    assert!(dry.items.iter().all(|i| i.outcome.is_none() && i.error.is_some()), "{dry}");
    assert_eq!(h.desired_high_watermark()?, h.last_offset + 1, "a dry run produces nothing");

    // The permission is granted; only booking 11 is retried first.
    faults.denied_mailboxes.clear();
    h.emu.set_faults(faults);
    let one = RetryOptions { items: vec![a.item_key.clone()], ..all.clone() };
    let report = retry_parked(&config, &one).await?;
    assert_eq!(report.retried(), 1, "{report}");
    h.last_offset = h.desired_high_watermark()? - 1;
    h.wait_applied().await?;
    let events = h.events();
    assert!(event_of(&events, &a.item_key).is_some(), "booking 11 written");
    assert!(event_of(&events, &b.item_key).is_none(), "event 12 still parked");

    let report = retry_parked(&config, &all).await?;
    assert_eq!(report.items.len(), 1, "only event 12 is still parked: {report}");
    assert!(matches!(report.items[0].outcome, Some(Outcome::Reproduced { .. })), "{report}");
    h.last_offset = h.desired_high_watermark()? - 1;
    h.wait_applied().await?;
    let events = h.events();
    assert_eq!(events.len(), 2, "each item written once");
    let rows = h.rows().await?;
    assert!(rows.iter().all(|r| r.1 == "synced" && r.2.is_some()), "{rows:?}");
    assert!(retry_parked(&config, &all).await?.items.is_empty(), "nothing parked any more");
    h.stop_sink().await
}
