//! Progress and failure paths end to end: a crash in the middle of a stream, an idle database, a dropped slot
//! and a row that cannot be encoded.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use cdc_reader::encoder::InProcessRegistry;
use cdc_reader::CdcError;
use common::{config, insert_event, read, spawn, wait_for_snapshot, Decoded};
use testkit::TestDatabase;
use vocabulary::records::{AvroRecord, DeadLetter};

async fn confirmed_flush(client: &tokio_postgres::Client, slot: &str) -> Result<Option<u64>> {
    let row = client
        .query_opt(
            "select (confirmed_flush_lsn - '0/0')::text from pg_replication_slots where slot_name = $1",
            &[&slot],
        )
        .await?;
    Ok(row.and_then(|r| r.get::<_, Option<String>>(0)).and_then(|t| t.parse().ok()))
}

async fn active_pid(client: &tokio_postgres::Client, slot: &str) -> Result<Option<i32>> {
    let row = client.query_one("select active_pid from pg_replication_slots where slot_name = $1", &[&slot]).await?;
    Ok(row.get(0))
}

#[tokio::test]
async fn a_crash_in_the_middle_of_a_stream_loses_nothing_and_keeps_commit_order_per_key() -> Result<()> {
    let db = TestDatabase::create().await?;
    let config = config(&db);
    let topic = config.connections.topics.clone().cdc("public", "bb_event");
    let registry = Arc::new(InProcessRegistry::default());
    let reader = spawn(config.clone(), registry.clone());
    wait_for_snapshot(&db, &config).await?;
    let client = db.connect().await?;
    let writes = 150;
    let mut ids = Vec::new();
    let mut reader = Some(reader);
    for n in 0..writes {
        let id = insert_event(&client, &format!("event {n}")).await?;
        client.execute("update bb_event set id_string = cast(id as varchar) where id = $1", &[&id]).await?;
        ids.push(id);
        if n == writes / 3 {
            // Crash while changes keep coming, then start again with the same slot.
            if let Some(running) = reader.take() {
                running.abort().await;
            }
        }
        if n == writes / 2 {
            reader = Some(spawn(config.clone(), registry.clone()));
        }
    }
    let expected = 2 * writes;
    let mut seen: BTreeMap<(i64, i64), Decoded> = BTreeMap::new();
    let mut wanted = 5 + expected;
    for _ in 0..5 {
        let records = read(&registry, &topic, wanted).await?;
        seen.clear();
        let mut per_key: HashMap<i32, Vec<(i64, i64)>> = HashMap::new();
        for record in records.iter().filter(|r| r.op() == "c" || r.op() == "u") {
            let position = record.position().expect("position");
            let key = record.key_int("id").expect("key");
            // Consumers drop what they already applied: a replayed record has a position not above the last.
            let last = per_key.entry(key).or_default();
            if last.last().is_some_and(|p| *p >= position) {
                assert!(last.contains(&position), "key {key}: {position:?} arrived out of commit order");
                continue;
            }
            last.push(position);
            seen.insert(position, record.clone());
        }
        if seen.len() >= expected {
            for id in &ids {
                let ops: Vec<String> = seen.values().filter(|r| r.key_int("id") == Some(*id)).map(|r| r.op()).collect();
                assert_eq!(ops, ["c", "u"], "event {id}");
            }
            if let Some(running) = reader.take() {
                running.stop().await?;
            }
            return Ok(());
        }
        wanted += expected - seen.len();
    }
    anyhow::bail!("only {} of {expected} committed changes arrived", seen.len())
}

#[tokio::test]
async fn the_slot_advances_while_the_captured_tables_are_idle() -> Result<()> {
    let db = TestDatabase::create().await?;
    let config = config(&db);
    let registry = Arc::new(InProcessRegistry::default());
    let reader = spawn(config.clone(), registry);
    wait_for_snapshot(&db, &config).await?;
    let client = db.connect().await?;
    // WAL from a table that is not captured.
    for n in 0..20 {
        client.execute("update bb_activity set name = name where id = (select min(id) from bb_activity)", &[]).await?;
        let _ = n;
    }
    let target: u64 =
        client.query_one("select (pg_current_wal_lsn() - '0/0')::text", &[]).await?.get::<_, String>(0).parse()?;
    let slot = config.slot.clone();
    testkit::wait_until("the idle slot to advance", Duration::from_secs(30), || {
        let client = &client;
        let slot = slot.clone();
        async move { Ok(confirmed_flush(client, &slot).await?.filter(|lsn| *lsn >= target)) }
    })
    .await?;
    reader.stop().await
}

#[tokio::test]
async fn a_dropped_slot_stops_the_reader_with_the_recovery_steps() -> Result<()> {
    let db = TestDatabase::create().await?;
    let config = config(&db);
    let registry = Arc::new(InProcessRegistry::default());
    let reader = spawn(config.clone(), registry.clone());
    wait_for_snapshot(&db, &config).await?;
    reader.stop().await?;
    let client = db.connect().await?;
    let slot = config.slot.clone();
    testkit::wait_until("the slot to be released", Duration::from_secs(30), || {
        let client = &client;
        let slot = slot.clone();
        async move {
            let dropped = client
                .query_opt("select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1 and not active", &[&slot])
                .await?;
            Ok(dropped.map(|_| ()))
        }
    })
    .await?;
    let result = spawn(config.clone(), registry).ended(Duration::from_secs(60)).await?;
    let Err(error @ CdcError::SlotLost { .. }) = result else { panic!("expected SlotLost, got {result:?}") };
    let message = error.to_string();
    assert!(message.contains("pg_drop_replication_slot") && message.contains("comment on publication"), "{message}");
    Ok(())
}

