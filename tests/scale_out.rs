//! Several `roomsync` instances sharing the work (issue #14), with the real binary as child processes.
//!
//! The hazard: a member that stalls in the middle of a unit (a VM paused by its host, a process stuck in swap)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_frozen_inside_a_unit_never_overwrites_what_its_successor_applied() -> anyhow::Result<()> {
    let stack = Stack::from_env();
    let db = TestDatabase::create().await?;
    let mut pg = db.connect().await?;
    migrations::apply(&mut pg).await?;
    // Each request takes 2 s, so the test sees the unit between its intent and its result.
    let (emu, graph_url) = graph(2_000).await?;
    let name = unique_name("fence");
    let topics = Topics::new(name.clone());
    let kafka = KafkaSettings::new(stack.kafka.clone());
    ensure_topics(&kafka, &[TopicSpec::of(&topics, topics.desired())]).await?;
    let producer = RecordProducer::new(&kafka, AvroCodec::new(RegistryClient::new(&stack.registry_url)))?;
    let send = |item: DesiredItem| {
        let (producer, topic) = (&producer, topics.desired());
        async move {
            let key = format!("{}/{}", item.mailbox, item.item_key);
            let (_, offset) = producer.send(&topic, &key, Some(0), Some(&item)).await?;
            anyhow::Ok(offset)
        }
    };
    // A frozen member's session ends after 6 s (Kafka's default is 45 s).
    let extra = [("ROOMSYNC__KAFKA__PROPERTIES__session.timeout.ms", "6000".to_owned())];
    let env = support::pipeline_env(db.url(), &stack.kafka, &graph_url, &name, &extra);
    let config = roomsync::config::Config::load_with_env(None, env.clone())?;
    let group = roomsync::stages::graph_sink(&config)?.consumer_group;
    let logs = std::env::temp_dir().join(unique_name("scale_out"));
    std::fs::create_dir_all(&logs)?;
    let sink = ["run", "--stage", "graph-sink"];

    let a = Process::start(&sink, env.clone(), &logs.join("a.log")).await?;
    let v0 = send(version("v0", 9)).await?;
    wait_until("sink A to apply v0", Duration::from_secs(60), || async {
        Ok(stored_offset(&pg, &group, &topics.desired()).await?.filter(|next| *next > v0))
    })
    .await
    .with_context(|| a.log_tail(30))?;

    // v1: once A has announced its PATCH (txn A), freeze it, in the middle of its unit.
    send(version("v1", 10)).await?;
    wait_until("sink A to announce the update to v1", Duration::from_secs(30), || async {
        Ok(row(&pg).await?.filter(|(_, _, intent)| intent == "update"))
    })
    .await?;
    a.freeze()?;
    let v2 = send(version("v2", 11)).await?;
    let mut b = Process::start(&sink, env.clone(), &logs.join("b.log")).await?;

    // B takes the partition once A's session has ended. Without fencing it applies v2 at once; with fencing it
    // waits for A's unit. Either is observable without a clock.
    let successor = wait_until("sink B to apply v2 or wait for A's unit", Duration::from_secs(90), || async {
        let applied = stored_offset(&pg, &group, &topics.desired()).await?.is_some_and(|next| next > v2);
        Ok((applied || waiting_for_a_unit(&pg).await?).then_some(applied))
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
        let applied = stored_offset(&pg, &group, &topics.desired()).await?.is_some_and(|next| next > v2);
        let row = row(&pg).await?;
        let events = events(&emu);
        let done = applied
            && matches!(&row, Some((Some(hash), Some(change_key), intent))
                if *hash == want && intent == "none" && events == [("v2".to_owned(), change_key.clone())]);
        Ok(done.then_some(()))
    })
    .await;
    if let Err(err) = settled {
        anyhow::bail!(
            "{err}: calendar {:?}, mapping row {:?}\n--- A ---\n{}\n--- B ---\n{}",
            events(&emu),
            row(&pg).await?,
            a.log_tail(20),
            b.log_tail(20)
        );
    }
    b.check_alive()?;
    Ok(())
}
