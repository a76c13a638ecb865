//! Throttling, injected 5xx, lost answers and poison items: nothing lost, nothing duplicated, at most 4
//! requests in flight per mailbox, and a poison item parks without holding up its room.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Result;
use graph_client::properties::ROOMSYNC_ITEM_KEY;
use graph_emulator::FaultConfig;
use testkit::consume_all;
use vocabulary::records::DeadLetter;
use vocabulary::ReservationKind;

use crate::harness::{micros, tag, upsert, Harness, ROOM_A, ROOM_B};

fn assert_one_event_per_item(h: &Harness, mailbox: &str, expected: usize) {
    let events = h.events(mailbox);
    let mut per_key: HashMap<String, usize> = HashMap::new();
    for e in &events {
        *per_key.entry(tag(e, ROOMSYNC_ITEM_KEY).unwrap_or("untagged").to_owned()).or_default() += 1;
    }
    assert_eq!(per_key.len(), expected, "{per_key:?}");
    assert!(per_key.values().all(|n| *n == 1), "duplicates: {per_key:?}");
}

#[tokio::test]
async fn storms_of_503_and_lost_answers_lose_nothing_duplicate_nothing_and_stay_within_four_in_flight() -> Result<()> {
    let storm = FaultConfig {
        random_error_rate: 0.3,
        random_error_statuses: vec![503, 504],
        random_retry_after: "0.02".into(),
        fail_after_apply: true,
        latency_ms: 5,
        seed: 11,
        ..FaultConfig::default()
    };
    let mut h = Harness::start_with(storm).await?;
    for i in 0..30 {
        let room = if i % 3 == 0 { ROOM_B } else { ROOM_A };
        h.send(&upsert(room, ReservationKind::Event, i, &format!("e{i}"), 1 + (i % 20) as u32, 8)).await?;
    }
    let sink = h.spawn(h.config());
    h.wait_applied().await?;
    sink.stop().await?;
    assert_one_event_per_item(&h, ROOM_A, 20);
    assert_one_event_per_item(&h, ROOM_B, 10);
    let log = h.emu.requests();
    assert!(log.iter().any(|r| r.status == 503) && log.iter().any(|r| r.status == 504), "the storm happened");
    assert!(log.iter().all(|r| r.status != 429), "never more than 4 in flight per mailbox (the emulator answers 429)");
    assert!(log.iter().all(|r| !r.retried_early), "every Retry-After was honoured");
    let rows = h.rows(ROOM_A).await?;
    assert!(rows.iter().all(|r| r.status == "synced" && r.event_id.is_some()), "{rows:?}");
    Ok(())
}

#[tokio::test]
async fn a_429_rate_limit_storm_is_waited_out_and_every_item_lands_once() -> Result<()> {
    let limited = FaultConfig { rate_limit_requests: 6, rate_limit_window_ms: 300, ..FaultConfig::default() };
    let mut h = Harness::start_with(limited).await?;
    for i in 0..25 {
        h.send(&upsert(ROOM_A, ReservationKind::Booking, i, &format!("b{i}"), 1 + (i % 20) as u32, 9)).await?;
    }
    let sink = h.spawn(h.config());
    h.wait_applied().await?;
    sink.stop().await?;
    assert_one_event_per_item(&h, ROOM_A, 25);
    let log = h.emu.requests();
    assert!(log.iter().any(|r| r.status == 429), "the rate window throttled");
    assert!(log.iter().all(|r| !r.retried_early), "every Retry-After was honoured");
    Ok(())
}

#[tokio::test]
async fn a_poison_item_is_parked_with_a_dead_letter_and_the_rest_of_the_room_still_syncs() -> Result<()> {
    let mut h = Harness::start().await?;
    let mut poison = upsert(ROOM_A, ReservationKind::Event, 99, "All day, but not midnight", 10, 8);
    if let Some(c) = poison.content.as_mut() {
        c.is_all_day = true;
        c.start = micros("2030-01-10T08:00:00Z");
        c.end = micros("2030-01-11T08:00:00Z");
    }
    h.send(&upsert(ROOM_A, ReservationKind::Event, 1, "before", 9, 8)).await?;
    h.send(&poison).await?;
    h.send(&upsert(ROOM_A, ReservationKind::Event, 2, "after", 11, 8)).await?;
    let sink = h.spawn(h.config());
    h.wait_applied().await?;

    assert_one_event_per_item(&h, ROOM_A, 2);
    let rows = h.rows(ROOM_A).await?;
    let parked = rows.iter().find(|r| r.item_key == "event:99").expect("row");
    assert_eq!(parked.status, "parked");
    assert!(parked.error.as_deref().is_some_and(|e| e.contains("400")), "{parked:?}");
    assert!(parked.event_id.is_none());

    let letters = consume_all(&h.topics.dead_letter(), 1, Duration::from_secs(30)).await?;
    let value = letters[0].value.as_deref().expect("value");
    let (_, avro) = h.codec.decode(value).await?;
    let letter = <DeadLetter as vocabulary::records::AvroRecord>::from_avro(avro)?;
    assert_eq!(letter.stage, "graph-sink");
    assert_eq!(letter.error_kind, "graph_definite");
    assert_eq!(letter.context.get("item_key").map(String::as_str), Some("event:99"));

    // The same poison content again is not retried; new content is.
    h.emu.reset_requests();
    h.send(&poison).await?;
    h.wait_applied().await?;
    assert!(h.emu.requests().is_empty());
    sink.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_room_that_refuses_access_parks_its_items_while_other_rooms_sync() -> Result<()> {
    let denied = FaultConfig { denied_mailboxes: vec![ROOM_B.into()], ..FaultConfig::default() };
    let mut h = Harness::start_with(denied).await?;
    h.send(&upsert(ROOM_B, ReservationKind::Event, 1, "refused", 10, 8)).await?;
    h.send(&upsert(ROOM_A, ReservationKind::Event, 2, "fine", 10, 8)).await?;
    let sink = h.spawn(h.config());
    h.wait_applied().await?;
    sink.stop().await?;
    assert_one_event_per_item(&h, ROOM_A, 1);
    let rows = h.rows(ROOM_B).await?;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, "parked");
    assert!(rows[0].error.as_deref().is_some_and(|e| e.contains("ErrorAccessDenied")), "{rows:?}");
    Ok(())
}

