//! One test's world: emulator, database, topics, and a sink that can be started, stopped and crashed.

use std::time::Duration;

use anyhow::{Context, Result};
use graph_client::{ClientConfig, GraphClient, Secret};
use graph_emulator::{serve, Emulator, FaultConfig, RoomConfig, TenantConfig};
use graph_sink::{Config, SinkError};
use schema_registry::{AvroCodec, RegistryClient};
use serde_json::Value;
use streams::{ensure_topics, KafkaSettings, RecordProducer, TopicSpec};
pub use testkit::desired::{delete, micros, tag, upsert};
use testkit::{kafka_bootstrap, unique_name, wait_until, Stack, TestDatabase};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use vocabulary::records::DesiredItem;
use vocabulary::topics::Topics;

pub const ROOM_A: &str = "room-a@example.org";
pub const ROOM_B: &str = "room-b@example.org";
const TENANT: &str = "00000000-0000-0000-0000-0000000000aa";

pub struct Harness {
    pub emu: Emulator,
    pub base: String,
    pub db: TestDatabase,
    pub pg: tokio_postgres::Client,
    pub topics: Topics,
    pub group: String,
    pub producer: RecordProducer,
    pub codec: AvroCodec,
    pub kafka: KafkaSettings,
    pub last_offset: i64,
    _stop: oneshot::Sender<()>,
}

fn room(id: &str, email: &str) -> RoomConfig {
    RoomConfig {
        id: id.into(),
        email: email.into(),
        display_name: format!("Room {email}"),
        capacity: Some(8),
        building: Some("Main".into()),
        floor_number: Some(1),
        room_list: None,
        auto_accept: true,
        allow_conflicts: false,
    }
}

/// A running sink.
pub struct Running {
    pub task: JoinHandle<Result<(), SinkError>>,
    stop: oneshot::Sender<()>,
}

impl Running {
    /// Asks the sink to stop and waits for it.
    pub async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        self.task.await.context("sink task")?.context("sink")?;
        Ok(())
    }
}

impl Harness {
    pub async fn start() -> Result<Self> {
        Self::start_with(FaultConfig::default()).await
    }

    pub async fn start_with(faults: FaultConfig) -> Result<Self> {
        let mut config = TenantConfig::default();
        config.rooms.push(room("6f1c2d1e-8a4b-4c55-9d2e-1a2b3c4d5e01", ROOM_A));
        config.rooms.push(room("6f1c2d1e-8a4b-4c55-9d2e-1a2b3c4d5e02", ROOM_B));
        config.faults = faults;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let emu = Emulator::new(config);
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(serve(listener, emu.clone(), async move {
            let _ = stopped.await;
        }));
        let db = TestDatabase::create().await?;
        let mut pg = db.connect().await?;
        migrations::apply(&mut pg).await?;
        let topics = Topics::new(unique_name("sink"));
        let kafka = KafkaSettings::new(kafka_bootstrap());
        ensure_topics(&kafka, &[TopicSpec::compacted(topics.desired()), TopicSpec::compacted(topics.imports())])
            .await?;
        let codec = AvroCodec::new(RegistryClient::new(&Stack::from_env().registry_url));
        let producer = RecordProducer::new(&kafka, codec.clone())?;
        Ok(Harness {
            emu,
            base,
            db,
            pg,
            topics,
            group: unique_name("sink_group"),
            producer,
            codec,
            kafka,
            last_offset: -1,
            _stop: stop,
        })
    }

    pub fn graph_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new(TENANT, "roomsync-test-client", Secret::new("roomsync-test-secret"))
            .with_base_urls(&self.base, format!("{}/v1.0", self.base));
        config.base_backoff = Duration::from_millis(5);
        config.max_backoff = Duration::from_secs(1);
        config.max_attempts = 8;
        config
    }

    pub fn graph(&self) -> GraphClient {
        GraphClient::new(self.graph_config()).expect("client")
    }

    pub fn config(&self) -> Config {
        let mut config = Config::new(self.db.connections(self.topics.prefix()), self.graph_config());
        config.consumer_group = self.group.clone();
        config.retry_backoff = Duration::from_millis(20);
        config.max_retry_backoff = Duration::from_millis(300);
        config
    }

    pub fn spawn(&self, config: Config) -> Running {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(graph_sink::run(config, async move {
            let _ = stopped.await;
        }));
        Running { task, stop }
    }

    /// Sends a desired record and remembers its offset.
    pub async fn send(&mut self, item: &DesiredItem) -> Result<()> {
        let key = format!("{}/{}", item.mailbox, item.item_key);
        let (_, offset) = self.producer.send(&self.topics.desired(), &key, Some(0), Some(item)).await?;
        self.last_offset = offset;
        Ok(())
    }

    /// Sends a tombstone for an item.
    pub async fn send_tombstone(&mut self, mailbox: &str, item_key: &str) -> Result<()> {
        let key = format!("{mailbox}/{item_key}");
        let (_, offset) = self.producer.send::<DesiredItem>(&self.topics.desired(), &key, Some(0), None).await?;
        self.last_offset = offset;
        Ok(())
    }

    /// The next offset PostgreSQL holds for the desired topic.
    pub async fn stored_offset(&self) -> Result<Option<i64>> {
        let row = self
            .pg
            .query_opt(
                "select next_offset from roomsync_consumer_offsets where consumer_group = $1 and topic = $2",
                &[&self.group, &self.topics.desired()],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Waits until everything sent so far is committed in PostgreSQL.
    pub async fn wait_applied(&self) -> Result<()> {
        let want = self.last_offset + 1;
        wait_until("the sink to apply every record", Duration::from_secs(90), || async move {
            Ok(self.stored_offset().await?.filter(|n| *n >= want))
        })
        .await?;
        Ok(())
    }

    pub fn events(&self, mailbox: &str) -> Vec<Value> {
        self.emu.mailbox_events(mailbox).unwrap_or_default()
    }

    /// (item_key, sync_status, event id, content hash, error) of every mapping row of a mailbox.
    pub async fn rows(&self, mailbox: &str) -> Result<Vec<MappingView>> {
        let rows = self
            .pg
            .query(
                "select item_key, sync_status, outlook_event_id, content_hash, error_message, change_key,
                        transaction_id::text, intent
                 from outlook_calendar_mapping where outlook_item_id = $1 order by item_key",
                &[&mailbox],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| MappingView {
                item_key: r.get(0),
                status: r.get(1),
                event_id: r.get(2),
                hash: r.get(3),
                error: r.get(4),
                change_key: r.get(5),
                transaction_id: r.get(6),
                intent: r.get(7),
            })
            .collect())
    }
}

#[derive(Debug, Clone)]
pub struct MappingView {
    pub item_key: String,
    pub status: String,
    pub event_id: Option<String>,
    pub hash: Option<String>,
    pub error: Option<String>,
    pub change_key: Option<String>,
    pub transaction_id: String,
    pub intent: String,
}
