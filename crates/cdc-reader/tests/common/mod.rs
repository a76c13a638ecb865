//! Shared helpers of the end-to-end tests: a reader running in the background, and decoding what it produced.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};
use apache_avro::types::Value;
use cdc_reader::encoder::InProcessRegistry;
use cdc_reader::{CdcError, Config};
use testkit::{unique_name, TestDatabase};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A reader configuration with unique slot, publication and topic prefix.
pub fn config(db: &TestDatabase) -> Config {
    let mut config = Config::new(db.connections(&unique_name("cdc")));
    config.slot = unique_name("slot");
    config.publication = unique_name("pub");
    config.status_interval = Duration::from_millis(100);
    config.retry_min = Duration::from_millis(50);
    config.retry_max = Duration::from_millis(500);
    config
}

/// A reader running on its own task.
pub struct Running {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), CdcError>>,
}

/// Starts the reader.
pub fn spawn(config: Config, registry: Arc<InProcessRegistry>) -> Running {
    spawn_with(config, registry)
}

/// Starts the reader with another encoder (one that injects faults).
pub fn spawn_with(config: Config, encoder: Arc<dyn cdc_reader::Encoder>) -> Running {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(cdc_reader::run_with_encoder(config, encoder, async move {
        let _ = stopped.await;
    }));
    Running { stop: Some(stop), task }
}

impl Running {
    /// Asks the reader to stop and waits for it.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), self.task).await??.map_err(Into::into)
    }

    /// Kills the reader without a graceful stop (a crash).
    pub async fn abort(self) {
        self.task.abort();
        let _ = self.task.await;
    }

    /// Waits for the reader to end on its own (an error) within `timeout`.
    pub async fn ended(self, timeout: Duration) -> Result<Result<(), CdcError>> {
        Ok(tokio::time::timeout(timeout, self.task).await??)
    }
}

/// Waits until the reader finished its initial snapshot (the marker is set on the publication).
pub async fn wait_for_snapshot(db: &TestDatabase, config: &Config) -> Result<()> {
    let client = db.connect().await?;
    testkit::wait_until("the initial snapshot", Duration::from_secs(60), || async {
        Ok(cdc_reader::setup::snapshot_complete(&client, config).await?.then_some(()))
    })
    .await
}

/// A decoded record of a CDC topic.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// Key record (None: no key).
    pub key: Option<Value>,
    /// Envelope (None: tombstone).
    pub envelope: Option<Value>,
}

impl Decoded {
    /// `op` of the envelope ("tombstone" for a tombstone).
    pub fn op(&self) -> String {
        match self.envelope.as_ref().and_then(|e| field(e, "op")) {
            Some(Value::String(op)) => op.clone(),
            _ => "tombstone".into(),
        }
    }

    /// A column of the `after` image.
    pub fn after(&self, column: &str) -> Option<Value> {
        field(field(self.envelope.as_ref()?, "after")?, column).cloned()
    }

    /// A field of `source`.
    pub fn source(&self, name: &str) -> Option<Value> {
        field(field(self.envelope.as_ref()?, "source")?, name).cloned()
    }

    /// (commit_lsn, tx_position).
    pub fn position(&self) -> Option<(i64, i64)> {
        match (self.source("commit_lsn")?, self.source("tx_position")?) {
            (Value::Long(lsn), Value::Long(pos)) => Some((lsn, pos)),
            _ => None,
        }
    }

    /// The `missing_columns` list.
    pub fn missing(&self) -> Vec<String> {
        match self.envelope.as_ref().and_then(|e| field(e, "missing_columns")) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// An int field of the key.
    pub fn key_int(&self, name: &str) -> Option<i32> {
        match field(self.key.as_ref()?, name)? {
            Value::Int(v) => Some(*v),
            _ => None,
        }
    }
}

/// A record field, looking through `["null", T]` unions; `None` for a missing field or a null.
pub fn field<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    let value = match value {
        Value::Union(_, inner) => inner.as_ref(),
        other => other,
    };
    let Value::Record(fields) = value else {
        return None;
    };
    let found = fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)?;
    match found {
        Value::Union(_, inner) if matches!(inner.as_ref(), Value::Null) => None,
        Value::Union(_, inner) => Some(inner.as_ref()),
        Value::Null => None,
        other => Some(other),
    }
}

/// Reads `expected` records of `topic` and decodes them.
pub async fn read(registry: &InProcessRegistry, topic: &str, expected: usize) -> Result<Vec<Decoded>> {
    let records = testkit::consume_all(topic, expected, Duration::from_secs(60)).await?;
    records
        .into_iter()
        .map(|record| {
            let key =
                record.key.map(|k| registry.decode(&k).map(|(_, v)| v)).transpose().map_err(|e| anyhow!("key: {e}"))?;
            let envelope = record
                .value
                .map(|v| registry.decode(&v).map(|(_, v)| v))
                .transpose()
                .map_err(|e| anyhow!("value: {e}"))?;
            Ok(Decoded { key, envelope })
        })
        .collect()
}

/// Inserts a bb_event and returns its id.
pub async fn insert_event(client: &tokio_postgres::Client, name: &str) -> Result<i32> {
    let row = client
        .query_one(
            "insert into bb_event (activity_id, name, from_, to_, building_name, contact_name, contact_email, \
             contact_phone, secret, customer_ssn) \
             values ((select min(id) from bb_activity), $1, '2026-05-01 10:00', '2026-05-01 12:00', 'Hall', 'c', \
             'c@example.org', '1', 'top-secret-token', '01017012345') returning id",
            &[&name],
        )
        .await?;
    Ok(row.get(0))
}
