//! Kafka helpers for tests: where the broker is, and reading a topic back.

use std::time::Duration;

use anyhow::{Context, Result};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::ClientConfig;

use crate::{unique_name, Stack};

/// Bootstrap servers of the test broker.
pub fn kafka_bootstrap() -> String {
    Stack::from_env().kafka
}

/// A record as read back from a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The record key.
    pub key: Option<Vec<u8>>,
    /// The record value; `None` for a tombstone.
    pub value: Option<Vec<u8>>,
    /// The partition it was read from.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
}

impl Record {
    fn from_message(message: &BorrowedMessage<'_>) -> Self {
        Record {
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            partition: message.partition(),
            offset: message.offset(),
        }
    }
}

/// A consumer of its own group that reads from the beginning and commits nothing.
fn reader() -> Result<StreamConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", kafka_bootstrap())
        .set("group.id", unique_name("test_reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .context("creating a test consumer")
}

/// Reads `topic` from the beginning until at least `expected` records have arrived, or fails after `timeout`.
pub async fn consume_all(topic: &str, expected: usize, timeout: Duration) -> Result<Vec<Record>> {
    let consumer = reader()?;
    consumer.subscribe(&[topic]).context("subscribing")?;
    let mut records = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while records.len() < expected {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(message)) => records.push(Record::from_message(&message)),
            Ok(Err(err)) => return Err(err).context(format!("reading {topic}")),
            Err(_) => {
                anyhow::bail!("timed out after {timeout:?} reading {topic}: {} of {expected} records", records.len())
            }
        }
    }
    Ok(records)
}

/// A group's view of a partition: its committed offset (`None`: nothing committed) and the high watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupPosition {
    /// The group's committed offset.
    pub committed: Option<i64>,
    /// The partition's high watermark.
    pub high: i64,
}

/// What `group` has committed on every partition of `topics` (OffsetFetch, as Kafka tooling asks for lag).
pub fn committed_offsets(
    group: &str,
    topics: &[String],
) -> Result<std::collections::BTreeMap<(String, i32), GroupPosition>> {
    use rdkafka::consumer::BaseConsumer;
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka_bootstrap())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?;
    let timeout = Duration::from_secs(10);
    let mut list = TopicPartitionList::new();
    let mut highs = std::collections::BTreeMap::new();
    for topic in topics {
        let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
        for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
            list.add_partition(topic, partition.id());
            highs.insert((topic.clone(), partition.id()), consumer.fetch_watermarks(topic, partition.id(), timeout)?.1);
        }
    }
    let committed = consumer.committed_offsets(list, timeout)?;
    let mut out = std::collections::BTreeMap::new();
    for element in committed.elements() {
        let key = (element.topic().to_owned(), element.partition());
        let committed = match element.offset() {
            Offset::Offset(offset) => Some(offset),
            _ => None,
        };
        let high = highs.get(&key).copied().context("a partition that was asked for")?;
        out.insert(key, GroupPosition { committed, high });
    }
    Ok(out)
}

/// Reads every record `topic` holds now: from the beginning to the high watermark of each partition as it was
/// when the call began.
pub async fn read_to_end(topic: &str, timeout: Duration) -> Result<Vec<Record>> {
    let consumer = reader()?;
    let metadata = consumer.fetch_metadata(Some(topic), timeout).context("reading the topic's metadata")?;
    let mut highs = std::collections::BTreeMap::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        highs.insert(partition.id(), consumer.fetch_watermarks(topic, partition.id(), timeout)?);
    }
    let mut left: std::collections::BTreeSet<i32> =
        highs.iter().filter(|(_, (low, high))| high > low).map(|(partition, _)| *partition).collect();
    consumer.subscribe(&[topic]).context("subscribing")?;
    let mut records = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while !left.is_empty() {
        let wait = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(wait, consumer.recv()).await {
            Ok(Ok(message)) => {
                let record = Record::from_message(&message);
                let high = highs.get(&record.partition).map_or(0, |(_, high)| *high);
                if record.offset + 1 >= high {
                    left.remove(&record.partition);
                }
                if record.offset < high {
                    records.push(record);
                }
            }
            Ok(Err(err)) => return Err(err).context(format!("reading {topic}")),
            Err(_) => {
                anyhow::bail!("timed out after {timeout:?} reading {topic} to its end: {} records", records.len())
            }
        }
    }
    Ok(records)
}
