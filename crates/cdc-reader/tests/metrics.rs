//! The reader's metrics, read through a recorder installed for this test binary: lag in bytes and seconds, the
//! confirmed position and the produced-record count.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Result;
use cdc_reader::encoder::InProcessRegistry;
use cdc_reader::metrics as names;
use common::{config, insert_event, read, spawn, wait_for_snapshot};
use metrics::{Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use testkit::TestDatabase;

/// Last value per metric name (labels summed for counters, last write wins for gauges).
#[derive(Default)]
struct Values(Mutex<HashMap<String, f64>>);

struct Handle {
    name: String,
    values: Arc<Values>,
}

impl Handle {
    fn update(&self, f: impl FnOnce(f64) -> f64) {
        let mut values = self.values.0.lock().unwrap_or_else(PoisonError::into_inner);
        let value = values.entry(self.name.clone()).or_insert(0.0);
        *value = f(*value);
    }
}

impl CounterFn for Handle {
    fn increment(&self, value: u64) {
        self.update(|v| v + value as f64);
    }
    fn absolute(&self, value: u64) {
        self.update(|_| value as f64);
    }
}

impl GaugeFn for Handle {
    fn increment(&self, value: f64) {
        self.update(|v| v + value);
    }
    fn decrement(&self, value: f64) {
        self.update(|v| v - value);
    }
    fn set(&self, value: f64) {
        self.update(|_| value);
    }
}

struct TestRecorder(Arc<Values>);

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(Arc::new(Handle { name: key.name().to_owned(), values: self.0.clone() }))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(Arc::new(Handle { name: key.name().to_owned(), values: self.0.clone() }))
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[tokio::test]
async fn lag_in_bytes_and_seconds_and_the_confirmed_position_are_metrics() -> Result<()> {
    let values = Arc::new(Values::default());
    metrics::set_global_recorder(TestRecorder(values.clone()))?;
    let db = TestDatabase::create().await?;
    let config = config(&db);
    let registry = Arc::new(InProcessRegistry::default());
    let reader = spawn(config.clone(), registry.clone());
    wait_for_snapshot(&db, &config).await?;
    let client = db.connect().await?;
    insert_event(&client, "measured").await?;
    read(&registry, &config.connections.topics.clone().cdc("public", "bb_event"), 6).await?;
    let get = |name: &str| values.0.lock().unwrap_or_else(PoisonError::into_inner).get(name).copied();
    testkit::wait_until("lag and position metrics", Duration::from_secs(30), || {
        let found = (get(names::LAG_BYTES), get(names::LAG_SECONDS), get(names::CONFIRMED_LSN));
        async move {
            Ok(match found {
                (Some(bytes), Some(seconds), Some(lsn)) if lsn > 0.0 => Some((bytes, seconds)),
                _ => None,
            })
        }
    })
    .await?;
    assert!(get(names::RECORDS_PRODUCED).unwrap_or(0.0) >= 6.0, "snapshot rows and the insert are counted");
    assert!(get(names::SNAPSHOT_ROWS).unwrap_or(0.0) >= 5.0);
    reader.stop().await
}
