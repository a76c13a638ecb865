//! The Kafka side: an idempotent producer whose delivery reports flow back as acknowledgements, the creation
//! of the reader's topics, and the dead-letter record format.
//!
//! Invariant: every record handed to [`Producer::send`] comes back exactly once as an [`Ack`] (success or
//! failure) on the acknowledgement channel; only those acks move the flush LSN. Idempotence is always on
//! (acks=all, ordered retries), Kafka transactions are never used.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};
use tokio::sync::mpsc;
use tracing::warn;

use crate::error::CdcError;
use streams::KafkaSettings;

/// A delivery report: which tracked transaction the record belonged to, and whether Kafka stored it.
#[derive(Debug)]
pub struct Ack {
    /// Sequence number of the transaction in the progress tracker.
    pub tx: u64,
    /// `Err` with librdkafka's reason when the record could not be delivered.
    pub result: Result<(), String>,
}

/// Forwards delivery reports from librdkafka's thread to the reader.
pub struct AckContext {
    acks: mpsc::UnboundedSender<Ack>,
}

impl ClientContext for AckContext {}

impl ProducerContext for AckContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, tx: usize) {
        let result = match result {
            Ok(_) => Ok(()),
            Err((error, _)) => Err(error.to_string()),
        };
        // The receiver is gone only when the reader is stopping; the record will be replayed from the slot.
        let _ = self.acks.send(Ack { tx: tx as u64, result });
    }
}

/// The reader's producer.
pub struct Producer {
    inner: ThreadedProducer<AckContext>,
    admin: AdminClient<DefaultClientContext>,
    partitions: i32,
    replication_factor: i32,
}

/// Defaults the operator may override through `kafka.properties` (besides the linger, `streams::PRODUCER_LINGER_MS`).
const TUNABLE_DEFAULTS: &[(&str, &str)] = &[
    ("queue.buffering.max.messages", "1000000"),
    // Java-compatible key hashing, so other clients find a key's partition.
    ("partitioner", "murmur2_random"),
];

fn client_config(kafka: &KafkaSettings, max_message_bytes: usize) -> ClientConfig {
    let mut client = kafka.producer_config(TUNABLE_DEFAULTS);
    // Room for the record framing on top of the largest record the pipeline lets through.
    client.set("message.max.bytes", (max_message_bytes + 64 * 1024).to_string());
    client
}

/// The reader's producer settings: the tunable defaults, the operator's Kafka properties, then what is not
/// overridable (public so the benchmark's broker baseline produces with exactly these settings).
pub fn producer_config(kafka: &KafkaSettings, max_message_bytes: usize) -> ClientConfig {
    let mut client = client_config(kafka, max_message_bytes);
    // Not overridable: ordered, non-duplicating retries and durable acks are what the flush LSN relies on.
    client.set("enable.idempotence", "true").set("acks", "all");
    client
}

/// librdkafka refuses to create a client only for its settings (an unknown key, a bad value, a codec this build
/// lacks): retrying cannot help, so the reader stops and says which setting.
fn creation_error(context: &str, error: KafkaError) -> CdcError {
    match error {
        KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_) => {
            CdcError::Config(format!("kafka settings ({context}): {error}"))
        }
        other => CdcError::kafka(context, other),
    }
}

impl Producer {
    /// Creates the producer; acknowledgements go to `acks`.
    pub fn new(
        kafka: &KafkaSettings,
        max_message_bytes: usize,
        acks: mpsc::UnboundedSender<Ack>,
    ) -> Result<Self, CdcError> {
        let inner = producer_config(kafka, max_message_bytes)
            .create_with_context(AckContext { acks })
            .map_err(|e| creation_error("creating the producer", e))?;
        let admin = client_config(kafka, max_message_bytes)
            .create()
            .map_err(|e| creation_error("creating the admin client", e))?;
        Ok(Producer { inner, admin, partitions: kafka.partitions, replication_factor: kafka.replication_factor })
    }

