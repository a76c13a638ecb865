//! Transactions cut by a lost replication connection: in the middle of a transaction's data records, between
//! its data records and its END, after its END but before the slot confirmed it, and between transactions.
//! Whatever the point, every commit LSN in the topics ends up with an END whose counts its distinct records
//! meet, and a replayed transaction repeats its records with the same positions and its END with the same
//! counts: the duplicates a consumer must expect (and may drop by position), never a transaction left open.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Result};
use apache_avro::Schema;
use cdc_reader::encoder::{EncodeError, IdFuture, InProcessRegistry};
use cdc_reader::transaction::TransactionMetadata;
use cdc_reader::{Config, Encoder};
use common::{config, field, spawn_with, wait_for_snapshot};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use testkit::{unique_name, TestDatabase};
use vocabulary::records::AvroRecord;
use vocabulary::topics::{key_subject, value_subject};

/// What happens once the walsender is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    /// The encoder fails (the stream ends here: what was produced before stays, unconfirmed).
    Fail,
    /// The encoder answers (the reader produces on, but cannot confirm anything any more).
    Answer,
}

/// An encoder that, when asked for the schema id of a chosen subject, terminates the reader's walsender and
/// waits until it is gone: the replication connection is lost at exactly that point of the stream.
struct CutAt {
    registry: Arc<InProcessRegistry>,
    url: String,
    slot: String,
    plan: Mutex<Option<(String, Then)>>,
}

impl CutAt {
    fn arm(&self, subject: String, then: Then) {
        *self.plan.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((subject, then));
    }

    fn armed_for(&self, subject: &str) -> Option<Then> {
        let mut plan = self.plan.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match plan.as_ref() {
            Some((armed, then)) if armed == subject => {
                let then = *then;
                *plan = None;
                Some(then)
            }
            _ => None,
        }
    }

    async fn cut(&self) -> Result<()> {
        let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        client
            .execute(
                "select pg_terminate_backend(active_pid) from pg_replication_slots where slot_name = $1",
                &[&self.slot],
            )
            .await?;
        testkit::wait_until("the walsender to be gone", Duration::from_secs(30), || {
            let client = &client;
            let slot = self.slot.clone();
            async move {
                let row = client
                    .query_one("select active_pid from pg_replication_slots where slot_name = $1", &[&slot])
                    .await?;
                Ok(row.get::<_, Option<i32>>(0).is_none().then_some(()))
            }
        })
        .await
    }
}

impl Encoder for CutAt {
    fn schema_id<'a>(&'a self, subject: &'a str, schema: &'a Schema) -> IdFuture<'a> {
        Box::pin(async move {
            if let Some(then) = self.armed_for(subject) {
                self.cut().await.map_err(|e| EncodeError::Transient(format!("cutting the connection: {e}")))?;
                if then == Then::Fail {
                    return Err(EncodeError::Transient("the connection was cut here".into()));
                }
            }
            self.registry.schema_id(subject, schema).await
        })
    }
}

/// Every record of `topic` up to its end when called: values only (tombstones skipped).
fn read_to_end(topic: &str) -> Result<Vec<Vec<u8>>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", testkit::kafka_bootstrap())
        .set("group.id", unique_name("interruptions"))
        .set("enable.auto.commit", "false")
        .create()?;
    let timeout = Duration::from_secs(10);
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let mut assignment = TopicPartitionList::new();
    let mut ends = HashMap::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())) {
        let (low, high) = consumer.fetch_watermarks(topic, partition, timeout)?;
        if high > low {
            assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
            ends.insert(partition, high);
        }
    }
    let mut values = Vec::new();
    if ends.is_empty() {
        return Ok(values);
    }
    consumer.assign(&assignment)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !ends.is_empty() {
        anyhow::ensure!(std::time::Instant::now() < deadline, "timed out reading {topic}");
        let Some(message) = consumer.poll(Duration::from_millis(200)) else { continue };
        let message = message?;
        let Some(end) = ends.get(&message.partition()).copied() else { continue };
        if message.offset() < end {
            values.extend(message.payload().map(<[u8]>::to_vec));
        }
        if message.offset() + 1 >= end {
            ends.remove(&message.partition());
        }
    }
    Ok(values)
}

/// What the topics hold for one commit LSN.
#[derive(Debug, Default)]
struct Held {
    /// Positions of the data records per topic, copies included.
    positions: BTreeMap<String, Vec<i64>>,
    ends: Vec<TransactionMetadata>,
}

impl Held {
    /// Whether an END accounts for the distinct records (what a consumer assembling transactions waits for).
    fn complete(&self) -> bool {
        self.ends.iter().any(|end| {
            end.data_collections.iter().all(|d| {
                let distinct: BTreeSet<&i64> = self.positions.get(&d.data_collection).into_iter().flatten().collect();
                distinct.len() as i64 == d.event_count
            })
        })
    }

    fn copies(&self) -> usize {
        self.positions.values().map(Vec::len).sum()
    }
}

