//! A consumer-group member that hands out raw records and commits only what the caller says is done.

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use schema_registry::AvroCodec;
use vocabulary::records::AvroRecord;

use crate::{KafkaSettings, StreamError};

/// A record as read from Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes; `None` for a tombstone.
    pub value: Option<Vec<u8>>,
}

impl Received {
    /// The key as UTF-8 (the pipeline's own topics use string keys).
    pub fn key_str(&self) -> Option<&str> {
        self.key.as_deref().and_then(|key| std::str::from_utf8(key).ok())
    }

    /// Decodes the value as `T`; `None` for a tombstone.
    pub async fn decode<T: AvroRecord>(&self, codec: &AvroCodec) -> Result<Option<T>, StreamError> {
        match &self.value {
            None => Ok(None),
            Some(bytes) => {
                let (_, value) = codec.decode(bytes).await?;
                Ok(Some(T::from_avro(value)?))
            }
        }
    }
}

/// A consumer-group member with manual offset commits.
pub struct RecordConsumer {
    consumer: StreamConsumer,
}

impl std::fmt::Debug for RecordConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordConsumer").finish_non_exhaustive()
    }
}

impl RecordConsumer {
    /// Joins `group` and subscribes to `topics`, starting from the earliest record where the group has no
    /// committed offset.
    pub fn subscribe(settings: &KafkaSettings, group: &str, topics: &[&str]) -> Result<Self, StreamError> {
        let consumer: StreamConsumer =
            settings.consumer_config(group).create().map_err(|err| StreamError::kafka("creating a consumer", err))?;
        consumer.subscribe(topics).map_err(|err| StreamError::kafka("subscribing", err))?;
        Ok(RecordConsumer { consumer })
    }

    /// The next record.
    pub async fn recv(&self) -> Result<Received, StreamError> {
        let message = self.consumer.recv().await.map_err(|err| StreamError::kafka("consuming", err))?;
        Ok(Received {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
        })
    }

    /// Commits that every record up to and including `record` is done.
    pub fn commit(&self, record: &Received) -> Result<(), StreamError> {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&record.topic, record.partition, Offset::Offset(record.offset + 1))
            .map_err(|err| StreamError::kafka("building the commit", err))?;
        self.consumer.commit(&list, CommitMode::Async).map_err(|err| StreamError::kafka("committing offsets", err))
    }

    /// The underlying rdkafka consumer, for what this wrapper does not cover (seek, pause, assignment).
    pub fn inner(&self) -> &StreamConsumer {
        &self.consumer
    }
}

/// A partition's `(low, high)` watermarks, asked of the broker on a blocking thread (`fetch_watermarks` blocks
/// on the network, and no async executor thread may).
pub async fn watermarks<C>(
    consumer: &std::sync::Arc<StreamConsumer<C>>,
    topic: &str,
    partition: i32,
    timeout: std::time::Duration,
) -> Result<(i64, i64), StreamError>
where
    C: rdkafka::consumer::ConsumerContext + 'static,
{
    let consumer = std::sync::Arc::clone(consumer);
    let name = topic.to_owned();
    tokio::task::spawn_blocking(move || consumer.fetch_watermarks(&name, partition, timeout))
        .await
        .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()))
        .map_err(|source| StreamError::Kafka {
            context: format!("reading the watermarks of {topic}/{partition}"),
            source,
        })
}
