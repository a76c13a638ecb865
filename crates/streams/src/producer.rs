//! A producer of pipeline records: encodes with the registry codec, sends idempotently, and returns only when
//! the broker has acknowledged the record.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use schema_registry::AvroCodec;
use vocabulary::records::AvroRecord;
use vocabulary::topics::value_subject;

use crate::{KafkaSettings, SendBatch, StreamError};

/// The header naming the process run that wrote a record, on the records of producers made
/// [`RecordProducer::with_origin`]: how a resolver instance tells its own output, read back, from another's.
pub const ORIGIN_HEADER: &str = "roomsync-origin";

/// The [`ORIGIN_HEADER`] of a consumed record, if it has one.
pub fn origin_of(message: &impl rdkafka::message::Message) -> Option<&str> {
    let headers = message.headers()?;
    headers.iter().find(|h| h.key == ORIGIN_HEADER).and_then(|h| h.value).and_then(|v| std::str::from_utf8(v).ok())
}

/// Sends Avro records to Kafka; cheap to clone.
#[derive(Clone)]
pub struct RecordProducer {
    producer: FutureProducer,
    codec: AvroCodec,
    origin: Option<Arc<str>>,
}

impl std::fmt::Debug for RecordProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordProducer").finish_non_exhaustive()
    }
}

impl RecordProducer {
    /// An idempotent producer (acks=all, Java-compatible murmur2 partitioning of keys).
    pub fn new(settings: &KafkaSettings, codec: AvroCodec) -> Result<Self, StreamError> {
        let producer = settings
            .producer_config(&[])
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .create()
            .map_err(|err| StreamError::kafka("creating a producer", err))?;
        Ok(RecordProducer { producer, codec, origin: None })
    }

    /// Marks every record this producer sends with `origin` in the [`ORIGIN_HEADER`].
    pub fn with_origin(mut self, origin: impl Into<Arc<str>>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// The headers every record carries (the origin), if any.
    pub(crate) fn headers(&self) -> Option<OwnedHeaders> {
        let origin = self.origin.as_deref()?;
        Some(OwnedHeaders::new().insert(Header { key: ORIGIN_HEADER, value: Some(origin) }))
    }

    /// The codec records are encoded with.
    pub fn codec(&self) -> &AvroCodec {
        &self.codec
    }

    /// The rdkafka producer underneath.
    pub(crate) fn inner(&self) -> &FutureProducer {
        &self.producer
    }

    /// A batch: records enqueued in call order without waiting, acknowledged together by
    /// [`SendBatch::acked`]. Use it where several records are sent before progress moves.
    pub fn batch(&self) -> SendBatch<'_> {
        SendBatch::new(self)
    }

    /// Sends `record` under `key` (a tombstone when `None`) and waits for the broker's acknowledgement.
    /// `partition` overrides the key's partition (e.g. [`vocabulary::keys::room_partition`]).
    /// Returns the partition and offset the record was stored at.
    pub async fn send<T: AvroRecord>(
        &self,
        topic: &str,
        key: &str,
        partition: Option<i32>,
        record: Option<&T>,
    ) -> Result<(i32, i64), StreamError> {
        let payload = match record {
            Some(record) => {
                Some(self.codec.encode_static(&value_subject(topic), T::schema(), record.to_avro()?).await?)
            }
            None => None,
        };
        self.send_bytes(topic, key, partition, payload.as_deref()).await
    }

    /// Sends already-encoded bytes (or a tombstone) and waits for the acknowledgement.
    pub async fn send_bytes(
        &self,
        topic: &str,
        key: &str,
        partition: Option<i32>,
        payload: Option<&[u8]>,
    ) -> Result<(i32, i64), StreamError> {
        let mut record: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).key(key);
        if let Some(payload) = payload {
            record = record.payload(payload);
        }
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        if let Some(headers) = self.headers() {
            record = record.headers(headers);
        }
        let delivery = self
            .producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(err, _)| StreamError::kafka(format!("producing to {topic}"), err))?;
        Ok((delivery.partition, delivery.offset))
    }
}
