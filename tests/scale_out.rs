//! Several `roomsync` instances sharing the work (issue #14), with the real binary as child processes.
//!
//! Fencing. The hazard: a member that stalls in the middle of a unit (a VM paused by its host, a process stuck in swap)
//! loses its partitions to another member when its Kafka session ends, but still holds its records and its
//! connections. When it runs on, it finishes the unit it started, while its successor has applied newer records of
//! the same partition. Nothing in Kafka stops it; the graph sink's fencing must.
//!
//! ```text
//!  sink A (child) --applies v0--> Graph, mapping          v1 sent; A announces its PATCH (txn A) -> SIGSTOP A
//!  v2 sent; sink B (child) joins, takes the partition when A's session ends, meets v1 and v2
//!  B either applies v2 at once (no fencing) or waits for A's unit (fencing) -> SIGCONT A
//!  end: the room calendar and the mapping row hold v2, whatever order the two units ran in
//! ```
//!
//! Liveness: a unit that takes longer than `max.poll.interval.ms` (a throttling storm) keeps its member in the
//! group, and a unit that keeps failing longer than `graph_sink.unit_retry_limit` is abandoned and applied again.

mod support;

#[path = "support/process.rs"]
mod process;

use std::time::Duration;

use anyhow::Context;
use graph_emulator::{serve, Emulator, TenantConfig};
use schema_registry::{AvroCodec, RegistryClient};
use serde_json::Value;
use streams::{ensure_topics, KafkaSettings, RecordProducer, TopicSpec};
use testkit::desired::upsert;
use testkit::{unique_name, wait_until, Stack, TestDatabase};
use tokio_postgres::Client;
use vocabulary::records::DesiredItem;
use vocabulary::topics::Topics;
use vocabulary::ReservationKind;

use process::Process;

const ROOM: &str = "hall-a@fjordvik.kommune.no";
const ITEM: &str = "booking:4711";

/// The Graph emulator with the local tenant, every request taking `latency_ms`, served until the test ends.
async fn graph(latency_ms: u64) -> anyhow::Result<(Emulator, String)> {
    let mut tenant = TenantConfig::load(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/emulator/tenant.toml"))?;
    tenant.faults.latency_ms = latency_ms;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let emu = Emulator::new(tenant);
    tokio::spawn(serve(listener, emu.clone(), std::future::pending()));
    Ok((emu, url))
}

fn version(subject: &str, hour: u32) -> DesiredItem {
    upsert(ROOM, ReservationKind::Booking, 4711, subject, 15, hour)
}

/// The item's mapping row: (content hash, change key, intent).
async fn row(db: &Client) -> anyhow::Result<Option<(Option<String>, Option<String>, String)>> {
    let row = db
        .query_opt(
            "select content_hash, change_key, intent from outlook_calendar_mapping
             where outlook_item_id = $1 and item_key = $2",
            &[&ROOM, &ITEM],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), r.get(1), r.get(2))))
}

