//! The two measurements that separate the reader's own work from the broker's:
//! - [`decode_only`]: the reader's per-change work (pgoutput decode, envelope, Avro wire format) on the same WAL,
//!   records discarded instead of produced;
//! - [`broker_only`]: a plain idempotent rdkafka producer (the reader's producer settings, acks=all) sending as
//!   many records of the reader's size as fast as the broker acknowledges them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cdc_reader::changes;
use cdc_reader::encoder::{Encoder, InProcessRegistry};
use cdc_reader::envelope::{Source, TableSchemas};
use cdc_reader::pgoutput::{self, Message};
use cdc_reader::relation::{RelationCache, Table};
use cdc_reader::{setup, Config};
use pgwire_replication::{Lsn, ReplicationClient, ReplicationEvent};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

/// What the decode-only pass produced.
pub struct Decoded {
    pub seconds: f64,
    pub records: usize,
    pub sample_key: Vec<u8>,
    pub sample_value: Vec<u8>,
}

/// Reads the slot of `config` until `changes` changes are encoded and their transaction committed (or the server
/// reports a position at or past `end` outside a transaction), building and encoding every change exactly as
/// the stream does (inserts and updates: the benchmark's workload; schema ids once per table), without Kafka.
pub async fn decode_only(config: &Config, changes: usize, end: u64) -> Result<Decoded> {
    let sql = setup::connect(config).await?;
    let shapes = setup::captured_tables(&sql, config).await?;
    let primary_keys: HashMap<(String, String), Vec<String>> = shapes
        .iter()
        .map(|s| ((s.schema.clone(), s.table.clone()), s.key_columns().map(|(_, c)| c.name.clone()).collect()))
        .collect();
    let encoder = InProcessRegistry::default();
    let started = Instant::now();
    let mut client = ReplicationClient::connect(setup::replication_config(config)?).await?;
    client.wait_started().await?;
    let mut relations = RelationCache::default();
    let mut open: Option<(u64, i64, i64)> = None;
    let mut out = Decoded { seconds: 0.0, records: 0, sample_key: Vec::new(), sample_value: Vec::new() };
    loop {
        let Some(event) = client.recv().await? else { bail!("replication stream ended early") };
        match event {
            ReplicationEvent::Begin { final_lsn, xid, commit_time_micros } => {
                open = Some((final_lsn.0, i64::from(xid), commit_time_micros / 1000));
            }
            ReplicationEvent::Commit { end_lsn, .. } => {
                open = None;
                if end_lsn.0 >= end || out.records >= changes {
                    break;
                }
            }
            ReplicationEvent::KeepAlive { wal_end, .. } if open.is_none() && wal_end.0 >= end => break,
            ReplicationEvent::XLogData { wal_start, data, .. } => {
                let message = pgoutput::decode(&data)?;
                let Some((commit_lsn, xid, ts_ms)) = open else { continue };
                let mut source = Source {
                    name: config.connections.topics.prefix().to_owned(),
                    db: "bench".into(),
                    snapshot: "false",
                    ts_ms,
                    tx_id: Some(xid),
                    lsn: Some(wal_start.0),
                    commit_lsn,
                    tx_position: 0,
                };
                let (table, built) = match &message {
                    Message::Relation(relation) => {
                        relations.update(relation, &primary_keys, |shape| {
                            TableSchemas::generate(&shape).map(|schemas| Table::new(shape, schemas, "t".into()))
                        })?;
                        continue;
                    }
                    Message::Insert { relation, .. } | Message::Update { relation, .. } => {
                        let table = relations.get(*relation).context("unknown relation")?;
                        let Some(change) = changes::of_message(&table.shape, &message).into_iter().next() else {
                            continue;
                        };
                        source.tx_position = 1;
                        let built = change.record(&table.shape, &source, chrono::Utc::now().timestamp_millis());
                        (table, built)
                    }
                    _ => continue,
                };
                let (key, value) = built?;
                let (key_id, value_id) = match table.ids.get() {
                    Some(ids) => *ids,
                    None => {
                        let key_id = encoder.schema_id("k", &table.schemas.key).await?;
                        let value_id = encoder.schema_id("v", &table.schemas.envelope).await?;
                        *table.ids.get_or_init(|| (key_id, value_id))
                    }
                };
                let key = key.map(|key| encoder.encode_with_id(key_id, &table.schemas.key, key)).transpose()?;
                let value = encoder.encode_with_id(value_id, &table.schemas.envelope, value)?;
                out.records += 1;
                if out.sample_value.is_empty() {
                    out.sample_key = key.unwrap_or_default();
                    out.sample_value = value;
                }
            }
            _ => {}
        }
    }
    out.seconds = started.elapsed().as_secs_f64();
    client.update_applied_lsn(Lsn(end));
    client.stop();
    Ok(out)
}

struct Counting {
    acked: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
}

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let counter = if result.is_ok() { &self.acked } else { &self.failed };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Seconds for a plain producer with the reader's settings to get `records` records acknowledged (records of the
/// sample's size, the key made unique per record, one partition as the reader's topics have).
pub async fn broker_only(config: &Config, records: usize, key: &[u8], value: &[u8]) -> Result<f64> {
    let topic = testkit::unique_name("bench_broker");
    let (ack_tx, _acks) = tokio::sync::mpsc::unbounded_channel();
    cdc_reader::produce::Producer::new(&config.connections.kafka, config.max_message_bytes, ack_tx)?
        .ensure_topics(std::slice::from_ref(&topic))
        .await?;
    let acked = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let producer: ThreadedProducer<Counting> =
        cdc_reader::produce::producer_config(&config.connections.kafka, config.max_message_bytes)
            .create_with_context(Counting { acked: Arc::clone(&acked), failed: Arc::clone(&failed) })?;
    let mut key = key.to_vec();
    key.resize(key.len().max(8), 0);
    let mut value = value.to_vec();
    value.resize(value.len().max(8), 0);
    let started = Instant::now();
    for n in 0..records {
        let stamp = (n as u64).to_be_bytes();
        let key_len = key.len();
        key[key_len - 8..].copy_from_slice(&stamp);
        let value_len = value.len();
        value[value_len - 8..].copy_from_slice(&stamp);
        let mut record: BaseRecord<'_, [u8], [u8], ()> = BaseRecord::to(&topic).key(&key[..]).payload(&value[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((error, _)) => return Err(error.into()),
            }
        }
    }
    while acked.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < records {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    producer.flush(Duration::from_secs(5))?;
    if failed.load(Ordering::Relaxed) > 0 {
        bail!("{} records were not delivered", failed.load(Ordering::Relaxed));
    }
    Ok(seconds)
}

/// `{min, median, max}` of the samples.
pub fn spread(mut samples: Vec<f64>) -> serde_json::Value {
    samples.sort_by(f64::total_cmp);
    let median = match samples.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => samples[n / 2],
        n => (samples[n / 2 - 1] + samples[n / 2]) / 2.0,
    };
    serde_json::json!({
        "min": samples.first().copied(),
        "median": median,
        "max": samples.last().copied(),
        "runs": samples,
    })
}
