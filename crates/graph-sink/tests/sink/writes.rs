//! Desired items become room-calendar events; unchanged items cost no Graph write; deletes remove them.

use anyhow::Result;
use graph_client::properties::{BOOKING_SYSTEM_ID, BOOKING_SYSTEM_TYPE, ROOMSYNC_CONTENT_HASH, ROOMSYNC_ITEM_KEY};
use vocabulary::ReservationKind;

use crate::harness::{delete, tag, upsert, Harness, ROOM_A, ROOM_B};

#[tokio::test]
async fn desired_upserts_create_events_with_the_right_fields_and_tags() -> Result<()> {
    let mut h = Harness::start().await?;
    let korps = upsert(ROOM_A, ReservationKind::Event, 7, "Korps", 10, 17);
    h.send(&korps).await?;
    h.send(&upsert(ROOM_A, ReservationKind::Booking, 8, "Handball", 11, 8)).await?;
    h.send(&upsert(ROOM_B, ReservationKind::Allocation, 9, "Club", 12, 9)).await?;
    let sink = h.spawn(h.config());
    h.wait_applied().await?;
    sink.stop().await?;

    let events = h.events(ROOM_A);
    assert_eq!(events.len(), 2);
    assert_eq!(h.events(ROOM_B).len(), 1);
    let e = events.iter().find(|e| e["subject"] == "Korps").expect("Korps event");
    // 17:00Z on 10 January is 18:00 in Oslo; the emulator stores it as the instant and answers in UTC.
    assert_eq!(e["start"]["dateTime"], "2030-01-10T17:00:00.0000000");
    assert_eq!(e["end"]["dateTime"], "2030-01-10T18:30:00.0000000");
    assert_eq!(e["isAllDay"], false);
    assert_eq!(e["showAs"], "busy");
    assert_eq!(e["location"]["displayName"], "Hall");
    assert_eq!(e["location"]["locationEmailAddress"], ROOM_A);
    assert_eq!(e["categories"], serde_json::json!(["Booking"]));
    assert!(e["body"]["content"].as_str().is_some_and(|b| b.contains("about Korps")));
    assert_eq!(tag(e, BOOKING_SYSTEM_TYPE), Some("event"));
    assert_eq!(tag(e, BOOKING_SYSTEM_ID), Some("7"));
    assert_eq!(tag(e, ROOMSYNC_ITEM_KEY), Some("event:7"));
    assert_eq!(tag(e, ROOMSYNC_CONTENT_HASH), Some(korps.content_hash.as_str()));
    let tx = graph_sink::first_transaction_id(ROOM_A, "event:7").to_string();
    assert_eq!(e["transactionId"].as_str(), Some(tx.as_str()));

    let rows = h.rows(ROOM_A).await?;
    assert_eq!(rows.len(), 2);
    let row = rows.iter().find(|r| r.item_key == "event:7").expect("row");
    assert_eq!(row.status, "synced");
    assert_eq!(row.event_id.as_deref(), e["id"].as_str());
    assert_eq!(row.change_key.as_deref(), e["changeKey"].as_str());
    assert_eq!(row.hash.as_deref(), Some(korps.content_hash.as_str()));
    assert_eq!(row.transaction_id, tx);
    assert_eq!(row.intent, "none");
    let posts = h.emu.requests().iter().filter(|r| r.method == "POST" && r.in_batch).count();
    assert_eq!(posts, 3, "one create per item, sent inside $batch");
    Ok(())
}

#[tokio::test]
async fn an_update_with_the_same_hash_makes_no_graph_write_and_a_new_hash_patches() -> Result<()> {
    let mut h = Harness::start().await?;
    let item = upsert(ROOM_A, ReservationKind::Event, 1, "Quiz", 10, 18);
    h.send(&item).await?;
    let sink = h.spawn(h.config());
    h.wait_applied().await?;
    h.emu.reset_requests();

    h.send(&item).await?;
    h.wait_applied().await?;
    assert!(h.emu.requests().is_empty(), "an unchanged item is not written: {:?}", h.emu.requests());

    let renamed = upsert(ROOM_A, ReservationKind::Event, 1, "Quiz night", 10, 18);
    h.send(&renamed).await?;
    h.wait_applied().await?;
    sink.stop().await?;
    let log = h.emu.requests();
    assert_eq!(log.iter().filter(|r| r.method == "PATCH").count(), 1);
    assert_eq!(log.iter().filter(|r| r.method == "POST" && r.in_batch).count(), 0);
    let events = h.events(ROOM_A);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["subject"], "Quiz night");
    assert_eq!(tag(&events[0], ROOMSYNC_CONTENT_HASH), Some(renamed.content_hash.as_str()));
    let rows = h.rows(ROOM_A).await?;
    assert_eq!(rows[0].hash.as_deref(), Some(renamed.content_hash.as_str()));
    assert_eq!(rows[0].change_key.as_deref(), events[0]["changeKey"].as_str());
    Ok(())
}

