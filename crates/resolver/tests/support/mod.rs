//! The harness of the resolver's tests against the real stack: a cdc-reader on a database of the test's own,
//! resolvers in one group over its topics, and reading their output back.

#![allow(dead_code)] // each test binary uses part of it

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use resolver::{Config, WindowConfig};
use schema_registry::{AvroCodec, RegistryClient};
use testkit::{unique_name, Stack, TestDatabase};
use tokio::sync::oneshot;
use vocabulary::records::{AvroRecord, DesiredItem, UpsertOrDelete};
use vocabulary::topics::Topics;

pub const HALL_A: &str = "hall-a@fjordvik.kommune.no";
pub const HALL_B: &str = "hall-b@fjordvik.kommune.no";
pub const STORSALEN: &str = "storsalen@fjordvik.kommune.no";

/// The first `n` records of the desired topic, decoded.
pub async fn desired(topic: &str, n: usize, codec: &AvroCodec) -> Result<Vec<DesiredItem>> {
    // The resolver creates the topic; until it exists, reading it fails: wait for it.
    let records = testkit::wait_until("the desired topic", Duration::from_secs(120), || async {
        Ok(testkit::consume_all(topic, n, Duration::from_secs(60)).await.ok())
    })
    .await?;
    decode_all(records, codec).await
}

/// Decodes desired records.
pub async fn decode_all(records: Vec<testkit::Record>, codec: &AvroCodec) -> Result<Vec<DesiredItem>> {
    let mut out = Vec::new();
    for record in records {
        let bytes = record.value.context("desired records are never tombstones")?;
        out.push(DesiredItem::from_avro(codec.decode(&bytes).await?.1)?);
    }
    Ok(out)
}

/// What a reader of the compacted desired topic holds: the last record per (mailbox, item key), deletes gone.
pub fn compacted(items: &[DesiredItem]) -> BTreeMap<(String, String), &DesiredItem> {
    let mut out = BTreeMap::new();
    for item in items {
        let key = (item.mailbox.clone(), item.item_key.clone());
        match item.op {
            UpsertOrDelete::Upsert => {
                out.insert(key, item);
            }
            UpsertOrDelete::Delete => {
                out.remove(&key);
            }
        }
    }
    out
}

fn spawn_resolver(config: Config) -> (oneshot::Sender<()>, tokio::task::JoinHandle<Result<()>>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        resolver::run(config, async move {
            let _ = stopped.await;
        })
        .await
        .map_err(anyhow::Error::from)
    });
    (stop, task)
}

/// A cdc-reader and resolvers running against a database of the test's own.
pub struct Running {
    pub db: TestDatabase,
    pub client: tokio_postgres::Client,
    pub topics: Topics,
    pub codec: AvroCodec,
    /// The configuration of the resolvers started from now on.
    pub config: Config,
    resolvers: Vec<(oneshot::Sender<()>, tokio::task::JoinHandle<Result<()>>)>,
    cdc: Option<(oneshot::Sender<()>, tokio::task::JoinHandle<Result<()>>)>,
}

impl Running {
    /// One resolver on the sample data with one partition and a window wide enough for it.
    pub async fn start() -> Result<Self> {
        Self::start_instances(1, 1).await
    }

    /// `instances` resolvers in one group, over output topics of `partitions` partitions.
    pub async fn start_instances(instances: usize, partitions: i32) -> Result<Self> {
        // The sample data lies in spring 2026: a wide past margin keeps it inside the window.
        let window = WindowConfig {
            past: Duration::from_secs(3 * 365 * 86_400),
            horizon: Duration::from_secs(3 * 365 * 86_400),
            tick: Duration::from_secs(5),
        };
        Self::start_with(instances, partitions, window).await
    }