#[tokio::test]
async fn a_graph_outage_longer_than_the_clients_retries_holds_items_until_graph_is_back_without_parking_them(
) -> Result<()> {
    let down = FaultConfig {
        random_error_rate: 1.0,
        random_error_statuses: vec![503],
        random_retry_after: "0.01".into(),
        ..FaultConfig::default()
    };
    let mut h = Harness::start_with(down).await?;
    for i in 0..3 {
        h.send(&upsert(ROOM_A, ReservationKind::Event, i, &format!("e{i}"), 1 + i as u32, 8)).await?;
    }
    let sink = h.spawn(h.config());
    // Far more failed attempts than one request's max_attempts (8): the unit kept retrying its items.
    testkit::wait_until("a long outage", Duration::from_secs(60), || async {
        Ok((h.emu.requests().iter().filter(|r| r.status == 503).count() >= 40).then_some(()))
    })
    .await?;
    assert_eq!(h.stored_offset().await?, None, "nothing was committed while graph was down");
    h.emu.set_faults(FaultConfig::default());
    h.wait_applied().await?;
    sink.stop().await?;
    assert_one_event_per_item(&h, ROOM_A, 3);
    let rows = h.rows(ROOM_A).await?;
    assert!(rows.iter().all(|r| r.status == "synced"), "{rows:?}");
    Ok(())
}

/// A lost PostgreSQL connection (a failover, a restart, an administrator's pg_terminate_backend) is an outage,
/// not a reason to stop: the sink starts again from PostgreSQL's offsets and applies what comes next. Before,
/// any sink error ended the stage and, in `roomsync run`, the whole process with every other stage.
#[tokio::test]
async fn the_sink_survives_the_loss_of_its_database_connection_and_goes_on() -> Result<()> {
    let mut h = Harness::start().await?;
    h.send(&upsert(ROOM_A, ReservationKind::Event, 1, "before", 2, 8)).await?;
    let sink = h.spawn(h.config());
    h.wait_applied().await?;
    let killed: i64 =
        h.pg.query_one(
            "select count(pg_terminate_backend(pid)) from pg_stat_activity
             where datname = current_database() and pid <> pg_backend_pid()",
            &[],
        )
        .await?
        .get(0);
    assert!(killed >= 1, "the sink's connections were there to kill");
    h.send(&upsert(ROOM_A, ReservationKind::Event, 2, "after", 3, 8)).await?;
    h.wait_applied().await?;
    assert!(!sink.task.is_finished(), "the sink still runs");
    sink.stop().await?;
    assert_one_event_per_item(&h, ROOM_A, 2);
    Ok(())
}

/// Answers lost after Graph applied the create, and Graph no longer de-duplicating the transactionId (its window
/// is limited; here 0): the sink must look the item up by its tags before it posts again, or the room gets the
/// event twice.
#[tokio::test]
async fn a_create_whose_answer_was_lost_is_looked_up_before_it_is_posted_again() -> Result<()> {
    let lost = FaultConfig {
        random_error_rate: 0.4,
        random_error_statuses: vec![504, 503],
        random_retry_after: "0.02".into(),
        fail_after_apply: true,
        transaction_id_window_ms: 0,
        seed: 5,
        ..FaultConfig::default()
    };
    let mut h = Harness::start_with(lost).await?;
    for i in 0..20 {
        h.send(&upsert(ROOM_A, ReservationKind::Booking, i, &format!("b{i}"), 1 + (i % 20) as u32, 9)).await?;
    }
    let sink = h.spawn(h.config());
    h.wait_applied().await?;
    sink.stop().await?;
    let log = h.emu.requests();
    assert!(log.iter().any(|r| r.method == "POST" && r.status == 504), "answers were lost after applying");
    assert_one_event_per_item(&h, ROOM_A, 20);
    let rows = h.rows(ROOM_A).await?;
    assert!(rows.iter().all(|r| r.status == "synced" && r.event_id.is_some()), "{rows:?}");
    Ok(())
}
