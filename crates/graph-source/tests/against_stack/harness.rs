//! One isolated world per test: an emulated tenant, a database with the booking schema and roomsync's tables,
//! a unique topic prefix, the Graph source running in a task, and a reader collecting the topic.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::Utc;
use graph_client::{ClientConfig, DateTimeTimeZone, Event, GraphClient, Secret};
use graph_emulator::{serve, Emulator, FaultConfig, RoomConfig, TenantConfig};
use graph_source::{Config, WebhookConfig};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig as KafkaClientConfig, Offset, TopicPartitionList};
use schema_registry::{AvroCodec, RegistryClient};
use streams::{ensure_topics, KafkaSettings, TopicSpec};
use testkit::{kafka_bootstrap, unique_name, wait_until, Stack, TestDatabase};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use vocabulary::records::{AvroRecord, GraphEvent, UpsertOrDelete};
use vocabulary::topics::Topics;

pub const ROOM_A: &str = "room-a@example.org";
pub const ROOM_B: &str = "room-b@example.org";
pub const ROOM_C: &str = "room-c@example.org";
const ROOM_IDS: [(&str, &str); 3] = [
    (ROOM_A, "6f1c2d1e-8a4b-4c55-9d2e-1a2b3c4d5e01"),
    (ROOM_B, "6f1c2d1e-8a4b-4c55-9d2e-1a2b3c4d5e02"),
    (ROOM_C, "6f1c2d1e-8a4b-4c55-9d2e-1a2b3c4d5e03"),
];

/// Generous deadline for anything that crosses Graph, Kafka and PostgreSQL on a loaded machine.
pub const PATIENCE: Duration = Duration::from_secs(40);

/// How a test wants the world.
pub struct Options {
    pub rooms: Vec<&'static str>,
    pub faults: FaultConfig,
    pub poll_interval: Duration,
    pub webhook: bool,
    pub subscription_lifetime: Duration,
    pub renew_before: Duration,
    pub window_refresh: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            rooms: vec![ROOM_A, ROOM_B],
            faults: FaultConfig::default(),
            poll_interval: Duration::from_millis(200),
            webhook: false,
            subscription_lifetime: Duration::from_secs(3600),
            renew_before: Duration::from_secs(60),
            window_refresh: Duration::from_secs(24 * 3600),
        }
    }
}

/// A record read back, with its key and partition.
#[derive(Debug, Clone)]
pub struct Seen {
    pub key: String,
    pub partition: i32,
    pub record: GraphEvent,
}

/// A running Graph source: how to stop it and its task.
type Running = (oneshot::Sender<()>, JoinHandle<Result<(), graph_source::Error>>);

pub struct World {
    pub emu: Emulator,
    pub graph: GraphClient,
    _db: TestDatabase,
    pub pg: tokio_postgres::Client,
    pub config: Config,
    pub webhook_url: Option<String>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    running: Option<Running>,
    _emu_stop: oneshot::Sender<()>,
    _reader: JoinHandle<()>,
}

fn client_config(base: &str) -> ClientConfig {
    let mut config = ClientConfig::new(
        "00000000-0000-0000-0000-0000000000aa",
        "roomsync-test-client",
        Secret::new("roomsync-test-secret"),
    )
    .with_base_urls(base, format!("{base}/v1.0"));
    config.base_backoff = Duration::from_millis(5);
    config.max_backoff = Duration::from_secs(1);
    config.max_attempts = 4;
    config
}

fn tenant(faults: FaultConfig) -> TenantConfig {
    let mut config = TenantConfig::default();
    for (email, id) in ROOM_IDS {
        config.rooms.push(RoomConfig {
            id: id.into(),
            email: email.into(),
            display_name: format!("Room {email}"),
            capacity: Some(8),
            building: None,
            floor_number: None,
            room_list: None,
            auto_accept: true,
            allow_conflicts: true,
        });
    }
    config.faults = faults;
    config
}