    /// Resolvers with the sync window `window` on the sample data, three rooms mapped.
    pub async fn start_with(instances: usize, partitions: i32, window: WindowConfig) -> Result<Self> {
        let db = TestDatabase::create().await?;
        let mut client = db.connect().await?;
        migrations::apply(&mut client).await?;
        client
            .batch_execute(&format!(
                "insert into bb_resource_outlook_item (resource_id, outlook_item_id, outlook_item_name, active) values \
                 (1, '{HALL_A}', 'Hall A', 1), (2, '{HALL_B}', 'Hall B', 1), (4, '{STORSALEN}', 'Storsalen', 1)"
            ))
            .await?;
        let mut running = Self::cdc_on(db).await?;
        running.config.connections.kafka.partitions = partitions;
        running.config.window = window;
        for _ in 0..instances {
            running.add_resolver();
        }
        Ok(running)
    }

    /// A cdc-reader on `db` (roomsync's migrations applied), once its initial snapshot is complete (as in
    /// production after the first install); no resolver yet.
    pub async fn cdc_on(db: TestDatabase) -> Result<Self> {
        Self::first_start(db, None).await
    }

    /// A resolver with an input buffer of `max_buffered_records` started before the cdc-reader on `db` (the first
    /// start of a whole installation: the resolver reads the snapshot while it is written), once the snapshot is
    /// complete.
    pub async fn live_on(db: TestDatabase, max_buffered_records: usize) -> Result<Self> {
        Self::first_start(db, Some(max_buffered_records)).await
    }

    async fn first_start(db: TestDatabase, resolver_buffer: Option<usize>) -> Result<Self> {
        let stack = Stack::from_env();
        let client = db.connect().await?;
        let prefix = unique_name("rs");
        let mut config = Config::new(db.connections(&prefix));
        config.group = unique_name("resolver");
        let mut resolvers = Vec::new();
        if let Some(buffer) = resolver_buffer {
            config.max_buffered_records = buffer;
            resolvers.push(spawn_resolver(config.clone()));
        }
        let mut cdc = cdc_reader::Config::new(db.connections(&prefix));
        cdc.slot = unique_name("slot");
        cdc.publication = unique_name("pub");
        cdc.status_interval = Duration::from_millis(100);
        let cdc_config = cdc.clone();
        let (stop_cdc, cdc_stopped) = oneshot::channel::<()>();
        let cdc_task = tokio::spawn(async move {
            cdc_reader::run(cdc, async move {
                let _ = cdc_stopped.await;
            })
            .await
            .map_err(anyhow::Error::from)
        });
        testkit::wait_until("the initial snapshot", Duration::from_secs(600), || async {
            Ok(cdc_reader::setup::snapshot_complete(&client, &cdc_config).await?.then_some(()))
        })
        .await?;
        Ok(Running {
            db,
            client,
            topics: Topics::new(prefix),
            codec: AvroCodec::new(RegistryClient::new(&stack.registry_url)),
            config,
            resolvers,
            cdc: Some((stop_cdc, cdc_task)),
        })
    }

    /// Starts one more resolver with [`Running::config`].
    pub fn add_resolver(&mut self) {
        self.resolvers.push(spawn_resolver(self.config.clone()));
    }

    /// Stops the first resolver, cleanly.
    pub async fn stop_resolver(&mut self) -> Result<()> {
        let (stop, task) = self.resolvers.remove(0);
        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(30), task).await???;
        Ok(())
    }

    /// Stops the first resolver and starts a new one with [`Running::config`] (a restart).
    pub async fn restart_resolver(&mut self) -> Result<()> {
        self.stop_resolver().await?;
        self.resolvers.insert(0, spawn_resolver(self.config.clone()));
        Ok(())
    }

    /// Stops everything, cleanly.
    pub async fn stop(self) -> Result<()> {
        let mut tasks = Vec::new();
        for (stop, task) in self.resolvers.into_iter().chain(self.cdc) {
            let _ = stop.send(());
            tasks.push(task);
        }
        for task in tasks {
            tokio::time::timeout(Duration::from_secs(30), task).await???;
        }
        drop(self.db);
        Ok(())
    }
}
