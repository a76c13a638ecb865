//! Throughput of the reader (not a timed test): N row changes committed while the reader is stopped, then the
//! time until the slot's confirmed position covers them all (the reader confirms only what Kafka acknowledged,
//! so this is commit -> Kafka ack), against pg_recvlogical reading the same WAL into /dev/null.
//!
//! Run: `CARGO_TARGET_DIR=... cargo bench -p cdc-reader --bench throughput [-- N]` with the local stack up.
//! Prints one JSON object.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cdc_reader::encoder::InProcessRegistry;
use cdc_reader::Config;
use testkit::{unique_name, TestDatabase};
use tokio::sync::oneshot;

async fn lsn_of(client: &tokio_postgres::Client, sql: &str) -> Result<u64> {
    let text: String = client.query_one(sql, &[]).await?.get(0);
    Ok(text.parse()?)
}

async fn confirmed(client: &tokio_postgres::Client, slot: &str) -> Result<u64> {
    let row = client
        .query_one(
            "select coalesce((confirmed_flush_lsn - '0/0')::text, '0') from pg_replication_slots where slot_name = $1",
            &[&slot],
        )
        .await?;
    Ok(row.get::<_, String>(0).parse()?)
}

fn spawn(config: Config) -> (oneshot::Sender<()>, tokio::task::JoinHandle<Result<(), cdc_reader::CdcError>>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let registry = Arc::new(InProcessRegistry::default());
    let task = tokio::spawn(cdc_reader::run_with_encoder(config, registry, async move {
        let _ = stopped.await;
    }));
    (stop, task)
}

async fn wait_confirmed(client: &tokio_postgres::Client, slot: &str, target: u64) -> Result<()> {
    loop {
        if confirmed(client, slot).await? >= target {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let changes: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(200_000);
    let db = TestDatabase::create().await?;
    let client = db.connect().await?;
    let mut config = Config::new(db.url(), testkit::kafka_bootstrap());
    config.slot = unique_name("bench");
    config.publication = unique_name("bench");
    config.kafka.topic_prefix = unique_name("bench");
    config.status_interval = Duration::from_millis(100);
    if let Ok(linger) = std::env::var("BENCH_LINGER_MS") {
        config.kafka.client.insert("linger.ms".into(), linger);
    }

    // First start: publication, slot and snapshot; then stop so the changes pile up in the slot.
    let (stop, task) = spawn(config.clone());
    let marker = format!("roomsync: snapshot complete for slot {}", config.slot);
    loop {
        let row = client
            .query_opt(
                "select obj_description(oid, 'pg_publication') from pg_publication where pubname = $1",
                &[&config.publication],
            )
            .await?;
        if row.and_then(|r| r.get::<_, Option<String>>(0)).as_deref() == Some(marker.as_str()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(());
    task.await??;
    let baseline_slot = unique_name("baseline");
    client.execute("select pg_create_logical_replication_slot($1, 'pgoutput')", &[&baseline_slot]).await?;

    // N row changes: inserts of allocations in transactions of 10,000 (a season generation), then one
    // full-table UPDATE (the id_string pattern) for the rest.
    let inserts = changes / 2;
    let write_started = Instant::now();
    let mut done = 0;
    while done < inserts {
        let batch = (inserts - done).min(10_000) as i64;
        client
            .execute(
                "insert into bb_allocation (organization_id, from_, to_, season_id, building_name) \
                 select a.organization_id, a.from_ + make_interval(days => g::int), a.to_ + make_interval(days => g::int), \
                 a.season_id, 'Bench hall' from bb_allocation a, generate_series(1, $1::int8) g where a.id = 101",
                &[&batch],
            )
            .await?;
        done += batch as usize;
    }
    let rows: i64 = client.query_one("select count(*) from bb_allocation", &[]).await?.get(0);
    client.batch_execute("update bb_allocation set id_string = cast(id as varchar)").await?;
    let total_changes = inserts as i64 + rows;
    let write_seconds = write_started.elapsed().as_secs_f64();
    let end = lsn_of(&client, "select (pg_current_wal_lsn() - '0/0')::text").await?;
    let end_text: String = client.query_one("select pg_current_wal_lsn()::text", &[]).await?.get(0);

    // Baseline: pg_recvlogical decoding the same WAL with the same publication.
    let url = db.url().to_owned();
    let baseline_started = Instant::now();
    let status = tokio::process::Command::new("pg_recvlogical")
        .args(["-d", &url, "--slot", &baseline_slot, "--start", "--endpos", &end_text, "-f", "/dev/null"])
        .args(["-o", "proto_version=1", "-o"])
        .arg(format!("publication_names={}", config.publication))
        .status()
        .await
        .context("running pg_recvlogical")?;
    let baseline_seconds = baseline_started.elapsed().as_secs_f64();
    client.execute("select pg_drop_replication_slot($1)", &[&baseline_slot]).await?;

    // The reader: from start until the slot confirms the end position (every record acknowledged by Kafka).
    let reader_started = Instant::now();
    let (stop, task) = spawn(config.clone());
    wait_confirmed(&client, &config.slot, end).await?;
    let reader_seconds = reader_started.elapsed().as_secs_f64();
    let _ = stop.send(());
    task.await??;

    // The initial snapshot of the same (now large) tables: fresh slot, every row copied and acknowledged.
    client.execute("select pg_drop_replication_slot($1)", &[&config.slot]).await?;
    client.batch_execute(&format!("comment on publication {} is null", config.publication)).await?;
    let snapshot_rows: i64 = client
        .query_one(
            "select (select count(*) from bb_allocation) + (select count(*) from bb_event) + \
             (select count(*) from bb_resource) + (select count(*) from bb_organization)",
            &[],
        )
        .await?
        .get(0);
    let snapshot_started = Instant::now();
    let (stop, task) = spawn(config.clone());
    loop {
        let row = client
            .query_opt(
                "select obj_description(oid, 'pg_publication') from pg_publication where pubname = $1",
                &[&config.publication],
            )
            .await?;
        if row.and_then(|r| r.get::<_, Option<String>>(0)).as_deref() == Some(marker.as_str()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let snapshot_seconds = snapshot_started.elapsed().as_secs_f64();
    let _ = stop.send(());
    task.await??;
    let peak_rss_kb = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()));

    let report = serde_json::json!({
        "changes": total_changes,
        "transactions": inserts.div_ceil(10_000) + 1,
        "write_seconds": write_seconds,
        "reader": {
            "seconds": reader_seconds,
            "changes_per_second": total_changes as f64 / reader_seconds,
            "measures": "reader start until confirmed_flush_lsn covers every change (commit -> Kafka ack, acks=all, idempotent)",
        },
        "pg_recvlogical": {
            "seconds": baseline_seconds,
            "changes_per_second": total_changes as f64 / baseline_seconds,
            "exit_ok": status.success(),
            "measures": "pg_recvlogical pgoutput proto 1 on the same WAL to /dev/null",
        },
        "reader_vs_baseline": baseline_seconds / reader_seconds,
        "snapshot": {
            "rows": snapshot_rows,
            "seconds": snapshot_seconds,
            "rows_per_second": snapshot_rows as f64 / snapshot_seconds,
            "measures": "fresh slot: rows copied under the exported snapshot until all acknowledged (op r)",
        },
        "peak_rss_kb_whole_bench_process": peak_rss_kb,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
