//! The cdc-reader and the resolver against the real stack (PostgreSQL 15, the Kafka broker, the schema
//! registry): the sample data becomes the desired state of the mapped room calendars, and live changes
//! behave as the domain rules say.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::NaiveDateTime;
use resolver::{Config, TransactionMode, WindowConfig};
use schema_registry::{AvroCodec, RegistryClient};
use testkit::{unique_name, Stack, TestDatabase};
use tokio::sync::oneshot;
use vocabulary::records::{AvroRecord, DesiredItem, UpsertOrDelete};
use vocabulary::topics::Topics;

const HALL_A: &str = "hall-a@fjordvik.kommune.no";
const HALL_B: &str = "hall-b@fjordvik.kommune.no";
const STORSALEN: &str = "storsalen@fjordvik.kommune.no";

fn utc(s: &str) -> i64 {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").map(|t| t.and_utc().timestamp_micros()).unwrap_or_default()
}

async fn desired(topic: &str, n: usize, codec: &AvroCodec) -> Result<Vec<DesiredItem>> {
    // The resolver creates the topic; until it exists, reading it fails: wait for it.
    let records = testkit::wait_until("the desired topic", Duration::from_secs(120), || async {
        Ok(testkit::consume_all(topic, n, Duration::from_secs(60)).await.ok())
    })
    .await?;
    let mut out = Vec::new();
    for record in records {
        let bytes = record.value.context("desired records are never tombstones")?;
        out.push(DesiredItem::from_avro(codec.decode(&bytes).await?.1)?);
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_data_becomes_the_desired_state_of_the_mapped_rooms() -> Result<()> {
    let stack = Stack::from_env();
    let db = TestDatabase::create().await?;
    let mut client = db.connect().await?;
    migrations::apply(&mut client).await?;
    client
        .batch_execute(&format!(
            "insert into bb_resource_outlook_item (resource_id, outlook_item_id, outlook_item_name, active) values \
             (1, '{HALL_A}', 'Hall A', 1), (2, '{HALL_B}', 'Hall B', 1), (4, '{STORSALEN}', 'Storsalen', 1)"
        ))
        .await?;

    let prefix = unique_name("rs");
    let mut cdc = cdc_reader::Config::new(db.url(), testkit::kafka_bootstrap());
    cdc.slot = unique_name("slot");
    cdc.publication = unique_name("pub");
    cdc.kafka.topic_prefix = prefix.clone();
    cdc.schema_registry_url = stack.registry_url.clone();
    cdc.status_interval = Duration::from_millis(100);
    let publication = cdc.publication.clone();
    let (stop_cdc, cdc_stopped) = oneshot::channel::<()>();
    let cdc_task = tokio::spawn(cdc_reader::run(cdc, async move {
        let _ = cdc_stopped.await;
    }));
    // Start the resolver on a complete snapshot, as in production after the first install.
    testkit::wait_until("the initial snapshot", Duration::from_secs(60), || {
        let (client, publication) = (&client, publication.clone());
        async move {
            let row = client
                .query_opt(
                    "select obj_description(oid, 'pg_publication') from pg_publication where pubname = $1",
                    &[&publication],
                )
                .await?;
            Ok(row.and_then(|r| r.get::<_, Option<String>>(0)).map(|_| ()))
        }
    })
    .await?;

    let mut config = Config::new(testkit::kafka_bootstrap(), stack.registry_url.clone());
    config.topic_prefix = prefix.clone();
    config.group = unique_name("resolver");
    // The sample data lies in spring 2026: a wide past margin keeps it inside the window.
    config.window = WindowConfig {
        past: Duration::from_secs(3 * 365 * 86_400),
        horizon: Duration::from_secs(3 * 365 * 86_400),
        tick: Duration::from_secs(5),
    };
    config.transactions = TransactionMode::QuietPeriod(Duration::from_millis(300));
    let (stop_resolver, resolver_stopped) = oneshot::channel::<()>();
    let resolver_task = tokio::spawn(resolver::run(config, async move {
        let _ = resolver_stopped.await;
    }));

    let topic = Topics::new(prefix).desired();
    let codec = AvroCodec::new(RegistryClient::new(&stack.registry_url));
    let initial = desired(&topic, 10, &codec).await?;
    let by_key: BTreeMap<(String, String), &DesiredItem> =
        initial.iter().map(|d| ((d.mailbox.clone(), d.item_key.clone()), d)).collect();
    let keys: Vec<(&str, &str)> = by_key.keys().map(|(m, k)| (m.as_str(), k.as_str())).collect();
    assert_eq!(
        keys,
        vec![
            (HALL_A, "booking:204"),
            (HALL_A, "event:305"),
            (HALL_B, "allocation:102"),
            (HALL_B, "booking:201"),
            (HALL_B, "booking:202"),
            (HALL_B, "booking:203"),
            (HALL_B, "event:305"),
            (STORSALEN, "event:301"),
            (STORSALEN, "event:302"),
            (STORSALEN, "event:304"),
        ],
        "allocation 101 is covered by bookings 201+202, 104 by 204; the cancelled 103/205 and unmapped rooms are absent"
    );
    let after_dst = by_key[&(HALL_B.to_owned(), "allocation:102".to_owned())].content.as_ref().context("content")?;
    assert_eq!(
        (after_dst.start, after_dst.end),
        (utc("2026-03-31 17:00"), utc("2026-03-31 18:00")),
        "19:00-20:00 summer time, after booking 203 took 18:00-19:00"
    );
    let before_dst = by_key[&(HALL_B.to_owned(), "booking:201".to_owned())].content.as_ref().context("content")?;
    assert_eq!(before_dst.start, utc("2026-03-24 17:00"), "18:00 winter time");
    let private = by_key[&(STORSALEN.to_owned(), "event:302".to_owned())].content.as_ref().context("content")?;
    assert_eq!((private.subject.as_str(), private.body.as_deref()), ("Konfirmasjonsfest", None));

    // A save of event 305 that rewrites its links in one transaction changes nothing; cancelling allocation
    // 102 afterwards is the next (and only) new record.
    client
        .batch_execute(
            "begin; update bb_event set name = name where id = 305; \
             delete from bb_event_resource where event_id = 305; \
             insert into bb_event_resource (event_id, resource_id) values (305, 1), (305, 2); commit;",
        )
        .await?;
    client.batch_execute("update bb_allocation set id_string = cast(id as varchar)").await?;
    client.batch_execute("update bb_allocation set active = 0 where id = 102").await?;
    let all = desired(&topic, 11, &codec).await?;
    let last = all.last().context("a record")?;
    assert_eq!((last.item_key.as_str(), last.op), ("allocation:102", UpsertOrDelete::Delete));

    let _ = stop_resolver.send(());
    let _ = stop_cdc.send(());
    tokio::time::timeout(Duration::from_secs(30), resolver_task).await???;
    tokio::time::timeout(Duration::from_secs(30), cdc_task).await???;
    Ok(())
}
