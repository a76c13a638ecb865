//! The Kafka side: a consumer-group member whose positions come from PostgreSQL.
//!
//! On start and after every partition assignment, the first record seen from a newly assigned partition is
//! checked against the offset stored in PostgreSQL: if Kafka would resume later than that (its committed
//! offsets were ahead, e.g. after a database restore) the consumer seeks back to PostgreSQL's offset; if it
//! resumes earlier, the records below PostgreSQL's offset are dropped as already applied (see `offsets`).

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use streams::KafkaSettings;

use crate::error::SinkError;
use crate::offsets::Partition;
use crate::work::Source;

/// Remembers partitions assigned since they were last checked against PostgreSQL.
#[derive(Default)]
pub struct AssignmentWatch {
    fresh: Arc<Mutex<HashSet<Partition>>>,
}

impl ClientContext for AssignmentWatch {}

impl ConsumerContext for AssignmentWatch {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            let mut fresh = self.fresh.lock().unwrap_or_else(PoisonError::into_inner);
            for element in list.elements() {
                fresh.insert((element.topic().to_owned(), element.partition()));
            }
        }
    }
}

/// The sink's consumer.
pub struct SinkConsumer {
    consumer: StreamConsumer<AssignmentWatch>,
    fresh: Arc<Mutex<HashSet<Partition>>>,
}

impl SinkConsumer {
    /// Joins `group` on `topics` (manual commits; where the group has no offsets, from the earliest record).
    pub fn subscribe(settings: &KafkaSettings, group: &str, topics: &[&str]) -> Result<Self, SinkError> {
        let watch = AssignmentWatch::default();
        let fresh = Arc::clone(&watch.fresh);
        let consumer: StreamConsumer<AssignmentWatch> = settings
            .client_config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .create_with_context(watch)
            .map_err(|source| SinkError::Kafka { context: "creating the consumer", source })?;
        consumer.subscribe(topics).map_err(|source| SinkError::Kafka { context: "subscribing", source })?;
        Ok(SinkConsumer { consumer, fresh })
    }

    /// The next record.
    pub async fn recv(&self) -> Result<Source, SinkError> {
        let message = self.consumer.recv().await.map_err(|source| SinkError::Kafka { context: "consuming", source })?;
        Ok(Source {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
        })
    }

    /// Takes the partitions assigned since the last call that appear in `seen`.
    pub fn take_fresh(&self, seen: &[Partition]) -> Vec<Partition> {
        let mut fresh = self.fresh.lock().unwrap_or_else(PoisonError::into_inner);
        seen.iter().filter(|p| fresh.remove(*p)).cloned().collect()
    }

    /// Moves the position of a partition to `offset`.
    pub fn seek(&self, partition: &Partition, offset: i64) -> Result<(), SinkError> {
        self.consumer
            .seek(&partition.0, partition.1, Offset::Offset(offset), Duration::from_secs(10))
            .map_err(|source| SinkError::Kafka { context: "seeking to the stored offset", source })
    }

    /// Tells Kafka how far the sink got (a hint for lag monitoring; PostgreSQL's offsets are the truth).
    pub fn commit(&self, next: &BTreeMap<Partition, i64>) {
        let mut list = TopicPartitionList::new();
        for ((topic, partition), offset) in next {
            if list.add_partition_offset(topic, *partition, Offset::Offset(*offset)).is_err() {
                return;
            }
        }
        if let Err(err) = self.consumer.commit(&list, CommitMode::Async) {
            tracing::warn!(error = %err, "kafka offset commit failed; postgres holds the offsets");
        }
    }
}
