//! From a change to records in Kafka: encode key and envelope, produce them (plus a tombstone after a delete),
//! park rows that cannot be encoded in the dead-letter topic, and apply Kafka's acknowledgements to the
//! progress tracker.
//!
//! Invariants:
//! - every record handed to Kafka is counted in the tracker under its transaction before the transaction is
//!   sealed, so the flush LSN cannot pass it;
//! - a row that can never be encoded costs one dead-letter record, never the stream; a registry outage is a
//!   transient error (nothing skipped);
//! - at most `max_in_flight` records wait for acknowledgement: memory stays bounded whatever the table size.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use apache_avro::types::Value;
use pgwire_replication::Lsn;
use tokio::sync::mpsc;
use tracing::warn;
use vocabulary::records::{AvroRecord, DeadLetter};
use vocabulary::topics::{key_subject, value_subject, Topics, TRANSACTIONS_PARTITION};

use crate::encoder::{EncodeError, Encoder};
use crate::envelope::{RowError, Source};
use crate::error::CdcError;
use crate::metrics;
use crate::produce::{Ack, Producer};
use crate::progress::{Progress, TxHandle};
use crate::relation::Table;
use crate::transaction::TransactionMetadata;

/// One change ready to be encoded.
pub struct Change<'a> {
    /// Its table.
    pub table: &'a Table,
    /// `c`, `u`, `d`, `r` or `t`.
    pub op: &'static str,
    /// Key record and envelope, or why they could not be built.
    pub built: Result<(Option<Value>, Value), RowError>,
    /// Where it comes from.
    pub source: &'a Source,
    /// Follow it with a tombstone for its key (deletes).
    pub tombstone: bool,
}

/// Encoding, producing and acknowledgement bookkeeping shared by the snapshot and the stream.
pub struct Pipeline {
    producer: Arc<Producer>,
    encoder: Arc<dyn Encoder>,
    acks: mpsc::UnboundedReceiver<Ack>,
    /// The flush-LSN tracker.
    pub progress: Progress,
    topics: Topics,
    max_in_flight: usize,
    max_message_bytes: usize,
    created: HashSet<String>,
    /// Records per topic of each open transaction (for its END record).
    counts: HashMap<u64, BTreeMap<String, i64>>,
    transaction_metadata: bool,
}

impl Pipeline {
    /// A pipeline over a new producer; `confirmed` is the slot's position.
    pub fn new(config: &crate::config::Config, encoder: Arc<dyn Encoder>, confirmed: u64) -> Result<Self, CdcError> {
        let (ack_tx, acks) = mpsc::unbounded_channel();
        let producer = Arc::new(Producer::new(&config.connections.kafka, config.max_message_bytes, ack_tx)?);
        Ok(Pipeline {
            producer,
            encoder,
            acks,
            progress: Progress::new(confirmed),
            topics: config.connections.topics.clone(),
            max_in_flight: config.max_in_flight,
            max_message_bytes: config.max_message_bytes,
            created: HashSet::new(),
            counts: HashMap::new(),
            transaction_metadata: config.transaction_metadata,
        })
    }

