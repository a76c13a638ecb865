//! One test's world: emulator, database, topics, a running sink, and a "person" editing calendars directly.

use std::time::Duration;

use anyhow::{Context, Result};
use graph_client::properties::{BOOKING_SYSTEM_ID, BOOKING_SYSTEM_TYPE, ROOMSYNC_ITEM_KEY};
use graph_client::{ClientConfig, DateTimeTimeZone, Event, GraphClient, Secret};
use graph_emulator::{serve, Emulator, RoomConfig, TenantConfig};
use reconcile::{Config, Options, Report};
use schema_registry::{AvroCodec, RegistryClient};
use serde_json::Value;
use streams::{ensure_topics, KafkaSettings, RecordProducer, TopicSpec};
pub use testkit::desired::tag;
use testkit::{kafka_bootstrap, unique_name, wait_until, Stack, TestDatabase};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use vocabulary::records::DesiredItem;
use vocabulary::topics::Topics;
use vocabulary::ReservationKind;

pub const ROOM: &str = "room-a@example.org";
const TENANT: &str = "00000000-0000-0000-0000-0000000000aa";

/// A running sink and the switch that stops it.
type RunningSink = (JoinHandle<Result<(), graph_sink::SinkError>>, oneshot::Sender<()>);

pub struct Harness {
    pub emu: Emulator,
    pub base: String,
    pub db: TestDatabase,
    pub pg: tokio_postgres::Client,
    pub topics: Topics,
    pub producer: RecordProducer,
    pub kafka: KafkaSettings,
    pub last_offset: i64,
    group: String,
    sink: Option<RunningSink>,
    _stop: oneshot::Sender<()>,
}

impl Harness {
    pub async fn start() -> Result<Self> {
        let mut config = TenantConfig::default();
        config.rooms.push(RoomConfig {
            id: "7a1c2d1e-8a4b-4c55-9d2e-1a2b3c4d5e01".into(),
            email: ROOM.into(),
            display_name: "Room A".into(),
            capacity: Some(8),
            building: Some("Main".into()),
            floor_number: Some(1),
            room_list: None,
            auto_accept: true,
            allow_conflicts: true,
        });
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
        let topics = Topics::new(unique_name("reconcile"));
        let kafka = KafkaSettings::new(kafka_bootstrap());
        ensure_topics(&kafka, &[TopicSpec::compacted(topics.desired())]).await?;
        let codec = AvroCodec::new(RegistryClient::new(&Stack::from_env().registry_url));
        let producer = RecordProducer::new(&kafka, codec)?;
        Ok(Harness {
            emu,
            base,
            db,
            pg,
            topics,
            producer,
            kafka,
            last_offset: -1,
            group: unique_name("reconcile_sink"),
            sink: None,
            _stop: stop,
        })
    }