#[tokio::test]
async fn a_row_that_cannot_be_encoded_goes_to_the_dead_letter_topic_and_the_stream_goes_on() -> Result<()> {
    let db = TestDatabase::create().await?;
    let config = config(&db);
    let topics = config.connections.topics.clone();
    let registry = Arc::new(InProcessRegistry::default());
    let reader = spawn(config.clone(), registry.clone());
    wait_for_snapshot(&db, &config).await?;
    let client = db.connect().await?;
    let bad = insert_event(&client, "bad").await?;
    client.execute("update bb_event set from_ = 'infinity' where id = $1", &[&bad]).await?;
    let good = insert_event(&client, "good").await?;
    let events = read(&registry, &topics.cdc("public", "bb_event"), 7).await?;
    assert_eq!(events[5].key_int("id"), Some(bad));
    assert_eq!(events[6].key_int("id"), Some(good), "the stream went on after the bad row");
    let dead = testkit::consume_all(&topics.dead_letter(), 1, Duration::from_secs(30)).await?;
    let (_, value) = registry.decode(dead[0].value.as_deref().unwrap_or_default())?;
    let letter = DeadLetter::from_avro(value)?;
    assert_eq!(letter.stage, "cdc-reader");
    assert_eq!(letter.context.get("table").map(String::as_str), Some("bb_event"));
    assert_eq!(letter.context.get("op").map(String::as_str), Some("u"));
    assert_eq!(letter.source_topic, Some(topics.cdc("public", "bb_event")));
    assert!(letter.reason.contains("infinity"), "{}", letter.reason);
    reader.stop().await
}

#[tokio::test]
async fn a_lost_replication_connection_is_retried_and_the_stream_continues() -> Result<()> {
    let db = TestDatabase::create().await?;
    let config = config(&db);
    let topic = config.connections.topics.clone().cdc("public", "bb_event");
    let registry = Arc::new(InProcessRegistry::default());
    let reader = spawn(config.clone(), registry.clone());
    wait_for_snapshot(&db, &config).await?;
    let client = db.connect().await?;
    let before = insert_event(&client, "before").await?;
    read(&registry, &topic, 6).await?;
    let slot = config.slot.clone();
    let target: u64 =
        client.query_one("select (pg_current_wal_lsn() - '0/0')::text", &[]).await?.get::<_, String>(0).parse()?;
    testkit::wait_until("the first change to be confirmed", Duration::from_secs(30), || {
        let client = &client;
        let slot = slot.clone();
        async move { Ok(confirmed_flush(client, &slot).await?.filter(|lsn| *lsn >= target)) }
    })
    .await?;
    client
        .execute("select pg_terminate_backend(active_pid) from pg_replication_slots where slot_name = $1", &[&slot])
        .await?;
    let after = insert_event(&client, "after").await?;
    let records = read(&registry, &topic, 7).await?;
    let ids: Vec<Option<i32>> = records[5..].iter().map(|r| r.key_int("id")).collect();
    assert_eq!(ids, [Some(before), Some(after)]);
    reader.stop().await
}

#[tokio::test]
async fn an_idle_stream_outlives_the_wal_sender_timeout_on_one_connection() -> Result<()> {
    let db = TestDatabase::create().await?;
    let config = config(&db);
    let topic = config.connections.topics.clone().cdc("public", "bb_event");
    let registry = Arc::new(InProcessRegistry::default());
    let reader = spawn(config.clone(), registry.clone());
    wait_for_snapshot(&db, &config).await?;
    let client = db.connect().await?;
    let timeout_ms: i32 =
        client.query_one("select setting::int from pg_settings where name = 'wal_sender_timeout'", &[]).await?.get(0);
    let slot = config.slot.clone();
    let pid = testkit::wait_until("the stream to start", Duration::from_secs(30), || {
        let client = &client;
        let slot = slot.clone();
        async move { active_pid(client, &slot).await }
    })
    .await?;
    // The scenario itself is time passing with nothing to replicate: longer than the server waits for a reply.
    tokio::time::sleep(Duration::from_millis(u64::try_from(timeout_ms)?.min(30_000) + 2_000)).await;
    assert_eq!(active_pid(&client, &slot).await?, Some(pid), "the server never dropped the connection");
    let id = insert_event(&client, "after a quiet while").await?;
    let records = read(&registry, &topic, 6).await?;
    assert_eq!(records[5].key_int("id"), Some(id));
    reader.stop().await
}

#[tokio::test]
async fn a_row_too_large_for_kafka_goes_to_the_dead_letter_topic_and_the_stream_goes_on() -> Result<()> {
    let db = TestDatabase::create().await?;
    let mut config = config(&db);
    config.max_message_bytes = 100_000;
    let topics = config.connections.topics.clone();
    let registry = Arc::new(InProcessRegistry::default());
    let reader = spawn(config.clone(), registry.clone());
    wait_for_snapshot(&db, &config).await?;
    let client = db.connect().await?;
    client
        .batch_execute(
            "update bb_event set description = (select string_agg(md5(random()::text), '') \
             from generate_series(1, 6250)) where id = 301",
        )
        .await?;
    let good = insert_event(&client, "small").await?;
    let events = read(&registry, &topics.cdc("public", "bb_event"), 6).await?;
    assert_eq!(events[5].key_int("id"), Some(good), "the stream went on after the oversized row");
    let dead = testkit::consume_all(&topics.dead_letter(), 1, Duration::from_secs(30)).await?;
    let (_, value) = registry.decode(dead[0].value.as_deref().unwrap_or_default())?;
    let letter = DeadLetter::from_avro(value)?;
    assert!(letter.reason.contains("exceeds kafka.max_message_bytes"), "{}", letter.reason);
    reader.stop().await
}