impl World {
    pub async fn start(options: Options) -> Result<Self> {
        // Logs show with RUST_LOG=graph_source=debug and --nocapture.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let emu_base = format!("http://{}", listener.local_addr()?);
        let emu = Emulator::new(tenant(options.faults));
        let (emu_stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(serve(listener, emu.clone(), async move {
            let _ = stopped.await;
        }));
        // The test's own writes retry patiently, so injected faults hit the source, not the test.
        let mut writer = client_config(&emu_base);
        writer.max_attempts = 30;
        let graph = GraphClient::new(writer)?;

        let db = TestDatabase::create().await?;
        let mut pg = db.connect().await?;
        migrations::apply(&mut pg).await?;
        pg.execute("delete from bb_resource_outlook_item", &[]).await?;
        for (n, room) in options.rooms.iter().enumerate() {
            pg.execute(
                "insert into bb_resource_outlook_item (resource_id, outlook_item_id, outlook_item_name, active) \
                 values ($1, $2, $2, 1)",
                &[&(i32::try_from(n)? + 1), room],
            )
            .await?;
        }

        let prefix = unique_name("gs");
        let kafka = KafkaSettings::new(kafka_bootstrap());
        let topic = Topics::new(&prefix).graph_events();
        ensure_topics(&kafka, &[TopicSpec::compacted(&topic)]).await?;
        let registry_url = Stack::from_env().registry_url;
        let mut config = Config::new(db.connections(&prefix), client_config(&emu_base));
        config.poll_interval = options.poll_interval;
        config.rooms_refresh = Duration::from_millis(100);
        config.retry_base = Duration::from_millis(50);
        config.retry_max = Duration::from_millis(500);
        config.page_size = Some(5);
        config.window_refresh = options.window_refresh;
        let mut webhook_url = None;
        if options.webhook {
            // Bound here only to learn a free port; the source binds it again.
            let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
            let addr = probe.local_addr()?;
            drop(probe);
            let url = format!("http://{addr}");
            let mut webhook = WebhookConfig::new(addr, url.clone());
            webhook.subscription_lifetime = options.subscription_lifetime;
            webhook.renew_before = options.renew_before;
            webhook.check_interval = Duration::from_millis(100);
            config.webhook = Some(webhook);
            webhook_url = Some(format!("http://{addr}"));
        }

        let seen = Arc::new(Mutex::new(Vec::new()));
        let reader = tokio::spawn(read_topic(topic, registry_url, Arc::clone(&seen)));
        let mut world = World {
            emu,
            graph,
            _db: db,
            pg,
            config,
            webhook_url,
            seen,
            running: None,
            _emu_stop: emu_stop,
            _reader: reader,
        };
        world.run_source().await?;
        Ok(world)
    }

    /// Starts the Graph source (again).
    pub async fn run_source(&mut self) -> Result<()> {
        let (stop, stopped) = oneshot::channel::<()>();
        let config = self.config.clone();
        let listener = match &config.webhook {
            Some(w) => Some(tokio::net::TcpListener::bind(w.listen).await?),
            None => None,
        };
        let task = tokio::spawn(graph_source::run_with_listener(config, listener, async move {
            let _ = stopped.await;
        }));
        self.running = Some((stop, task));
        Ok(())
    }

    /// Stops the Graph source and waits for it.
    pub async fn stop_source(&mut self) -> Result<()> {
        if let Some((stop, task)) = self.running.take() {
            let _ = stop.send(());
            task.await?.context("graph source failed")?;
        }
        Ok(())
    }

    pub fn records(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Records of one event, in topic order.
    pub fn records_of(&self, event_id: &str) -> Vec<GraphEvent> {
        self.records().into_iter().filter(|s| s.record.event_id == event_id).map(|s| s.record).collect()
    }

    /// Waits for a record of `event_id` matching `check`.
    pub async fn wait_for(
        &self,
        what: &str,
        event_id: &str,
        check: impl Fn(&GraphEvent) -> bool,
    ) -> Result<GraphEvent> {
        wait_until(what, PATIENCE, || async { Ok(self.records_of(event_id).into_iter().find(|r| check(r))) }).await
    }

    pub async fn wait_for_upsert(&self, event_id: &str, subject: &str) -> Result<GraphEvent> {
        self.wait_for(&format!("upsert of {subject}"), event_id, |r| {
            r.op == UpsertOrDelete::Upsert && r.event.as_ref().and_then(|e| e.subject.as_deref()) == Some(subject)
        })
        .await
    }

    pub async fn wait_for_delete(&self, event_id: &str) -> Result<GraphEvent> {
        self.wait_for("delete", event_id, |r| r.op == UpsertOrDelete::Delete).await
    }

    /// Creates a one-hour meeting tomorrow in `room`; returns its id.
    pub async fn create(&self, room: &str, subject: &str, hour: u32) -> Result<String> {
        // Like a person at a calendar: after an answer that leaves open whether the booking was made (the client
        // does not post a create again by itself then), look, and book again only if it is not there.
        for _ in 0..10 {
            match self.graph.create_event(room, &meeting(subject, hour)).await {
                Ok(created) => return created.id.context("created event has an id"),
                Err(err) if err.may_have_been_applied() => {
                    let events = self.emu.mailbox_events(room).unwrap_or_default();
                    if let Some(id) = events.iter().find(|e| e["subject"] == subject).and_then(|e| e["id"].as_str()) {
                        return Ok(id.to_owned());
                    }
                }
                Err(err) => return Err(err.into()),
            }
        }
        anyhow::bail!("{subject} could not be booked in {room}")
    }

    /// The stored subscriptions by mailbox.
    pub async fn subscriptions(&self) -> Result<HashMap<String, (String, Option<chrono::DateTime<Utc>>)>> {
        let rows =
            self.pg.query("select mailbox, subscription_id, renewed_at from roomsync_subscriptions", &[]).await?;
        Ok(rows.iter().map(|r| (r.get(0), (r.get(1), r.get(2)))).collect())
    }

    /// Waits until `room` has a stored subscription other than `not`.
    pub async fn wait_for_subscription(&self, room: &str, not: Option<&str>) -> Result<String> {
        wait_until("a subscription", PATIENCE, || async {
            Ok(self.subscriptions().await?.get(room).map(|(id, _)| id.clone()).filter(|id| Some(id.as_str()) != not))
        })
        .await
    }

    /// Paths of the emulator's request log for `method`.
    pub fn requests(&self, method: &str) -> Vec<String> {
        self.emu.requests().into_iter().filter(|r| r.method == method).map(|r| r.path).collect()
    }
}

pub fn meeting(subject: &str, hour: u32) -> Event {
    let day = (Utc::now() + chrono::Duration::days(1)).date_naive();
    let at = |h: u32| day.and_hms_opt(h, 0, 0).map(|t| DateTimeTimeZone::utc(t.and_utc()));
    Event { subject: Some(subject.into()), start: at(hour), end: at(hour + 1), ..Event::default() }
}

async fn read_topic(topic: String, registry_url: String, seen: Arc<Mutex<Vec<Seen>>>) {
    let codec = AvroCodec::new(RegistryClient::new(&registry_url));
    let Ok(consumer) = KafkaClientConfig::new()
        .set("bootstrap.servers", kafka_bootstrap())
        .set("group.id", unique_name("gs_reader"))
        .set("enable.auto.commit", "false")
        .create::<StreamConsumer>()
    else {
        return;
    };
    let mut assignment = TopicPartitionList::new();
    if assignment.add_partition_offset(&topic, 0, Offset::Beginning).is_err() || consumer.assign(&assignment).is_err() {
        return;
    }
    loop {
        let Ok(message) = consumer.recv().await else { continue };
        let key = message.key().map(|k| String::from_utf8_lossy(k).into_owned()).unwrap_or_default();
        let Some(payload) = message.payload() else { continue };
        let Ok((_, value)) = codec.decode(payload).await else { continue };
        let Ok(record) = GraphEvent::from_avro(value) else { continue };
        if let Ok(mut seen) = seen.lock() {
            seen.push(Seen { key, partition: message.partition(), record });
        }
    }
}