    pub fn graph_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new(TENANT, "roomsync-test-client", Secret::new("roomsync-test-secret"))
            .with_base_urls(&self.base, format!("{}/v1.0", self.base));
        config.base_backoff = Duration::from_millis(5);
        config.max_backoff = Duration::from_secs(1);
        config
    }

    /// A Graph client standing for a person editing the room calendar in Outlook.
    pub fn person(&self) -> GraphClient {
        GraphClient::new(self.graph_config()).expect("client")
    }

    pub fn config(&self) -> Config {
        let mut config = Config::new(self.db.connections(self.topics.prefix()), self.graph_config());
        // The test's items are in 2030.
        config.horizon = Duration::from_secs(20 * 365 * 24 * 3600);
        config
    }

    pub async fn reconcile(&self, dry_run: bool) -> Result<Report> {
        let options = Options { dry_run, rooms: vec![ROOM.to_owned()] };
        Ok(reconcile::reconcile(&self.config(), &options).await?)
    }

    pub fn start_sink(&mut self) {
        let mut config = graph_sink::Config::new(self.db.connections(self.topics.prefix()), self.graph_config());
        config.consumer_group = self.group.clone();
        config.retry_backoff = Duration::from_millis(20);
        config.max_retry_backoff = Duration::from_millis(300);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(graph_sink::run(config, async move {
            let _ = stopped.await;
        }));
        self.sink = Some((task, stop));
    }

    pub async fn stop_sink(&mut self) -> Result<()> {
        if let Some((task, stop)) = self.sink.take() {
            let _ = stop.send(());
            task.await.context("sink task")?.context("sink")?;
        }
        Ok(())
    }

    pub async fn send(&mut self, item: &DesiredItem) -> Result<()> {
        let key = format!("{}/{}", item.mailbox, item.item_key);
        let partition = vocabulary::keys::room_partition(&item.mailbox, self.kafka.partitions);
        let (_, offset) = self.producer.send(&self.topics.desired(), &key, Some(partition), Some(item)).await?;
        self.last_offset = self.last_offset.max(offset);
        Ok(())
    }

    pub async fn send_tombstone(&mut self, mailbox: &str, item_key: &str) -> Result<()> {
        let key = format!("{mailbox}/{item_key}");
        let partition = vocabulary::keys::room_partition(mailbox, self.kafka.partitions);
        let (_, offset) =
            self.producer.send::<DesiredItem>(&self.topics.desired(), &key, Some(partition), None).await?;
        self.last_offset = self.last_offset.max(offset);
        Ok(())
    }

    /// Waits until the sink has applied every record up to `last_offset`.
    pub async fn wait_applied(&self) -> Result<()> {
        let want = self.last_offset + 1;
        let (pg, group, topic) = (&self.pg, &self.group, self.topics.desired());
        wait_until("the sink to apply every record", Duration::from_secs(90), || {
            let topic = topic.clone();
            async move {
                let row = pg
                    .query_opt(
                        "select next_offset from roomsync_consumer_offsets where consumer_group = $1 and topic = $2",
                        &[group, &topic],
                    )
                    .await?;
                Ok(row.map(|r| r.get::<_, i64>(0)).filter(|n| *n >= want))
            }
        })
        .await?;
        Ok(())
    }

    /// The desired topic's high watermark (one partition).
    pub fn desired_high_watermark(&self) -> Result<i64> {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let consumer: BaseConsumer =
            self.kafka.client_config().set("group.id", unique_name("reconcile_probe")).create()?;
        let (_, high) = consumer.fetch_watermarks(&self.topics.desired(), 0, Duration::from_secs(10))?;
        Ok(high)
    }

    pub fn events(&self) -> Vec<Value> {
        self.emu.mailbox_events(ROOM).unwrap_or_default()
    }

    /// (item key, status, event id, hash, intent) of every mapping row, ordered.
    pub async fn rows(&self) -> Result<Vec<(String, String, Option<String>, Option<String>, String)>> {
        let rows = self
            .pg
            .query(
                "select item_key, sync_status, outlook_event_id, content_hash, intent
                 from outlook_calendar_mapping where outlook_item_id = $1 order by item_key",
                &[&ROOM],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))).collect())
    }

    /// A person books the room straight in Outlook (an event without roomsync tags).
    pub async fn outlook_booking(&self, subject: &str, start: &str, end: &str) -> Result<String> {
        let body = serde_json::json!({
            "subject": subject,
            "start": {"dateTime": start, "timeZone": "UTC"},
            "end": {"dateTime": end, "timeZone": "UTC"},
        });
        let answer: Value = reqwest::Client::new()
            .post(format!("{}/_emulator/mailboxes/{ROOM}/bookings", self.base))
            .json(&body)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        answer["id"].as_str().map(str::to_owned).context("booking id")
    }

    /// An event carrying roomsync's tags for an item nothing desires (e.g. left over by a crashed tool).
    pub async fn tagged_stranger(&self, item_key: &str, reservation_id: i32, start: &str, end: &str) -> Result<String> {
        let mut event = Event {
            subject: Some("Left over".into()),
            start: Some(DateTimeTimeZone { date_time: start.into(), time_zone: "UTC".into() }),
            end: Some(DateTimeTimeZone { date_time: end.into(), time_zone: "UTC".into() }),
            ..Event::default()
        };
        event.set_extended(BOOKING_SYSTEM_TYPE, "event");
        event.set_extended(BOOKING_SYSTEM_ID, &reservation_id.to_string());
        event.set_extended(ROOMSYNC_ITEM_KEY, item_key);
        let created = self.person().create_event(ROOM, &event).await?;
        created.id.context("created event id")
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some((task, _)) = self.sink.take() {
            task.abort();
        }
    }
}

/// An upsert of reservation `id` in the room, 2030-01-`day` from `hour`:00Z to `hour+1`:30Z.
pub fn upsert(kind: ReservationKind, id: i32, subject: &str, day: u32, hour: u32) -> DesiredItem {
    testkit::desired::upsert(ROOM, kind, id, subject, day, hour)
}

/// The event the emulator holds for an item key.
pub fn event_of<'a>(events: &'a [Value], item_key: &str) -> Option<&'a Value> {
    events.iter().find(|e| tag(e, ROOMSYNC_ITEM_KEY) == Some(item_key))
}
