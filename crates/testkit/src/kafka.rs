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

/// Reads `topic` from the beginning until at least `expected` records have arrived, or fails after `timeout`.
pub async fn consume_all(topic: &str, expected: usize, timeout: Duration) -> Result<Vec<Record>> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka_bootstrap())
        .set("group.id", unique_name("test_reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .context("creating a test consumer")?;
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
