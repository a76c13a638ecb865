//! Transaction metadata: one END record per committed transaction (and one for the snapshot) on
//! `<prefix>.cdc.transactions`, counting the transaction's records per topic.

mod common;

use std::sync::Arc;

use anyhow::{anyhow, Result};
use cdc_reader::encoder::InProcessRegistry;
use cdc_reader::transaction::{TransactionMetadata, TransactionStatus};
use common::{config, read, spawn, wait_for_snapshot};
use testkit::TestDatabase;
use vocabulary::records::AvroRecord;

#[tokio::test]
async fn every_transaction_ends_with_its_record_count_per_topic() -> Result<()> {
    let db = TestDatabase::create().await?;
    let config = config(&db);
    let topics = config.connections.topics.clone();
    let registry = Arc::new(InProcessRegistry::default());
    let reader = spawn(config.clone(), registry.clone());
    wait_for_snapshot(&db, &config).await?;
    let client = db.connect().await?;
    client
        .batch_execute(
            "begin; update bb_event set name = 'Renamed' where id = 302; \
             delete from bb_event_resource where event_id = 302; \
             insert into bb_event_resource (event_id, resource_id) values (302, 4), (302, 5); commit;",
        )
        .await?;

    let records = testkit::consume_all(&topics.transactions(), 2, std::time::Duration::from_secs(60)).await?;
    let decode = |bytes: Option<Vec<u8>>| -> Result<TransactionMetadata> {
        let (_, value) = registry.decode(&bytes.ok_or_else(|| anyhow!("no value"))?).map_err(|e| anyhow!("{e}"))?;
        Ok(TransactionMetadata::from_avro(value)?)
    };
    let snapshot = decode(records[0].value.clone())?;
    let rows: i64 = client
        .query_one(
            "select (select count(*) from bb_event) + (select count(*) from bb_event_resource) + \
             (select count(*) from bb_booking) + (select count(*) from bb_booking_resource) + \
             (select count(*) from bb_allocation) + (select count(*) from bb_allocation_resource) + \
             (select count(*) from bb_resource) + (select count(*) from bb_building) + \
             (select count(*) from bb_organization) + (select count(*) from bb_group) + \
             (select count(*) from bb_season)",
            &[],
        )
        .await?
        .get(0);
    assert_eq!((snapshot.status, snapshot.tx_id, snapshot.event_count), (TransactionStatus::End, None, rows));

    let save = decode(records[1].value.clone())?;
    let count =
        |topic: String| save.data_collections.iter().find(|d| d.data_collection == topic).map(|d| d.event_count);
    assert_eq!(count(topics.cdc("public", "bb_event")), Some(1));
    assert_eq!(count(topics.cdc("public", "bb_event_resource")), Some(4), "two deletes and two inserts, no tombstones");
    assert_eq!(save.event_count, 5);
    // The END carries the commit LSN of the transaction's data records.
    let links = read(&registry, &topics.cdc("public", "bb_event_resource"), 7 + 6).await?;
    let last = links.last().and_then(|r| r.position()).ok_or_else(|| anyhow!("no position"))?;
    assert_eq!(last.0, save.commit_lsn);
    reader.stop().await
}

/// The resolver releases a transaction once its END and records are in, in commit order, and takes a record of a
/// transaction it has not seen when a later one was released for late (resolver `transaction.rs`). That holds
/// only if END markers are read in commit order: on a partitioned transactions topic they were spread over the
/// partitions by key, so a later END could be read first (seen in the pipeline benchmark on 6 partitions as
/// records "applied late").
#[tokio::test]
async fn end_markers_keep_commit_order_on_a_partitioned_transactions_topic() -> Result<()> {
    let db = TestDatabase::create().await?;
    let mut config = config(&db);
    config.connections.kafka.partitions = 6;
    let topics = config.connections.topics.clone();
    let registry = Arc::new(InProcessRegistry::default());
    let reader = spawn(config.clone(), registry.clone());
    wait_for_snapshot(&db, &config).await?;
    let client = db.connect().await?;
    let saves = 30;
    for i in 0..saves {
        client.batch_execute(&format!("update bb_event set name = 'Renamed {i}' where id = 302")).await?;
    }

    let records = testkit::consume_all(&topics.transactions(), 1 + saves, std::time::Duration::from_secs(60)).await?;
    let partitions: std::collections::BTreeSet<i32> = records.iter().map(|r| r.partition).collect();
    assert_eq!(partitions, [vocabulary::topics::TRANSACTIONS_PARTITION].into(), "END markers on one partition");
    let mut lsns = Vec::new();
    for record in &records {
        let bytes = record.value.clone().ok_or_else(|| anyhow!("no value"))?;
        let (_, value) = registry.decode(&bytes).map_err(|e| anyhow!("{e}"))?;
        lsns.push(TransactionMetadata::from_avro(value)?.commit_lsn);
    }
    assert!(lsns.windows(2).all(|w| w[0] < w[1]), "END markers in commit order: {lsns:?}");
    reader.stop().await
}