async fn stored_offset(db: &Client, group: &str, topic: &str) -> anyhow::Result<Option<i64>> {
    let row = db
        .query_opt(
            "select next_offset from roomsync_consumer_offsets where consumer_group = $1 and topic = $2",
            &[&group, &topic],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Whether some session of this database waits for an advisory lock (a member waiting for another's unit).
async fn waiting_for_a_unit(db: &Client) -> anyhow::Result<bool> {
    let row = db
        .query_one(
            "select count(*) from pg_locks l join pg_database d on d.oid = l.database
             where l.locktype = 'advisory' and not l.granted and d.datname = current_database()",
            &[],
        )
        .await?;
    Ok(row.get::<_, i64>(0) > 0)
}

/// The room's events as (subject, changeKey).
fn events(emu: &Emulator) -> Vec<(String, String)> {
    emu.mailbox_events(ROOM)
        .unwrap_or_default()
        .iter()
        .map(|e: &Value| {
            (
                e["subject"].as_str().unwrap_or_default().to_owned(),
                e["changeKey"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// One test's world: a database with roomsync's tables, the Graph emulator, a topic prefix, and the environment
/// that makes `roomsync run --stage graph-sink` use them.
struct World {
    /// Kept for the test's lifetime.
    _db: TestDatabase,
    pg: Client,
    emu: Emulator,
    topics: Topics,
    producer: RecordProducer,
    env: Vec<(String, String)>,
    group: String,
    logs: std::path::PathBuf,
}

impl World {
    /// Each Graph request takes `latency_ms`; `extra` settings go on top of the pipeline's.
    async fn start(name: &str, latency_ms: u64, extra: &[(&str, String)]) -> anyhow::Result<World> {
        let stack = Stack::from_env();
        let db = TestDatabase::create().await?;
        let mut pg = db.connect().await?;
        migrations::apply(&mut pg).await?;
        let (emu, graph_url) = graph(latency_ms).await?;
        let name = unique_name(name);
        let topics = Topics::new(name.clone());
        let kafka = KafkaSettings::new(stack.kafka.clone());
        ensure_topics(&kafka, &[TopicSpec::of(&topics, topics.desired())]).await?;
        let producer = RecordProducer::new(&kafka, AvroCodec::new(RegistryClient::new(&stack.registry_url)))?;
        let env = support::pipeline_env(db.url(), &stack.kafka, &graph_url, &name, extra);
        let config = roomsync::config::Config::load_with_env(None, env.clone())?;
        let group = roomsync::stages::graph_sink(&config)?.consumer_group;
        let logs = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&logs)?;
        Ok(World { _db: db, pg, emu, topics, producer, env, group, logs })
    }

    /// Starts a `roomsync run --stage graph-sink` process logging to `<logs>/<name>.log`.
    async fn sink(&self, name: &str) -> anyhow::Result<Process> {
        Process::start(&["run", "--stage", "graph-sink"], self.env.clone(), &self.logs.join(format!("{name}.log")))
            .await
    }

    /// Sends a desired record; returns its offset.
    async fn send(&self, item: DesiredItem) -> anyhow::Result<i64> {
        let key = format!("{}/{}", item.mailbox, item.item_key);
        let (_, offset) = self.producer.send(&self.topics.desired(), &key, Some(0), Some(&item)).await?;
        Ok(offset)
    }

    /// Whether PostgreSQL's offsets say the record at `offset` was applied.
    async fn applied(&self, offset: i64) -> anyhow::Result<bool> {
        Ok(stored_offset(&self.pg, &self.group, &self.topics.desired()).await?.is_some_and(|next| next > offset))
    }
}

/// A session timeout of 6 s (Kafka's default is 45 s), so a frozen or evicted member is noticed quickly.
fn short_sessions() -> Vec<(&'static str, String)> {
    vec![("ROOMSYNC__KAFKA__PROPERTIES__session.timeout.ms", "6000".to_owned())]
}

/// The value of one labelled sample of a metric in a process's exposition (0 when absent).
async fn sample(process: &Process, name: &str, label: &str) -> anyhow::Result<f64> {
    let (_, text) = process.get("/metrics").await?;
    Ok(text
        .lines()
        .filter(|line| line.starts_with(name) && line.contains(label))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// Seconds between the first and the last request the emulator refused with `status`.
fn refused_for(emu: &Emulator, status: u16) -> f64 {
    let times: Vec<chrono::DateTime<chrono::FixedOffset>> = emu
        .requests()
        .iter()
        .filter(|r| r.status == status)
        .filter_map(|r| chrono::DateTime::parse_from_rfc3339(&r.timestamp).ok())
        .collect();
    match (times.iter().min(), times.iter().max()) {
        (Some(first), Some(last)) => (*last - *first).as_seconds_f64(),
        _ => 0.0,
    }
}

/// Every Graph request fails with 503 while on.
fn storm(emu: &Emulator, on: bool) {
    let mut faults = emu.faults();
    faults.random_error_rate = if on { 1.0 } else { 0.0 };
    faults.random_error_statuses = vec![503];
    emu.set_faults(faults);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_frozen_inside_a_unit_never_overwrites_what_its_successor_applied() -> anyhow::Result<()> {
    // Each request takes 2 s, so the test sees the unit between its intent and its result.
    let world = World::start("fence", 2_000, &short_sessions()).await?;
    let (pg, emu) = (&world.pg, &world.emu);
    let a = world.sink("a").await?;
    let v0 = world.send(version("v0", 9)).await?;
    wait_until("sink A to apply v0", Duration::from_secs(60), || async { Ok(world.applied(v0).await?.then_some(())) })
        .await
        .with_context(|| a.log_tail(30))?;

    // v1: once A has announced its PATCH (txn A), freeze it, in the middle of its unit.
    world.send(version("v1", 10)).await?;
    wait_until("sink A to announce the update to v1", Duration::from_secs(30), || async {
        Ok(row(pg).await?.filter(|(_, _, intent)| intent == "update"))
    })
    .await?;
    a.freeze()?;
    let v2 = world.send(version("v2", 11)).await?;
    let mut b = world.sink("b").await?;

    // B takes the partition once A's session has ended. Without fencing it applies v2 at once; with fencing it
    // waits for A's unit. Either is observable without a clock.
    let successor = wait_until("sink B to apply v2 or wait for A's unit", Duration::from_secs(90), || async {
        let applied = world.applied(v2).await?;
        Ok((applied || waiting_for_a_unit(pg).await?).then_some(applied))
    })
    .await
    .with_context(|| b.log_tail(30))?;
    println!("successor applied v2 while A was frozen: {successor}");
    a.thaw()?;

    // A finishes the unit it started (one more item applied in its process), and B applies v2 after it.
    wait_until("sink A to finish its unit", Duration::from_secs(60), || async {
        Ok((a.metric("roomsync_graph_sink_items_total").await? >= 2.0).then_some(()))
    })
    .await
    .with_context(|| a.log_tail(30))?;
    let want = version("v2", 11).content_hash;
    let settled = wait_until("the calendar and the mapping row to hold v2", Duration::from_secs(60), || async {
        let row = row(pg).await?;
        let events = events(emu);
        let done = world.applied(v2).await?
            && matches!(&row, Some((Some(hash), Some(change_key), intent))
                if *hash == want && intent == "none" && events == [("v2".to_owned(), change_key.clone())]);
        Ok(done.then_some(()))
    })
    .await;
    if let Err(err) = settled {
        anyhow::bail!(
            "{err}: calendar {:?}, mapping row {:?}\n--- A ---\n{}\n--- B ---\n{}",
            events(emu),
            row(pg).await?,
            a.log_tail(20),
            b.log_tail(20)
        );
    }
    b.check_alive()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_longer_than_the_poll_interval_keeps_its_member_in_the_group() -> anyhow::Result<()> {
    // librdkafka evicts a member that does not poll for 7 s; the storm holds the unit for longer than that.
    let mut extra = short_sessions();
    extra.push(("ROOMSYNC__KAFKA__PROPERTIES__max.poll.interval.ms", "7000".to_owned()));
    let world = World::start("liveness", 0, &extra).await?;
    let mut sink = world.sink("sink").await?;
    wait_until("the sink to be assigned its partitions", Duration::from_secs(60), || async {
        Ok((sample(&sink, "roomsync_graph_sink_rebalances_total", "kind=\"assign\"").await? >= 1.0).then_some(()))
    })
    .await
    .with_context(|| sink.log_tail(30))?;
    storm(&world.emu, true);
    let offset = world.send(version("v0", 9)).await?;
    wait_until("Graph to have refused the sink's unit for 12 s", Duration::from_secs(60), || async {
        Ok((refused_for(&world.emu, 503) >= 12.0).then_some(()))
    })
    .await?;
    storm(&world.emu, false);
    wait_until("the sink to apply the record", Duration::from_secs(60), || async {
        Ok(world.applied(offset).await?.then_some(()))
    })
    .await
    .with_context(|| sink.log_tail(30))?;
    // A member evicted during the unit finds out at its next poll: the next record comes only after that.
    let next = world.send(upsert(ROOM, ReservationKind::Event, 4712, "after the storm", 16, 9)).await?;
    wait_until("the sink to apply the next record", Duration::from_secs(60), || async {
        Ok(world.applied(next).await?.then_some(()))
    })
    .await
    .with_context(|| sink.log_tail(30))?;

    let revoked = sample(&sink, "roomsync_graph_sink_rebalances_total", "kind=\"revoke\"").await?;
    let assigned = sample(&sink, "roomsync_graph_sink_rebalances_total", "kind=\"assign\"").await?;
    let restarts = sink.metric("roomsync_stage_restarts_total").await?;
    assert_eq!(
        (revoked, assigned, restarts),
        (0.0, 1.0, 0.0),
        "the member stayed in its group through the storm: no revoke, no second assignment, no restart\n{}",
        sink.log_tail(30)
    );
    assert_eq!(events(&world.emu).len(), 2);
    sink.check_alive()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_failing_longer_than_its_retry_limit_is_abandoned_and_applied_again() -> anyhow::Result<()> {
    let mut extra = short_sessions();
    extra.push(("ROOMSYNC__GRAPH_SINK__UNIT_RETRY_LIMIT", "2s".to_owned()));
    let world = World::start("abandon", 0, &extra).await?;
    let mut sink = world.sink("sink").await?;
    storm(&world.emu, true);
    let offset = world.send(version("v0", 9)).await?;
    wait_until("the sink to abandon the unit", Duration::from_secs(60), || async {
        Ok((sink.metric("roomsync_graph_sink_units_abandoned_total").await? >= 1.0).then_some(()))
    })
    .await
    .with_context(|| sink.log_tail(30))?;
    assert!(!world.applied(offset).await?, "an abandoned unit commits nothing");
    storm(&world.emu, false);
    wait_until("the rejoined sink to apply the record", Duration::from_secs(60), || async {
        Ok(world.applied(offset).await?.then_some(()))
    })
    .await
    .with_context(|| sink.log_tail(30))?;
    let subjects: Vec<String> = events(&world.emu).into_iter().map(|(subject, _)| subject).collect();
    assert_eq!(subjects, ["v0"]);
    assert_eq!(
        row(&world.pg).await?.map(|(hash, _, intent)| (hash, intent)),
        Some((Some("v0-15-9".into()), "none".into()))
    );
    sink.check_alive()?;
    Ok(())
}

/// Whether any record of `topic` (read from the beginning by `consumer`, which keeps what it read) holds `needle`.
fn topic_holds(consumer: &rdkafka::consumer::BaseConsumer, seen: &mut Vec<Vec<u8>>, needle: &str) -> bool {
    use rdkafka::message::Message;
    while let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
        seen.push(message.payload().unwrap_or_default().to_vec());
    }
    seen.iter().any(|payload| payload.windows(needle.len()).any(|w| w == needle.as_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cdc_reader_acts_per_slot_and_a_standby_takes_over_when_it_dies() -> anyhow::Result<()> {
    use rdkafka::consumer::Consumer;

    let stack = Stack::from_env();
    let db = TestDatabase::create().await?;
    let pg = db.connect().await?;
    migrations::apply(&mut db.connect().await?).await?;
    let name = unique_name("standby");
    let env = support::pipeline_env(db.url(), &stack.kafka, "http://127.0.0.1:9", &name, &[]);
    let logs = std::env::temp_dir().join(&name);
    std::fs::create_dir_all(&logs)?;
    let cdc = ["run", "--stage", "cdc"];
    let snapshot_marked = || async {
        let row = pg
            .query_opt("select obj_description(oid, 'pg_publication') from pg_publication where pubname = $1", &[&name])
            .await?;
        anyhow::Ok(row.and_then(|r| r.get::<_, Option<String>>(0)).is_some())
    };

    let slot_exists = || async {
        Ok(pg.query_opt("select 1 from pg_replication_slots where slot_name = $1", &[&name]).await?.map(|_| ()))
    };
    let reset = || async {
        wait_until("the slot to be dropped", Duration::from_secs(30), || async {
            Ok(pg.execute("select pg_drop_replication_slot($1)", &[&name]).await.is_ok().then_some(()))
        })
        .await?;
        pg.batch_execute(&format!("comment on publication \"{name}\" is null")).await?;
        anyhow::Ok(())
    };

    // Reader A is frozen inside its first snapshot: its slot created (and inactive), the snapshot not yet marked
    // complete. The snapshot takes about 0.1 s, so this may take a few attempts.
    let mut a = Process::start(&cdc, env.clone(), &logs.join("a.log")).await?;
    let mut attempt = 1;
    loop {
        testkit::wait_until_every(
            "reader A to create its slot",
            Duration::from_secs(60),
            Duration::from_millis(1),
            slot_exists,
        )
        .await
        .with_context(|| a.log_tail(30))?;
        a.freeze()?;
        if !snapshot_marked().await? {
            break;
        }
        anyhow::ensure!(attempt < 10, "reader A finished its snapshot before it could be frozen, {attempt} times");
        attempt += 1;
        a.kill().await?;
        reset().await?;
        a.restart().await?;
    }

    // B finds the slot inactive and its snapshot unmarked. It must stand by, not drop A's slot for a snapshot of
    // its own.
    let mut b = Process::start(&cdc, env.clone(), &logs.join("b.log")).await?;
    let standing_by =
        wait_until("reader B to stand by or take a snapshot of its own", Duration::from_secs(60), || async {
            let standby = b.metric("roomsync_stage_standby").await? == 1.0;
            Ok((standby || snapshot_marked().await?).then_some(standby))
        })
        .await
        .with_context(|| b.log_tail(30))?;
    assert!(standing_by, "reader B dropped the slot of frozen reader A and took its own snapshot\n{}", b.log_tail(20));
    a.thaw()?;
    wait_until("reader A's snapshot", Duration::from_secs(60), || async { Ok(snapshot_marked().await?.then_some(())) })
        .await
        .with_context(|| a.log_tail(30))?;

    // A dies; a change made afterwards reaches Kafka through B.
    a.kill().await?;
    let marker = format!("takeover {name}");
    pg.execute("update bb_event set name = $1 where id = (select min(id) from bb_event)", &[&marker]).await?;
    let consumer: rdkafka::consumer::BaseConsumer = KafkaSettings::new(stack.kafka.clone())
        .client_config()
        .set("group.id", unique_name("standby_check"))
        .create()?;
    let mut list = rdkafka::TopicPartitionList::new();
    list.add_partition_offset(&format!("{name}.cdc.public.bb_event"), 0, rdkafka::Offset::Beginning)?;
    consumer.assign(&list)?;
    let mut seen = Vec::new();
    wait_until("the change to reach Kafka through reader B", Duration::from_secs(90), || {
        let found = topic_holds(&consumer, &mut seen, &marker);
        async move { Ok(found.then_some(())) }
    })
    .await
    .with_context(|| b.log_tail(30))?;
    assert_eq!(b.metric("roomsync_stage_standby").await?, 0.0, "B took the role over");
    b.check_alive()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_graph_source_acts_per_installation_and_a_standby_takes_over_when_it_dies() -> anyhow::Result<()> {
    use rdkafka::consumer::Consumer;

    let stack = Stack::from_env();
    let db = TestDatabase::create().await?;
    let mut pg = db.connect().await?;
    migrations::apply(&mut pg).await?;
    pg.batch_execute(include_str!("../fixtures/local/room_mappings.sql")).await?;
    let (_emu, graph_url) = graph(0).await?;
    let name = unique_name("source_standby");
    let env = support::pipeline_env(db.url(), &stack.kafka, &graph_url, &name, &[]);
    let logs = std::env::temp_dir().join(&name);
    std::fs::create_dir_all(&logs)?;
    let source = ["run", "--stage", "graph-source"];

    // A watches every mapped room; its first rounds are done (the next poll is 5 minutes away, no webhooks).
    let mut a = Process::start(&source, env.clone(), &logs.join("a.log")).await?;
    wait_until("source A's first round of every room", Duration::from_secs(60), || async {
        let rooms = a.metric("roomsync_graph_source_rooms_watched").await?;
        let rounds = a.metric("roomsync_graph_source_rounds_total").await?;
        Ok((rooms > 0.0 && rounds >= rooms).then_some(()))
    })
    .await
    .with_context(|| a.log_tail(30))?;

    // B stands by: no rounds of its own, so no duplicate reads, records or subscriptions.
    let mut b = Process::start(&source, env.clone(), &logs.join("b.log")).await?;
    let standing_by = wait_until("source B to stand by or start rounds", Duration::from_secs(60), || async {
        let standby = b.metric("roomsync_stage_standby").await? == 1.0;
        let rounds = b.metric("roomsync_graph_source_rounds_total").await?;
        Ok((standby || rounds > 0.0).then_some(standby))
    })
    .await
    .with_context(|| b.log_tail(30))?;
    assert!(standing_by, "a second graph source watched the rooms too\n{}", b.log_tail(20));

    // The database ends every role session (a restart, an operator): both processes stay up, and one of them is
    // active again, its first rounds done.
    let rooms = a.metric("roomsync_graph_source_rooms_watched").await?;
    let rounds_before = a.metric("roomsync_graph_source_rounds_total").await?;
    pg.execute(
        "select pg_terminate_backend(pid) from pg_stat_activity
         where application_name = 'roomsync-graph-source' and datname = current_database()",
        &[],
    )
    .await?;
    let a_active =
        wait_until("one graph source active again after its session ended", Duration::from_secs(60), || async {
            let restarted = a.metric("roomsync_stage_restarts_total").await? >= 1.0
                && b.metric("roomsync_stage_restarts_total").await? >= 1.0;
            let (a_standby, b_standby) =
                (a.metric("roomsync_stage_standby").await?, b.metric("roomsync_stage_standby").await?);
            let a_rounds = a.metric("roomsync_graph_source_rounds_total").await? - rounds_before;
            let b_rounds = b.metric("roomsync_graph_source_rounds_total").await?;
            let a_active = a_standby == 0.0 && b_standby == 1.0 && a_rounds >= rooms;
            let b_active = b_standby == 0.0 && a_standby == 1.0 && b_rounds >= rooms;
            Ok((restarted && (a_active || b_active)).then_some(a_active))
        })
        .await
        .with_context(|| format!("{}\n---\n{}", a.log_tail(20), b.log_tail(20)))?;
    a.check_alive()?;
    b.check_alive()?;
    let (mut active, mut survivor) = if a_active { (a, b) } else { (b, a) };

    // Someone books a room in Outlook; the active source will not look before 5 minutes. It dies, the other one
    // takes over and reports the booking.
    let subject = format!("booked in Outlook {name}");
    let start = chrono::Utc::now() + chrono::TimeDelta::days(2);
    let at = |t: chrono::DateTime<chrono::Utc>| serde_json::json!({"dateTime": t.format("%Y-%m-%dT%H:%M:%S").to_string(), "timeZone": "UTC"});
    let body =
        serde_json::json!({"subject": subject, "start": at(start), "end": at(start + chrono::TimeDelta::hours(1))});
    let booked = reqwest::Client::new()
        .post(format!("{graph_url}/_emulator/mailboxes/{ROOM}/bookings"))
        .json(&body)
        .send()
        .await?;
    anyhow::ensure!(booked.status().is_success(), "booking in the emulator: {}", booked.status());
    active.kill().await?;
    let consumer: rdkafka::consumer::BaseConsumer = KafkaSettings::new(stack.kafka.clone())
        .client_config()
        .set("group.id", unique_name("source_check"))
        .create()?;
    let mut list = rdkafka::TopicPartitionList::new();
    list.add_partition_offset(&Topics::new(name.clone()).graph_events(), 0, rdkafka::Offset::Beginning)?;
    consumer.assign(&list)?;
    let mut seen = Vec::new();
    wait_until("the Outlook booking to reach Kafka through the other source", Duration::from_secs(90), || {
        let found = topic_holds(&consumer, &mut seen, &subject);
        async move { Ok(found.then_some(())) }
    })
    .await
    .with_context(|| survivor.log_tail(30))?;
    assert_eq!(survivor.metric("roomsync_stage_standby").await?, 0.0, "the other source took the role over");
    survivor.check_alive()?;
    Ok(())
}
