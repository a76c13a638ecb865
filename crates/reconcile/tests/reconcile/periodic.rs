//! The periodic run compares every active room of `bb_resource_outlook_item` and repairs what it finds.

use std::time::Duration;

use anyhow::{Context, Result};
use testkit::wait_until;
use tokio::sync::oneshot;
use vocabulary::ReservationKind;

use crate::harness::{event_of, upsert, Harness, ROOM};

#[tokio::test]
async fn the_periodic_run_repairs_a_deleted_event_in_an_active_room_and_stops_on_shutdown() -> Result<()> {
    let mut h = Harness::start().await?;
    h.pg.execute(
        "insert into bb_resource_outlook_item (resource_id, outlook_item_id, active) values (1, $1, 1)",
        &[&ROOM],
    )
    .await?;
    h.send(&upsert(ReservationKind::Event, 1, "Quiz", 5, 10)).await?;
    h.start_sink();
    h.wait_applied().await?;
    let first = event_of(&h.events(), "event:1").and_then(|e| e["id"].as_str()).map(str::to_owned);
    let first = first.context("the sink created the event")?;
    h.person().delete_event(ROOM, &first).await?;

    let (stop, stopped) = oneshot::channel::<()>();
    let periodic = tokio::spawn(reconcile::run_periodically(h.config(), Duration::from_millis(200), async move {
        let _ = stopped.await;
    }));
    let again = wait_until("the periodic run to bring the event back", Duration::from_secs(60), || async {
        let events = h.events();
        Ok(event_of(&events, "event:1").and_then(|e| e["id"].as_str()).filter(|id| *id != first).map(str::to_owned))
    })
    .await?;
    assert_ne!(again, first);
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(30), periodic).await.context("periodic run stops on shutdown")??;
    assert_eq!(h.events().len(), 1, "exactly one event for the item, however many runs happened");
    h.stop_sink().await?;
    Ok(())
}

#[tokio::test]
async fn a_run_compares_the_rooms_the_one_active_room_rule_gives() -> Result<()> {
    let h = Harness::start().await?;
    // Hall A's address typed with spaces around it, shared by two resources, and a room switched off.
    h.pg.execute(
        "insert into bb_resource_outlook_item (resource_id, outlook_item_id, active) values
             (1, $1, 1), (2, $2, 1), (3, 'room-off@example.org', 0)",
        &[&format!(" {ROOM} "), &ROOM],
    )
    .await?;
    let options = reconcile::Options { dry_run: true, rooms: Vec::new() };
    let report = reconcile::reconcile(&h.config(), &options).await?;
    let rows = h.pg.query(vocabulary::rooms::MAPPING_ROWS_QUERY, &[]).await?;
    let rule = vocabulary::rooms::ActiveRooms::from_rows(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))));
    assert_eq!(report.rooms, rule.mailboxes().map(str::to_owned).collect::<Vec<_>>());
    assert_eq!(report.rooms, vec![ROOM.to_owned()]);
    assert!(report.failed_rooms.is_empty(), "{:?}", report.failed_rooms);
    Ok(())
}
