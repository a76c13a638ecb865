//! The Kafka plumbing the stages share, so each stage only says what it reads and writes, and the one type that
//! says where everything is ([`Connections`]).
//!
//! ```text
//!  KafkaSettings --> ensure_topics (create if missing; compacted where the topic is a state)
//!               \--> RecordProducer: AvroRecord --codec--> Confluent bytes --> Kafka, await the ack
//!                                  \--> SendBatch: enqueue many in order, await all acks once
//!               \--> RecordConsumer: Kafka --> Received { topic, partition, offset, key, value } --> decode
//! ```
//!
//! Invariants: producers are idempotent (acks=all, ordered retries) and never use Kafka transactions (the
//! brokers we test against and many managed ones lack them); `RecordProducer::send` returns only after the
//! broker acknowledged the record, so a caller may advance durable progress (a delta link, an LSN) after it;
//! `SendBatch::acked` gives the same promise for every record of a batch.
//! Consumers never auto-commit: a stage commits offsets only for records whose effect is durable.

mod assignment;
mod batch;
mod connections;
mod consumer;
mod producer;
mod settings;
mod topics;

pub use assignment::{AssignmentWatch, UNASSIGNED_REPORT_AFTER};
pub use batch::{Acks, SendBatch};
pub use connections::Connections;
pub use consumer::{watermarks, Received, RecordConsumer};
pub use producer::{origin_of, RecordProducer, ORIGIN_HEADER};
pub use settings::{KafkaSettings, FETCH_WAIT_MS, PRODUCER_LINGER_MS};
pub use topics::{ensure_topics, TopicSpec};

use thiserror::Error;

/// What went wrong with Kafka or the encoding of a record.
#[derive(Debug, Error)]
pub enum StreamError {
    /// The Kafka client failed.
    #[error("kafka: {context}: {source}")]
    Kafka {
        /// What was being done.
        context: String,
        /// librdkafka's error.
        source: rdkafka::error::KafkaError,
    },
    /// The record could not be encoded or decoded.
    #[error(transparent)]
    Codec(#[from] schema_registry::CodecError),
    /// The record does not fit its schema.
    #[error(transparent)]
    Record(#[from] vocabulary::records::RecordError),
    /// A single-instance member had no partition of its group for too long and leaves to join again.
    #[error("consumer group {group}: no partition for {idle_seconds} s; leaving to join again (kafka rejoin_unassigned_after)")]
    Unassigned {
        /// The consumer group.
        group: String,
        /// How long the member went without partitions.
        idle_seconds: u64,
    },
}

impl StreamError {
    pub(crate) fn kafka(context: impl Into<String>, source: rdkafka::error::KafkaError) -> Self {
        StreamError::Kafka { context: context.into(), source }
    }

    /// Whether retrying later may succeed: broker and registry outages yes, a record that does not fit no.
    pub fn is_transient(&self) -> bool {
        match self {
            StreamError::Kafka { .. } | StreamError::Unassigned { .. } => true,
            StreamError::Codec(err) => err.is_transient(),
            StreamError::Record(_) => false,
        }
    }
}
