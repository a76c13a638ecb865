//! Throughput of the reader (not a timed test): N row changes committed while the reader is stopped, then the
//! time until the slot's confirmed position covers them all (the reader confirms only what Kafka acknowledged,
//! so this is commit -> Kafka ack), against pg_recvlogical reading the same WAL into /dev/null. Two more
//! measurements separate the reader's code from the broker: the reader's decode + encode work on the same WAL
//! without Kafka, and a plain idempotent producer with the reader's settings on the same broker (its ceiling).
//! Each is measured `BENCH_RUNS` times (default 3, interleaved) and reported as min / median / max.
//!
//! Run: `CARGO_TARGET_DIR=... cargo bench -p cdc-reader --bench throughput [-- N]` with the local stack up.
//! Prints one JSON object.

#[path = "throughput/standins.rs"]
mod standins;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cdc_reader::encoder::InProcessRegistry;
use cdc_reader::Config;
use standins::{broker_only, decode_only, spread};
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

fn spawn(config: Config) -> (oneshot::Sender<()>, ReaderTask) {
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

type ReaderTask = tokio::task::JoinHandle<Result<(), cdc_reader::CdcError>>;

/// Waits until the reader marked its snapshot complete; a reader that stopped instead (e.g. refused settings)
/// ends the benchmark with its error rather than a hang.
async fn wait_snapshot_marker(client: &tokio_postgres::Client, config: &Config, task: &mut ReaderTask) -> Result<()> {
    loop {
        if cdc_reader::setup::snapshot_complete(client, config).await? {
            return Ok(());
        }
        if task.is_finished() {
            task.await??;
            anyhow::bail!("the reader stopped before its snapshot completed");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Drops a slot once its last session has let go of it (a stopped client's walsender exits asynchronously).
async fn drop_slot(client: &tokio_postgres::Client, slot: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let active: bool = client
            .query_one(
                "select coalesce(bool_or(active), false) from pg_replication_slots where slot_name = $1",
                &[&slot],
            )
            .await?
            .get(0);
        if !active {
            client.execute("select pg_drop_replication_slot($1)", &[&slot]).await?;
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "slot {slot} still active after 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn reader_config(db: &TestDatabase) -> Config {
    let mut config = Config::new(db.connections(&unique_name("bench")));
    config.slot = unique_name("bench");
    config.publication = unique_name("bench");
    config.status_interval = Duration::from_millis(100);
    for (variable, setting) in [
        ("BENCH_LINGER_MS", "linger.ms"),
        ("BENCH_BATCH_SIZE", "batch.size"),
        ("BENCH_BATCH_MESSAGES", "batch.num.messages"),
        ("BENCH_COMPRESSION", "compression.codec"),
    ] {
        if let Ok(value) = std::env::var(variable) {
            config.connections.kafka.properties.insert(setting.into(), value);
        }
    }
    config
}

#[tokio::main]
async fn main() -> Result<()> {
    let changes: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(200_000);
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(3).max(1);
    let db = TestDatabase::create().await?;
    let client = db.connect().await?;

    // One reader (own slot, publication and topics) per run: publication, slot and snapshot of the sample data,
    // then stopped so the changes pile up in its slot. Plain slots for the two decode-only baselines.
    let mut readers = Vec::new();
    for _ in 0..runs {
        let config = reader_config(&db);
        let (stop, mut task) = spawn(config.clone());
        wait_snapshot_marker(&client, &config, &mut task).await?;
        let _ = stop.send(());
        task.await??;
        readers.push(config);
    }
    let mut recvlogical_slots = Vec::new();
    let mut decode_configs = Vec::new();
    for _ in 0..runs {
        let slot = unique_name("baseline");
        client.execute("select pg_create_logical_replication_slot($1, 'pgoutput')", &[&slot]).await?;
        recvlogical_slots.push(slot);
        let mut decode = readers[0].clone();
        decode.slot = unique_name("decode");
        client.execute("select pg_create_logical_replication_slot($1, 'pgoutput')", &[&decode.slot]).await?;
        decode_configs.push(decode);
    }

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

    let per_second = |seconds: &[f64]| seconds.iter().map(|s| total_changes as f64 / s).collect::<Vec<_>>();
    let (mut recvlogical, mut decode, mut reader, mut broker) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut recvlogical_ok = true;
    let mut sample = None;
    for run in 0..runs {
        // Baseline: pg_recvlogical decoding the same WAL with the same publication.
        let url = db.url().to_owned();
        let started = Instant::now();
        let status = tokio::process::Command::new("pg_recvlogical")
            .args(["-d", &url, "--slot", &recvlogical_slots[run], "--start", "--endpos", &end_text])
            .args(["-f", "/dev/null", "-o", "proto_version=1", "-o"])
            .arg(format!("publication_names={}", readers[0].publication))
            .status()
            .await
            .context("running pg_recvlogical")?;
        recvlogical.push(started.elapsed().as_secs_f64());
        recvlogical_ok &= status.success();
        drop_slot(&client, &recvlogical_slots[run]).await?;

        // The reader's own work on the same WAL, no Kafka.
        let decoded = decode_only(&decode_configs[run], total_changes as usize, end).await?;
        decode.push(decoded.seconds);
        drop_slot(&client, &decode_configs[run].slot).await?;

        // The reader: from start until the slot confirms the end position (every record acknowledged by Kafka).
        let config = &readers[run];
        let started = Instant::now();
        let (stop, task) = spawn(config.clone());
        wait_confirmed(&client, &config.slot, end).await?;
        reader.push(started.elapsed().as_secs_f64());
        let _ = stop.send(());
        task.await??;

        // The broker's ceiling: a plain producer, same settings, same number of records of the reader's size.
        let (key, value) = (decoded.sample_key, decoded.sample_value);
        broker.push(broker_only(config, total_changes as usize, &key, &value).await?);
        sample = Some((key.len(), value.len()));
    }
    for config in &readers[1..] {
        drop_slot(&client, &config.slot).await?;
    }

    // The initial snapshot of the same (now large) tables: fresh slot, every row copied and acknowledged.
    let config = &readers[0];
    drop_slot(&client, &config.slot).await?;
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
    let (stop, mut task) = spawn(config.clone());
    wait_snapshot_marker(&client, config, &mut task).await?;
    let snapshot_seconds = snapshot_started.elapsed().as_secs_f64();
    let _ = stop.send(());
    task.await??;
    let peak_rss_kb = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()));

    let median = |values: Vec<f64>| spread(values)["median"].as_f64().unwrap_or(f64::NAN);
    let (reader_rate, recvlogical_rate) = (per_second(&reader), per_second(&recvlogical));
    let (decode_rate, broker_rate) = (per_second(&decode), per_second(&broker));
    let report = serde_json::json!({
        "changes": total_changes,
        "transactions": inserts.div_ceil(10_000) + 1,
        "runs": runs,
        "write_seconds": write_seconds,
        "kafka_client_overrides": readers[0].connections.kafka.properties,
        "reader": {
            "changes_per_second": median(reader_rate.clone()),
            "spread": spread(reader_rate.clone()),
            "seconds": spread(reader.clone()),
            "measures": "reader start until confirmed_flush_lsn covers every change (commit -> Kafka ack, acks=all, idempotent)",
        },
        "pg_recvlogical": {
            "changes_per_second": median(recvlogical_rate.clone()),
            "spread": spread(recvlogical_rate.clone()),
            "exit_ok": recvlogical_ok,
            "measures": "pg_recvlogical pgoutput proto 1 on the same WAL to /dev/null",
        },
        "reader_vs_baseline": median(reader_rate.clone()) / median(recvlogical_rate.clone()),
        "reader_without_broker": {
            "changes_per_second": median(decode_rate.clone()),
            "spread": spread(decode_rate),
            "measures": "the reader's code on the same WAL without Kafka: pgwire stream, pgoutput decode, envelope, Avro wire format (in-process ids); records discarded",
        },
        "broker_ceiling": {
            "records_per_second": median(broker_rate.clone()),
            "spread": spread(broker_rate.clone()),
            "record_bytes": sample.map(|(key, value)| serde_json::json!({"key": key, "value": value})),
            "measures": "plain rdkafka producer, the reader's settings (idempotent, acks=all), as many records of the reader's size to a 1-partition topic, until all acknowledged",
        },
        "reader_vs_broker_ceiling": median(reader_rate) / median(broker_rate),
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