fn topics_by_commit(registry: &InProcessRegistry, config: &Config) -> Result<BTreeMap<i64, Held>> {
    let topics = config.connections.topics.clone();
    let mut held: BTreeMap<i64, Held> = BTreeMap::new();
    for table in &config.tables {
        let topic = topics.cdc(&config.schema, table);
        for value in read_to_end(&topic)? {
            let (_, envelope) = registry.decode(&value).map_err(|e| anyhow!("{topic}: {e}"))?;
            let source = field(&envelope, "source").ok_or_else(|| anyhow!("{topic}: no source"))?;
            let (Some(apache_avro::types::Value::Long(lsn)), Some(apache_avro::types::Value::Long(position))) =
                (field(source, "commit_lsn"), field(source, "tx_position"))
            else {
                anyhow::bail!("{topic}: no commit_lsn or tx_position");
            };
            held.entry(*lsn).or_default().positions.entry(topic.clone()).or_default().push(*position);
        }
    }
    for value in read_to_end(&topics.transactions())? {
        let (_, value) = registry.decode(&value).map_err(|e| anyhow!("END: {e}"))?;
        let end = TransactionMetadata::from_avro(value)?;
        held.entry(end.commit_lsn).or_default().ends.push(end);
    }
    Ok(held)
}

async fn current_lsn(client: &tokio_postgres::Client) -> Result<u64> {
    Ok(client.query_one("select (pg_current_wal_lsn() - '0/0')::text", &[]).await?.get::<_, String>(0).parse()?)
}

/// Waits until the slot confirmed everything written so far (so nothing before is replayed after a cut).
async fn settle(client: &tokio_postgres::Client, slot: &str) -> Result<()> {
    let target = current_lsn(client).await?;
    testkit::wait_until("the slot to confirm everything written", Duration::from_secs(60), || async move {
        let row = client
            .query_opt(
                "select (confirmed_flush_lsn - '0/0')::text from pg_replication_slots where slot_name = $1",
                &[&slot],
            )
            .await?;
        let confirmed: Option<u64> = row.and_then(|r| r.get::<_, Option<String>>(0)).and_then(|t| t.parse().ok());
        Ok(confirmed.filter(|lsn| *lsn >= target).map(|_| ()))
    })
    .await
}

/// One booking-system save: the event, its resource links rewritten, and a booking, in one transaction.
const SAVE: &str = "begin; \
    update bb_event set name = 'Renamed ' || md5(random()::text) where id = 302; \
    delete from bb_event_resource where event_id = 302; \
    insert into bb_event_resource (event_id, resource_id) values (302, 4), (302, 5); \
    update bb_booking set cost = cost + 1 where id = (select min(id) from bb_booking); \
    commit;";

#[tokio::test]
async fn a_connection_lost_at_any_point_of_a_transaction_leaves_it_complete_in_the_topics() -> Result<()> {
    let db = TestDatabase::create().await?;
    let config = config(&db);
    let topics = config.connections.topics.clone();
    let registry = Arc::new(InProcessRegistry::default());
    let encoder = Arc::new(CutAt {
        registry: registry.clone(),
        url: db.url().to_owned(),
        slot: config.slot.clone(),
        plan: Mutex::new(None),
    });
    let reader = spawn_with(config.clone(), encoder.clone());
    wait_for_snapshot(&db, &config).await?;
    let client = db.connect().await?;
    let end_subject = value_subject(&topics.transactions());
    let links_subject = key_subject(&topics.cdc(&config.schema, "bb_event_resource"));

    client.batch_execute(SAVE).await?;
    settle(&client, &config.slot).await?;
    // Between the data records and the END: the records are in Kafka, the END is not.
    encoder.arm(end_subject.clone(), Then::Fail);
    client.batch_execute(SAVE).await?;
    settle(&client, &config.slot).await?;
    // After the END, before the slot confirmed the transaction: records and END both repeat.
    encoder.arm(end_subject, Then::Answer);
    client.batch_execute(SAVE).await?;
    settle(&client, &config.slot).await?;
    // Between transactions.
    encoder.cut().await?;
    client.batch_execute(SAVE).await?;
    settle(&client, &config.slot).await?;
    // In the middle of the data records: the event is in Kafka, its links are not (on the connection that
    // started after the last cut, the first link record asks for the table's schema ids).
    encoder.cut().await?;
    encoder.arm(links_subject, Then::Fail);
    client.batch_execute(SAVE).await?;
    settle(&client, &config.slot).await?;
    reader.stop().await?;

    let held = topics_by_commit(&registry, &config)?;
    let incomplete: Vec<String> =
        held.iter().filter(|(_, h)| !h.complete()).map(|(lsn, h)| format!("{lsn}: {h:?}")).collect();
    assert!(incomplete.is_empty(), "transactions no END accounts for: {incomplete:#?}");
    let streamed: Vec<&Held> = held.values().filter(|h| h.ends.iter().all(|e| e.tx_id.is_some())).collect();
    assert_eq!(streamed.len(), 5, "five saves, each under its own commit LSN");
    // Each replay repeated records with the same positions (and the END with the same counts).
    for held in &streamed {
        for positions in held.positions.values() {
            let distinct: BTreeSet<&i64> = positions.iter().collect();
            assert!(positions.len() <= 2 * distinct.len(), "at most two copies: {held:?}");
        }
        let counts: BTreeSet<Vec<(String, i64)>> = held
            .ends
            .iter()
            .map(|e| e.data_collections.iter().map(|d| (d.data_collection.clone(), d.event_count)).collect())
            .collect();
        assert_eq!(counts.len(), 1, "every END of a transaction counts the same: {held:?}");
    }
    let shape: Vec<(usize, usize)> = streamed.iter().map(|h| (h.copies(), h.ends.len())).collect();
    assert_eq!(shape, [(6, 1), (12, 1), (12, 2), (6, 1), (7, 1)], "records and ENDs per save, copies included");
    Ok(())
}
