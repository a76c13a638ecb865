//! A catching-up unit writes while it fills: its records' events are in the calendar before the unit ends, a
//! later record of an item it already wrote starts the next unit, and a unit stopped in the middle of its fill is
//! replayed without a second event for anything.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use graph_client::properties::ROOMSYNC_ITEM_KEY;
use testkit::wait_until;
use vocabulary::ReservationKind;

use crate::harness::{tag, upsert, Harness, ROOM_A};

/// The subjects of the room's events by item key; an item with more than one event fails the test.
fn subjects(h: &Harness) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for event in h.events(ROOM_A) {
        let key = tag(&event, ROOMSYNC_ITEM_KEY).unwrap_or_default().to_owned();
        let subject = event["subject"].as_str().unwrap_or_default().to_owned();
        assert!(out.insert(key.clone(), subject).is_none(), "a second event for {key}");
    }
    out
}

/// Waits until the room's events have exactly these subjects.
async fn wait_for(h: &Harness, want: &BTreeMap<String, String>, what: &str) -> Result<()> {
    wait_until(what, Duration::from_secs(30), || async { Ok((subjects(h) == *want).then_some(())) }).await
}

fn training(id: i32) -> vocabulary::records::DesiredItem {
    upsert(
        ROOM_A,
        ReservationKind::Booking,
        id,
        &format!("Training {id}"),
        10 + id.unsigned_abs() / 10,
        8 + id.unsigned_abs() % 10,
    )
}

#[tokio::test]
async fn a_catching_up_unit_writes_before_its_fill_ends_and_a_newer_record_of_a_written_item_starts_the_next(
) -> Result<()> {
    let mut h = Harness::start().await?;
    let mut want = BTreeMap::new();
    for id in 1..=104 {
        let item = training(id);
        h.send(&item).await?;
        want.insert(item.item_key.clone(), format!("Training {id}"));
    }
    // Four records fill a unit, so these 104 make it a catching-up one; its fill would end only after a minute
    // without records (or two minutes in all). While it fills, a room's lane holding five whole $batch calls (100
    // items) writes them: the first 100 items, long before that.
    let mut config = h.config();
    config.max_batch_records = 4;
    config.batch_linger = Duration::from_secs(60);
    config.catch_up_linger = Duration::from_secs(120);
    let sink = h.spawn(config);
    let mut first = BTreeMap::new();
    for id in 1..=100 {
        first.insert(training(id).item_key, format!("Training {id}"));
    }
    wait_for(&h, &first, "the catching-up unit to write its first 100 events while it fills").await?;
    assert_eq!(h.stored_offset().await?, None, "the unit is still filling: nothing may be committed yet");

    // A newer version of an item already written cannot join the unit: it ends the fill (the unit writes its
    // last four items and commits its 104 records) and starts the next unit, which with 99 more records catches up
    // in turn and writes its 100 items while it fills.
    let renamed = upsert(ROOM_A, ReservationKind::Booking, 1, "Training 1 moved", 28, 9);
    h.send(&renamed).await?;
    want.insert(renamed.item_key.clone(), "Training 1 moved".into());
    for id in 105..=203 {
        let item = training(id);
        h.send(&item).await?;
        want.insert(item.item_key.clone(), format!("Training {id}"));
    }
    wait_for(&h, &want, "the next unit to apply the newer version and the 99 new items").await?;
    assert_eq!(h.stored_offset().await?, Some(104), "the first unit committed its 104 records, the second none yet");

    // Stopped inside the second unit's fill: nothing of it is committed; a sink with the default settings
    // replays it and finds its events (their intents were recorded before the writes) instead of posting again.
    sink.stop().await?;
    assert_eq!(h.stored_offset().await?, Some(104));
    let posts_before = h.emu.requests().iter().filter(|r| r.method == "POST" && r.in_batch).count();
    let sink = h.spawn(h.config());
    h.wait_applied().await?;
    sink.stop().await?;
    assert_eq!(subjects(&h), want);
    let posts = h.emu.requests().iter().filter(|r| r.method == "POST" && r.in_batch).count();
    assert_eq!(posts, posts_before, "the replay created nothing");
    let rows = h.rows(ROOM_A).await?;
    assert_eq!(rows.len(), 203);
    for row in &rows {
        assert_eq!((row.status.as_str(), row.intent.as_str()), ("synced", "none"), "{row:?}");
    }
    let moved = rows.iter().find(|r| r.item_key == renamed.item_key).map(|r| r.hash.clone());
    assert_eq!(moved, Some(Some(renamed.content_hash.clone())));
    Ok(())
}
