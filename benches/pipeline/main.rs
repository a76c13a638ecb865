//! End-to-end benchmark of the whole pipeline in one process: booking changes committed at a fixed rate across
//! bench rooms, through PostgreSQL logical replication -> cdc-reader -> resolver -> graph-sink -> the in-process
//! Graph emulator (graph-source polling alongside), with the settings `roomsync run` gives each stage.
//!
//! ```text
//!  generator --SQL, fixed rate--> PostgreSQL --> cdc-reader --> Kafka --> resolver --> Kafka --> graph-sink
//!     | commit instant                                                                             |
//!     +------------------- latency = emulator's lastModifiedDateTime (or DELETE arrival) - commit <-+
//! ```
//!
//! `cargo bench --bench pipeline -- [--rate 200] [--seconds 30] [--rooms 50] [--ceiling]`: prints a table and
//! a JSON report. Needs the local stack (PostgreSQL, Kafka, schema registry; ROOMSYNC_TEST_* as for the tests).
//! CPU time and peak memory are those of this process, which also runs the emulator and the generator.

mod load;
mod observe;
mod probe;
mod report;
mod setup;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use load::{lock, Ledger, Rng, Shared};
use serde_json::{json, Value};

/// Command-line options (unknown ones, like the `--bench` cargo passes, are ignored).
struct Options {
    rate: f64,
    seconds: f64,
    rooms: usize,
    per_room: usize,
    ceiling: bool,
}

fn options() -> anyhow::Result<Options> {
    let mut o = Options { rate: 200.0, seconds: 30.0, rooms: 50, per_room: 4, ceiling: false };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| anyhow::anyhow!("{arg} needs a value"));
        match arg.as_str() {
            "--rate" => o.rate = value()?.parse()?,
            "--seconds" => o.seconds = value()?.parse()?,
            "--rooms" => o.rooms = value()?.parse()?,
            "--seed-per-room" => o.per_room = value()?.parse()?,
            "--ceiling" => o.ceiling = true,
            _ => {}
        }
    }
    anyhow::ensure!(o.rate > 0.0 && o.seconds > 0.0 && o.rooms > 0, "rate, seconds and rooms must be positive");
    Ok(o)
}

/// Waits until `check` holds, polling every 100 ms, or the deadline passes; returns whether it held.
async fn wait_for(deadline: Duration, mut check: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    check()
}

/// What every phase works with.
struct Run<'a> {
    pipeline: &'a setup::Pipeline,
    ledger: &'a Shared,
    o: &'a Options,
    seen: &'a probe::Seen,
}

/// Runs one load phase at `rate` and measures it.
async fn phase(run: &Run<'_>, name: &str, rate: f64, seconds: f64, rng: &mut Rng) -> anyhow::Result<Value> {
    let Run { pipeline, ledger, o, seen } = *run;
    let log_start = pipeline.emu.requests().len();
    let (cpu0, wall0) = (observe::cpu_seconds(), Instant::now());
    eprintln!("phase {name}: {rate} changes/s for {seconds} s");
    let generated = load::generate(ledger, pipeline.db.url(), o.rooms, rate, seconds, rng).await?;
    let seqs = generated.seqs.clone();
    let drained = wait_for(Duration::from_secs(60), || {
        let l = lock(ledger);
        l.changes.get(seqs.clone()).unwrap_or_default().iter().all(|c| c.acked.is_some())
    })
    .await;
    let (cpu, wall) = (observe::cpu_seconds() - cpu0, wall0.elapsed().as_secs_f64());
    let log = pipeline.emu.requests();
    let log = log.get(log_start..).unwrap_or_default();
    observe::refine_cancellations(log, ledger);
    let echo = observe::echo_writes(log, ledger, seqs.clone());
    let mut result = report::phase(ledger, seqs.clone(), generated.elapsed, log, echo);
    if let Value::Object(map) = &mut result {
        map.insert("name".into(), json!(name));
        map.insert("target_rate".into(), json!(rate));
        map.insert("drained".into(), json!(drained));
        map.insert("cpu_seconds".into(), json!(report::round(cpu)));
        map.insert("cpu_percent_of_one_core".into(), json!(report::round(100.0 * cpu / wall)));
        map.insert("wall_seconds".into(), json!(report::round(wall)));
        map.insert("stage_latency_ms".into(), stage_latencies(ledger, seen, seqs));
    }
    Ok(result)
}