    /// Topic names in use.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// Makes sure `topics` exist (once per topic per connection).
    pub async fn ensure_topics(&mut self, topics: Vec<String>) -> Result<(), CdcError> {
        let missing: Vec<String> = topics.into_iter().filter(|t| !self.created.contains(t)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        self.producer.ensure_topics(&missing).await?;
        self.created.extend(missing);
        Ok(())
    }

    /// Encodes and produces one change under `tx`, waiting for acknowledgements when too many are in flight.
    pub async fn emit(&mut self, tx: TxHandle, mut change: Change<'_>) -> Result<(), CdcError> {
        let table = change.table;
        let built = std::mem::replace(&mut change.built, Err(RowError::Schema(String::new())));
        let (key, value) = match built {
            Ok(built) => built,
            Err(error) => return self.dead_letter(tx, &change, &error.to_string()).await,
        };
        let (key_id, value_id) = match self.schema_ids(table).await {
            Ok(ids) => ids,
            Err(EncodeError::Definite(reason)) => return self.dead_letter(tx, &change, &reason).await,
            Err(EncodeError::Transient(reason)) => return Err(CdcError::Encoder(reason)),
        };
        let encoded = key
            .map(|key| self.encoder.encode_with_id(key_id, &table.schemas.key, key))
            .transpose()
            .and_then(|key| Ok((key, self.encoder.encode_with_id(value_id, &table.schemas.envelope, value)?)));
        let (key_bytes, value_bytes) = match encoded {
            Ok(bytes) => bytes,
            Err(EncodeError::Definite(reason)) => return self.dead_letter(tx, &change, &reason).await,
            Err(EncodeError::Transient(reason)) => return Err(CdcError::Encoder(reason)),
        };
        let size = value_bytes.len() + key_bytes.as_ref().map_or(0, Vec::len);
        if size > self.max_message_bytes {
            // librdkafka would refuse it on every attempt: retrying would stall the stream for ever.
            let reason = format!("record of {size} bytes exceeds kafka.max_message_bytes ({})", self.max_message_bytes);
            return self.dead_letter(tx, &change, &reason).await;
        }
        self.send(&table.topic, None, key_bytes.as_deref(), Some(&value_bytes), tx).await?;
        if change.tombstone && key_bytes.is_some() {
            self.send(&table.topic, None, key_bytes.as_deref(), None, tx).await?;
        }
        ::metrics::counter!(metrics::RECORDS_PRODUCED, "table" => table.shape.table.clone(), "op" => change.op)
            .increment(1);
        self.count(tx, &table.topic);
        Ok(())
    }

    fn count(&mut self, tx: TxHandle, topic: &str) {
        if self.transaction_metadata {
            *self.counts.entry(tx.0).or_default().entry(topic.to_owned()).or_insert(0) += 1;
        }
    }

    /// Produces the END record of transaction `tx` (after all its data records, before it is sealed, so the
    /// flush LSN cannot pass it); nothing when transaction metadata is off.
    pub async fn end_transaction(
        &mut self,
        tx: TxHandle,
        tx_id: Option<i64>,
        commit_lsn: u64,
        commit_ts_ms: i64,
    ) -> Result<(), CdcError> {
        let counts = self.counts.remove(&tx.0).unwrap_or_default();
        // A streamed transaction that touched no captured table needs no END (the snapshot always gets one).
        if !self.transaction_metadata || (counts.is_empty() && tx_id.is_some()) {
            return Ok(());
        }
        let record =
            TransactionMetadata::end(tx_id, i64::try_from(commit_lsn).unwrap_or(i64::MAX), commit_ts_ms, counts);
        let topic = self.topics.transactions();
        let value = record.to_avro().map_err(|e| CdcError::Encoder(e.to_string()))?;
        let schema = TransactionMetadata::schema();
        let body = self
            .encoder
            .schema_id(&value_subject(&topic), schema)
            .await
            .and_then(|id| self.encoder.encode_with_id(id, schema, value))
            .map_err(|e| CdcError::Encoder(format!("transaction metadata: {e}")))?;
        // Every END on one partition, so they are read in commit order (the resolver relies on it).
        self.send(&topic, Some(TRANSACTIONS_PARTITION), Some(record.id.as_bytes()), Some(&body), tx).await
    }

    /// The table's key and envelope schema ids, registered once per table shape.
    async fn schema_ids(&self, table: &Table) -> Result<(u32, u32), EncodeError> {
        if let Some(ids) = table.ids.get() {
            return Ok(*ids);
        }
        let key = self.encoder.schema_id(&key_subject(&table.topic), &table.schemas.key).await?;
        let value = self.encoder.schema_id(&value_subject(&table.topic), &table.schemas.envelope).await?;
        Ok(*table.ids.get_or_init(|| (key, value)))
    }

    async fn dead_letter(&mut self, tx: TxHandle, change: &Change<'_>, reason: &str) -> Result<(), CdcError> {
        let table = &change.table.shape.table;
        warn!(table = %table, op = change.op, reason, "row cannot be encoded: sent to the dead-letter topic");
        let topic = self.topics.dead_letter();
        self.ensure_topics(vec![topic.clone()]).await?;
        let source = change.source;
        let context = [
            ("schema", change.table.shape.schema.clone()),
            ("table", table.clone()),
            ("op", change.op.to_owned()),
            ("commit_lsn", Lsn(source.commit_lsn).to_string()),
            ("tx_position", source.tx_position.to_string()),
            ("lsn", source.lsn.map(|l| Lsn(l).to_string()).unwrap_or_default()),
        ];
        let letter = DeadLetter {
            stage: "cdc-reader".into(),
            error_kind: "encode".into(),
            reason: reason.to_owned(),
            source_topic: Some(change.table.topic.clone()),
            source_partition: None,
            source_offset: None,
            source_key: None,
            source_value: None,
            context: context.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            occurred_at: chrono::Utc::now().timestamp_millis(),
        };
        let value = letter.to_avro().map_err(|e| CdcError::Encoder(e.to_string()))?;
        let schema = DeadLetter::schema();
        let subject = value_subject(&topic);
        let id = self.encoder.schema_id(&subject, schema).await;
        let body = id
            .and_then(|id| self.encoder.encode_with_id(id, schema, value))
            .map_err(|e| CdcError::Encoder(format!("dead letter: {e}")))?;
        self.send(&topic, None, None, Some(&body), tx).await?;
        self.count(tx, &topic);
        ::metrics::counter!(metrics::DEAD_LETTERS, "table" => table.clone()).increment(1);
        Ok(())
    }

    /// Sends one record of transaction `tx` (to the partition of its key unless `partition` says otherwise) and
    /// waits for acknowledgements while too many are in flight.
    async fn send(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        tx: TxHandle,
    ) -> Result<(), CdcError> {
        self.progress.add(tx);
        self.producer.send(topic, partition, key, value, tx.0).await?;
        while self.progress.in_flight() >= self.max_in_flight {
            self.next_ack().await?;
        }
        Ok(())
    }

    /// Waits for the next acknowledgement and applies it.
    pub async fn next_ack(&mut self) -> Result<(), CdcError> {
        match self.acks.recv().await {
            Some(ack) => self.apply(ack),
            None => Err(CdcError::Delivery("the producer's acknowledgement channel closed".into())),
        }
    }

    /// Applies every acknowledgement already received, without waiting.
    pub fn drain_acks(&mut self) -> Result<(), CdcError> {
        while let Ok(ack) = self.acks.try_recv() {
            self.apply(ack)?;
        }
        Ok(())
    }

    /// Receives the next acknowledgement (cancellation safe, for `select!`).
    pub async fn recv_ack(&mut self) -> Option<Ack> {
        self.acks.recv().await
    }

    /// Applies one acknowledgement; a failed delivery ends this connection (the slot replays it).
    pub fn apply(&mut self, ack: Ack) -> Result<(), CdcError> {
        ack.result.map_err(CdcError::Delivery)?;
        self.progress.ack(TxHandle(ack.tx));
        Ok(())
    }

    /// Whether another change may be read.
    pub fn has_capacity(&self) -> bool {
        self.progress.in_flight() < self.max_in_flight
    }

    /// Waits until every record handed to Kafka is acknowledged.
    pub async fn settle(&mut self) -> Result<(), CdcError> {
        while self.progress.in_flight() > 0 {
            self.next_ack().await?;
        }
        Ok(())
    }

    /// Flushes the producer at shutdown.
    pub async fn close(self, timeout: std::time::Duration) {
        self.producer.flush(timeout).await;
    }
}