    /// Creates the topics that do not exist yet.
    pub async fn ensure_topics(&self, topics: &[String]) -> Result<(), CdcError> {
        let new: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|t| NewTopic::new(t, self.partitions, TopicReplication::Fixed(self.replication_factor)))
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let results =
            self.admin.create_topics(&new, &options).await.map_err(|e| CdcError::kafka("creating topics", e))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(CdcError::kafka(format!("creating topic {topic}"), KafkaError::AdminOp(code)))
                }
            }
        }
        Ok(())
    }

    /// Hands one record to librdkafka, waiting while its queue is full (backpressure from the broker). It goes
    /// to `partition` when given, else to the partition of its key.
    pub async fn send(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        tx: u64,
    ) -> Result<(), CdcError> {
        let opaque = usize::try_from(tx).map_err(|_| CdcError::Config("transaction sequence overflow".into()))?;
        let mut record: BaseRecord<'_, [u8], [u8], usize> = BaseRecord::with_opaque_to(topic, opaque);
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(payload) = payload {
            record = record.payload(payload);
        }
        loop {
            match self.inner.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((error, _)) => return Err(CdcError::kafka(format!("producing to {topic}"), error)),
            }
        }
    }

    /// Waits up to `timeout` for queued records to be delivered (on a blocking thread: flush blocks).
    pub async fn flush(self: std::sync::Arc<Self>, timeout: Duration) {
        let result = tokio::task::spawn_blocking(move || self.inner.flush(timeout)).await;
        if !matches!(result, Ok(Ok(()))) {
            warn!("kafka flush at shutdown did not complete; unacknowledged records will be replayed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::mocking::MockCluster;

    fn config(bootstrap: String) -> KafkaSettings {
        KafkaSettings::new(bootstrap)
    }

    #[test]
    fn the_operator_can_tune_batching_but_not_turn_off_idempotence_or_durable_acks() {
        let mut kafka = config("127.0.0.1:9".into());
        kafka.properties.insert("linger.ms".into(), "7".into());
        kafka.properties.insert("enable.idempotence".into(), "false".into());
        kafka.properties.insert("acks".into(), "1".into());
        let client = producer_config(&kafka, 1_000_000);
        assert_eq!(client.get("linger.ms"), Some("7"));
        assert_eq!(client.get("enable.idempotence"), Some("true"));
        assert_eq!(client.get("acks"), Some("all"));
        let defaults = producer_config(&config("127.0.0.1:9".into()), 1_000_000);
        for (key, value) in TUNABLE_DEFAULTS {
            assert_eq!(defaults.get(key), Some(*value), "{key}");
        }
    }

    #[test]
    fn settings_librdkafka_refuses_stop_the_reader_instead_of_being_retried() {
        for (key, value) in [("no.such.setting", "1"), ("linger.ms", "soon")] {
            let mut kafka = config("127.0.0.1:9".into());
            kafka.properties.insert(key.into(), value.into());
            let (acks, _) = mpsc::unbounded_channel();
            match Producer::new(&kafka, 1_000_000, acks) {
                Err(error) => assert_eq!(error.disposition(), crate::error::Disposition::Stop, "{key}: {error}"),
                Ok(_) => panic!("{key}={value} was accepted"),
            }
        }
    }

    #[tokio::test]
    async fn records_sent_while_the_broker_is_down_are_acknowledged_once_it_is_back() {
        let cluster = MockCluster::new(1).expect("mock cluster");
        cluster.create_topic("cdc", 1, 1).expect("topic");
        let (acks_tx, mut acks) = mpsc::unbounded_channel();
        let producer = Producer::new(&config(cluster.bootstrap_servers()), 1_000_000, acks_tx).expect("producer");
        producer.send("cdc", None, Some(b"k"), Some(b"v1"), 1).await.expect("queued");
        let first = acks.recv().await.expect("ack");
        assert_eq!((first.tx, first.result), (1, Ok(())));

        cluster.broker_down(1).expect("down");
        producer.send("cdc", None, Some(b"k"), Some(b"v2"), 2).await.expect("queued while down");
        // Not acknowledged while the broker is away (so the flush LSN cannot move past it).
        assert!(tokio::time::timeout(Duration::from_millis(500), acks.recv()).await.is_err());
        cluster.broker_up(1).expect("up");
        let second = tokio::time::timeout(Duration::from_secs(30), acks.recv()).await.expect("acked").expect("ack");
        assert_eq!((second.tx, second.result), (2, Ok(())));
    }
}