/// Commit to the marker's first appearance in the cdc-reader's and the resolver's output topics (creates and
/// moves: a cancellation carries no new marker).
fn stage_latencies(ledger: &Shared, seen: &probe::Seen, seqs: std::ops::Range<usize>) -> Value {
    let seen = seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let l = lock(ledger);
    let (mut cdc, mut desired) = (Vec::new(), Vec::new());
    for (seq, change) in l.changes.iter().enumerate().skip(seqs.start).take(seqs.len()) {
        let (Some(committed), Some((at_cdc, at_desired))) = (change.committed, seen.get(&seq)) else { continue };
        if change.kind == load::Kind::Cancel {
            continue;
        }
        let committed = committed.timestamp_micros() as f64 / 1000.0;
        cdc.extend(at_cdc.map(|t| t as f64 - committed));
        desired.extend(at_desired.map(|t| t as f64 - committed));
    }
    json!({
        "commit_to_cdc_topic": report::summary(cdc),
        "commit_to_desired_topic": report::summary(desired),
    })
}

/// Full-table no-op churn (the season form's id_string UPDATE, the billing cron's completed = 1), then one real
/// change as a marker; every Graph write but the marker's is a no-op write.
async fn noop_phase(pipeline: &setup::Pipeline, ledger: &Shared, o: &Options, rng: &mut Rng) -> anyhow::Result<Value> {
    let log_start = pipeline.emu.requests().len();
    let db = pipeline.db.connect().await?;
    let rows = db.execute("update bb_allocation set id_string = cast(id as varchar)", &[]).await?
        + db.execute("update bb_event set completed = 1", &[]).await?
        + db.execute("update bb_booking set completed = 1", &[]).await?;
    let started = Instant::now();
    let marker = load::generate(ledger, pipeline.db.url(), o.rooms, 1.0, 1.0, rng).await?;
    let seqs = marker.seqs.clone();
    let arrived = wait_for(Duration::from_secs(120), || {
        lock(ledger).changes.get(seqs.clone()).unwrap_or_default().iter().all(|c| c.acked.is_some())
    })
    .await;
    let log = pipeline.emu.requests();
    let writes = observe::writes(log.get(log_start..).unwrap_or_default());
    Ok(json!({
        "rows_updated": rows,
        "marker_arrived": arrived,
        "marker_seconds": report::round(started.elapsed().as_secs_f64()),
        "graph_writes_besides_marker": writes.saturating_sub(marker.seqs.len()),
    }))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let o = options()?;
    let ledger: Shared = Arc::new(Mutex::new(Ledger::new(o.rooms)));
    let seed = load::seed_sql(&mut lock(&ledger), o.rooms, o.per_room);
    let started = Instant::now();
    let pipeline = setup::start(o.rooms, &seed).await?;
    let seen = probe::start(&pipeline.kafka, &pipeline.prefix)?;
    let (done, watching) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(observe::watch(
        pipeline.emu.clone(),
        ledger.clone(),
        o.rooms,
        Duration::from_millis(100),
        watching,
    ));
    let synced = wait_for(setup::SNAPSHOT_DEADLINE, || lock(&ledger).live.values().all(|e| e.graph_id.is_some())).await;
    anyhow::ensure!(synced, "the initial snapshot did not reach the calendars in time");
    let snapshot_seconds = started.elapsed().as_secs_f64();
    eprintln!("initial snapshot synced in {snapshot_seconds:.1} s");
    let mut rng = Rng::new(0x5eed);

    let run = Run { pipeline: &pipeline, ledger: &ledger, o: &o, seen: &seen };
    let steady = phase(&run, "steady", o.rate, o.seconds, &mut rng).await?;
    let noop = noop_phase(&pipeline, &ledger, &o, &mut rng).await?;
    let mut ceiling = Vec::new();
    if o.ceiling {
        let mut rate = o.rate * 1.5;
        loop {
            let step = phase(&run, "ceiling", rate, 15.0, &mut rng).await?;
            let p99 = step["latency_ms"]["p99"].as_f64().unwrap_or(f64::INFINITY);
            let achieved = step["achieved_rate"].as_f64().unwrap_or(0.0);
            let held = step["drained"].as_bool().unwrap_or(false) && p99 <= 1000.0 && achieved >= 0.95 * rate;
            ceiling.push(step);
            if !held || rate > 5000.0 {
                break;
            }
            rate *= 1.5;
        }
    }
    let _ = done.send(true);
    let _ = watcher.await;

    let report = json!({
        "benchmark": "pipeline",
        "command": format!("cargo bench --bench pipeline -- --rate {} --seconds {} --rooms {}{}", o.rate, o.seconds, o.rooms, if o.ceiling { " --ceiling" } else { "" }),
        "rooms": o.rooms,
        "seeded_events": o.rooms * o.per_room,
        "initial_snapshot_seconds": report::round(snapshot_seconds),
        "steady": steady,
        "noop": noop,
        "ceiling": ceiling,
        "process": {
            "peak_rss_mib": report::round(observe::peak_rss_mib()),
            "cpu_seconds_total": report::round(observe::cpu_seconds()),
            "note": "one process: cdc-reader, resolver, graph-sink, graph-source, the Graph emulator, the load generator and the observer",
        },
    });
    report::table(&report);
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
