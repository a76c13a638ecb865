//! Backfill through the signal table: the chosen rows are copied again as op `r` inside the signal's own
//! transaction, ordered with the stream, and the outcome is written back into the signal row.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use apache_avro::types::Value;
use cdc_reader::encoder::InProcessRegistry;
use common::{config, read, spawn, wait_for_snapshot};
use testkit::{wait_until, TestDatabase};
use tokio_postgres::Client;
use vocabulary::topics::Topics;

async fn count(client: &Client, sql: &str) -> Result<usize> {
    Ok(usize::try_from(client.query_one(sql, &[]).await?.get::<_, i64>(0))?)
}

/// Waits for the reader to record the outcome of signal `id`: (rows, error).
async fn outcome(client: &Client, id: i64) -> Result<(Option<i64>, Option<String>)> {
    wait_until("the backfill outcome in the signal row", Duration::from_secs(60), || async move {
        let row = client
            .query_one("select done_at is not null, rows, error from roomsync_signals where id = $1", &[&id])
            .await?;
        Ok(row.get::<_, bool>(0).then(|| (row.get(1), row.get(2))))
    })
    .await
}

/// A database with roomsync's tables and a reader past its initial snapshot.
struct Started {
    _db: TestDatabase,
    client: Client,
    topics: Topics,
    registry: Arc<InProcessRegistry>,
    reader: common::Running,
}

async fn started() -> Result<Started> {
    let db = TestDatabase::create().await?;
    let mut client = db.connect().await?;
    migrations::apply(&mut client).await?;
    let config = config(&db);
    let topics = config.connections.topics.clone();
    let registry = Arc::new(InProcessRegistry::default());
    let reader = spawn(config.clone(), registry.clone());
    wait_for_snapshot(&db, &config).await?;
    Ok(Started { _db: db, client, topics, registry, reader })
}

fn long(value: Option<Value>) -> Option<i64> {
    match value? {
        Value::Long(v) => Some(v),
        Value::Int(v) => Some(i64::from(v)),
        _ => None,
    }
}

#[tokio::test]
async fn a_backfill_of_one_resource_copies_its_rows_in_the_signal_transaction_and_records_the_outcome() -> Result<()> {
    let Started { _db, client, topics, registry, reader } = started().await?;
    let events = count(&client, "select count(*) from bb_event").await?;
    let links = count(&client, "select count(*) from bb_event_resource").await?;
    let wanted_events: BTreeSet<i64> = client
        .query("select distinct event_id::bigint from bb_event_resource where resource_id = 2", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let wanted_links = count(&client, "select count(*) from bb_event_resource where resource_id = 2").await?;
    assert!(!wanted_events.is_empty() && wanted_events.len() < events, "resource 2 holds some events, not all");

    let id: i64 = client
        .query_one(
            "insert into roomsync_signals (kind, tables, resources) \
             values ('backfill', '{bb_event,bb_event_resource}', '{2}') returning id",
            &[],
        )
        .await?
        .get(0);
    let (rows, error) = outcome(&client, id).await?;
    assert_eq!((rows, error), (Some((wanted_events.len() + wanted_links) as i64), None));

    // A change after the backfill: streamed after it, with a higher position.
    client.execute("update bb_event set name = 'After the backfill' where id = 301", &[]).await?;
    let copied = read(&registry, &topics.cdc("public", "bb_event"), events + wanted_events.len() + 1).await?;
    let backfilled = &copied[events..events + wanted_events.len()];
    let ids: BTreeSet<i64> = backfilled.iter().filter_map(|r| long(r.after("id"))).collect();
    assert_eq!(ids, wanted_events);
    assert!(backfilled.iter().all(|r| r.op() == "r"), "backfilled rows are reads");
    let positions: Vec<(i64, i64)> = backfilled.iter().filter_map(|r| r.position()).collect();
    let signal_lsn = positions.first().map(|p| p.0).expect("positions");
    assert!(positions.iter().all(|p| p.0 == signal_lsn), "all in the signal's transaction: {positions:?}");
    let after = copied.last().and_then(|r| r.position()).expect("the later change");
    assert!(after.0 > signal_lsn, "the later change is ordered after the backfill");

    let link_records = read(&registry, &topics.cdc("public", "bb_event_resource"), links + wanted_links).await?;
    assert!(link_records[links..].iter().all(|r| r.op() == "r" && long(r.after("resource_id")) == Some(2)));
    let booking_topic = topics.cdc("public", "bb_booking");
    let bookings = count(&client, "select count(*) from bb_booking").await?;
    assert_eq!(read(&registry, &booking_topic, bookings).await?.len(), bookings, "tables not asked for: snapshot only");
    reader.stop().await
}

#[tokio::test]
async fn a_backfill_of_an_uncaptured_table_is_refused_in_the_signal_row_and_streaming_goes_on() -> Result<()> {
    let Started { _db, client, topics, registry, reader } = started().await?;
    let events = count(&client, "select count(*) from bb_event").await?;
    let id: i64 = client
        .query_one(
            "insert into roomsync_signals (kind, tables) values ('backfill', '{bb_secret_table}') returning id",
            &[],
        )
        .await?
        .get(0);
    let (rows, error) = outcome(&client, id).await?;
    assert_eq!(rows, None);
    let error = error.unwrap_or_default();
    assert!(error.contains("not captured, cannot backfill: bb_secret_table") && error.contains("bb_event"), "{error}");

    client.execute("update bb_event set name = 'Still streaming' where id = 301", &[]).await?;
    let records = read(&registry, &topics.cdc("public", "bb_event"), events + 1).await?;
    assert_eq!(records.last().map(|r| r.op()), Some("u".to_owned()));
    reader.stop().await
}