#[tokio::test]
async fn a_delete_removes_the_event_and_an_event_already_gone_counts_as_deleted() -> Result<()> {
    let mut h = Harness::start().await?;
    let first = upsert(ROOM_A, ReservationKind::Event, 1, "One", 10, 8);
    let second = upsert(ROOM_A, ReservationKind::Event, 2, "Two", 10, 10);
    h.send(&first).await?;
    h.send(&second).await?;
    let sink = h.spawn(h.config());
    h.wait_applied().await?;
    // Someone deletes the second event in Outlook first: our DELETE meets a 404.
    let gone = h.rows(ROOM_A).await?.into_iter().find(|r| r.item_key == "event:2").and_then(|r| r.event_id);
    h.graph().delete_event(ROOM_A, gone.as_deref().expect("event id")).await?;
    h.emu.reset_requests();

    h.send(&delete(&first)).await?;
    h.send(&delete(&second)).await?;
    h.wait_applied().await?;
    assert!(h.events(ROOM_A).is_empty());
    let statuses: Vec<u16> = h.emu.requests().iter().filter(|r| r.method == "DELETE").map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 204).count(), 1);
    assert_eq!(statuses.iter().filter(|s| **s == 404).count(), 1);
    let rows = h.rows(ROOM_A).await?;
    assert!(rows.iter().all(|r| r.status == "deleted" && r.event_id.is_none()), "{rows:?}");

    // The item comes back: a new event, under the next generation's transactionId.
    h.send(&first).await?;
    h.wait_applied().await?;
    sink.stop().await?;
    let events = h.events(ROOM_A);
    assert_eq!(events.len(), 1);
    let tx0 = graph_sink::first_transaction_id(ROOM_A, "event:1");
    let tx1 = graph_sink::next_transaction_id(ROOM_A, "event:1", tx0).to_string();
    assert_eq!(events[0]["transactionId"].as_str(), Some(tx1.as_str()));
    let row = h.rows(ROOM_A).await?.into_iter().find(|r| r.item_key == "event:1").expect("row");
    assert_eq!((row.status.as_str(), row.event_id.as_deref()), ("synced", events[0]["id"].as_str()));
    Ok(())
}

/// The resolver reverts Outlook edits by sending the unchanged desired record again, flagged `rewrite`: the
/// sink writes it although the mapping row says that content is in place (a moved event is moved back, a
/// deleted one is created again). The flag travels with the record, so it holds even when the revert arrives
/// while the sink's earlier write of the item is still being settled (F9 of the chaos test).
#[tokio::test]
async fn a_rewrite_restores_an_event_edited_or_deleted_in_outlook_though_its_hash_is_unchanged() -> Result<()> {
    let mut h = Harness::start().await?;
    let item = upsert(ROOM_A, ReservationKind::Booking, 4, "Choir", 10, 8);
    h.send(&item).await?;
    let sink = h.spawn(h.config());
    h.wait_applied().await?;
    let id = h.rows(ROOM_A).await?[0].event_id.clone().expect("id");
    let renamed = graph_client::Event { subject: Some("Privat fest".into()), ..Default::default() };
    h.graph().update_event(ROOM_A, &id, &renamed, None).await?;
    h.emu.reset_requests();

    // Without the flag an unchanged record is skipped; with it the event is rewritten.
    h.send(&item).await?;
    h.send(&vocabulary::records::DesiredItem { rewrite: true, ..item.clone() }).await?;
    h.wait_applied().await?;
    assert_eq!(h.emu.requests().iter().filter(|r| r.method == "PATCH").count(), 1, "{:?}", h.emu.requests());
    let events = h.events(ROOM_A);
    assert_eq!((events.len(), events[0]["subject"].as_str()), (1, Some("Choir")));
    assert_eq!(h.rows(ROOM_A).await?[0].change_key.as_deref(), events[0]["changeKey"].as_str());

    // Deleted in Outlook: the rewrite finds the event gone and creates it again (next generation).
    h.graph().delete_event(ROOM_A, &id).await?;
    h.send(&vocabulary::records::DesiredItem { rewrite: true, ..item.clone() }).await?;
    h.wait_applied().await?;
    sink.stop().await?;
    let events = h.events(ROOM_A);
    assert_eq!((events.len(), events[0]["subject"].as_str()), (1, Some("Choir")));
    assert_ne!(events[0]["id"].as_str(), Some(id.as_str()));
    let row = h.rows(ROOM_A).await?.remove(0);
    assert_eq!((row.status.as_str(), row.event_id.as_deref()), ("synced", events[0]["id"].as_str()));
    Ok(())
}

#[tokio::test]
async fn an_event_deleted_in_outlook_is_recreated_when_its_item_changes() -> Result<()> {
    let mut h = Harness::start().await?;
    h.send(&upsert(ROOM_A, ReservationKind::Booking, 3, "Choir", 10, 8)).await?;
    let sink = h.spawn(h.config());
    h.wait_applied().await?;
    let id = h.rows(ROOM_A).await?[0].event_id.clone().expect("id");
    h.graph().delete_event(ROOM_A, &id).await?;
    h.send(&upsert(ROOM_A, ReservationKind::Booking, 3, "Choir (moved)", 10, 9)).await?;
    h.wait_applied().await?;
    sink.stop().await?;
    let events = h.events(ROOM_A);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["subject"], "Choir (moved)");
    assert_ne!(events[0]["id"].as_str(), Some(id.as_str()));
    Ok(())
}

#[tokio::test]
async fn a_tombstone_deletes_the_event_of_a_known_item_and_is_ignored_for_an_unknown_one() -> Result<()> {
    let mut h = Harness::start().await?;
    h.send(&upsert(ROOM_A, ReservationKind::Allocation, 5, "Club", 10, 8)).await?;
    let sink = h.spawn(h.config());
    h.wait_applied().await?;
    h.send_tombstone(ROOM_A, "allocation:5").await?;
    h.send_tombstone(ROOM_A, "allocation:404").await?;
    h.wait_applied().await?;
    sink.stop().await?;
    assert!(h.events(ROOM_A).is_empty());
    let rows = h.rows(ROOM_A).await?;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, "deleted");
    Ok(())
}
