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
//! `cargo bench --bench pipeline -- [--rate 200] [--seconds 30] [--rooms 50] [--ceiling] [--webhooks]`: prints a table and
//! a JSON report. Needs the local stack (PostgreSQL, Kafka, schema registry; ROOMSYNC_TEST_* as for the tests).
//! CPU time and peak memory are those of this process, which also runs the emulator and the generator.
//!
//! `-- --instances 1,2,3 [--partitions 6] [--rate 200] [--step-seconds 15]`: scale-out instead. For each count,
//! a fresh pipeline of that many `roomsync run` child processes on topics of `--partitions` partitions, then load
//! steps from `--rate` up by 1.25x until one no longer holds (p99 > 1 s, backlog not drained, or the generator
//! behind): the highest rate held per count, and its ratio to the first count's.

#[path = "../../tests/support/broker.rs"]
mod broker;
mod load;
#[path = "../municipality.rs"]
mod municipality_setup;
mod observe;
mod probe;
#[path = "../../tests/support/process.rs"]
mod process;
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
    /// Instance counts of a scale-out run (empty: the in-process run).
    instances: Vec<usize>,
    partitions: usize,
    step_seconds: f64,
    /// A generated municipality under the bench rooms: `small` or `full` (testkit::municipality).
    municipality: Option<String>,
    /// How the graph source learns of Outlook changes (`--webhooks`: notifications; else polling every 5 s).
    notice: setup::Notice,
}

impl Options {
    /// The `--municipality` and `--webhooks` flags as given, for the report's command line.
    fn data_flags(&self) -> String {
        let municipality = self.municipality.as_ref().map(|m| format!(" --municipality {m}")).unwrap_or_default();
        let webhooks = if self.notice == setup::Notice::Webhooks { " --webhooks" } else { "" };
        municipality + webhooks
    }
}

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        rate: 200.0,
        seconds: 30.0,
        rooms: 50,
        per_room: 4,
        ceiling: false,
        instances: Vec::new(),
        partitions: 6,
        step_seconds: 15.0,
        municipality: None,
        notice: setup::Notice::Polling,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| anyhow::anyhow!("{arg} needs a value"));
        match arg.as_str() {
            "--rate" => o.rate = value()?.parse()?,
            "--seconds" => o.seconds = value()?.parse()?,
            "--rooms" => o.rooms = value()?.parse()?,
            "--seed-per-room" => o.per_room = value()?.parse()?,
            "--ceiling" => o.ceiling = true,
            "--instances" => {
                o.instances = value()?.split(',').map(|n| n.trim().parse()).collect::<Result<_, _>>()?;
            }
            "--partitions" => o.partitions = value()?.parse()?,
            "--step-seconds" => o.step_seconds = value()?.parse()?,
            "--municipality" => o.municipality = Some(value()?),
            "--webhooks" => o.notice = setup::Notice::Webhooks,
            _ => {}
        }
    }
    anyhow::ensure!(o.rate > 0.0 && o.seconds > 0.0 && o.rooms > 0, "rate, seconds and rooms must be positive");
    anyhow::ensure!(
        o.instances.iter().all(|n| *n > 0) && o.partitions > 0,
        "instances and partitions must be positive"
    );
    anyhow::ensure!(o.step_seconds > 0.0, "step-seconds must be positive");
    anyhow::ensure!(
        matches!(o.municipality.as_deref(), None | Some("small" | "full")),
        "--municipality takes small or full"
    );
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

/// Waits until the run's topics and Graph writes stay unchanged for [`QUIET`]; returns the seconds it took.
async fn settle(pipeline: &setup::Pipeline) -> anyhow::Result<f64> {
    let started = Instant::now();
    // Reads (the graph source's polling) go on at rest; writes do not.
    let (mut logged, mut writes) = (0, 0);
    let (mut last, mut since) = (None, started);
    loop {
        let new = pipeline.emu.requests_since(logged);
        (logged, writes) = (logged + new.len(), writes + observe::writes(&new));
        let (kafka, prefix) = (pipeline.kafka.clone(), pipeline.prefix.clone());
        let records = tokio::task::spawn_blocking(move || probe::records(&kafka, &prefix)).await??;
        let now = Some((records, writes));
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() >= QUIET {
            return Ok((since - started).as_secs_f64());
        }
        anyhow::ensure!(
            started.elapsed() < FIRST_LOAD_DEADLINE,
            "the pipeline did not come to rest after its first load"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// How long nothing may change for the pipeline to count as at rest.
const QUIET: Duration = Duration::from_secs(3);

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
    let (cpu0, instances0, wall0) = (observe::cpu_seconds(), instances_cpu(pipeline), Instant::now());
    eprintln!("phase {name}: {rate} changes/s for {seconds} s");
    let generated = load::generate(ledger, pipeline.db.url(), o.rooms, rate, seconds, rng).await?;
    let seqs = generated.seqs.clone();
    let drained = wait_for(Duration::from_secs(60), || {
        let l = lock(ledger);
        l.changes.get(seqs.clone()).unwrap_or_default().iter().all(|c| c.acked.is_some())
    })
    .await;
    let (cpu, wall) = (observe::cpu_seconds() - cpu0, wall0.elapsed().as_secs_f64());
    let instances = instances_cpu(pipeline) - instances0;
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
        if !pipeline.processes.is_empty() {
            map.insert("instances_cpu_seconds".into(), json!(report::round(instances)));
            map.insert("instances_cpu_percent_of_one_core".into(), json!(report::round(100.0 * instances / wall)));
        }
        map.insert("stage_latency_ms".into(), stage_latencies(ledger, seen, seqs));
    }
    Ok(result)
}

/// CPU seconds used so far by the pipeline's `roomsync run` processes together (0 in process).
fn instances_cpu(pipeline: &setup::Pipeline) -> f64 {
    pipeline
        .processes
        .iter()
        .filter_map(process::Process::pid)
        .map(|pid| observe::cpu_seconds_of(&pid.to_string()))
        .sum()
}

/// Load steps from `rate` up by `factor`, `seconds` each, until one does not hold: p99 above 1 s, the backlog not
/// drained within a minute, or the generator short of 95 % of the rate. Returns every step, the failed one last.
async fn climb(run: &Run<'_>, mut rate: f64, factor: f64, seconds: f64, rng: &mut Rng) -> anyhow::Result<Vec<Value>> {
    let mut steps = Vec::new();
    loop {
        let step = phase(run, "ceiling", rate, seconds, rng).await?;
        let held = held(&step, rate);
        steps.push(step);
        if !held || rate > 5000.0 {
            return Ok(steps);
        }
        rate *= factor;
    }
}

/// Whether a load step at `rate` held: drained, p99 at most 1 s, the rate reached.
fn held(step: &Value, rate: f64) -> bool {
    let p99 = step["latency_ms"]["p99"].as_f64().unwrap_or(f64::INFINITY);
    let achieved = step["achieved_rate"].as_f64().unwrap_or(0.0);
    step["drained"].as_bool().unwrap_or(false) && p99 <= 1000.0 && achieved >= 0.95 * rate
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

/// A pipeline started, its first calendars written, and the observers running.
struct Started {
    pipeline: setup::Pipeline,
    ledger: Shared,
    seen: probe::Seen,
    done: tokio::sync::watch::Sender<bool>,
    watcher: tokio::task::JoinHandle<()>,
    snapshot_seconds: f64,
    /// The municipality under the bench rooms, and how long its first load into the calendars took.
    base: Option<(setup::Base, f64, f64)>,
}

impl Started {
    async fn start(o: &Options, deployment: setup::Deployment) -> anyhow::Result<Started> {
        let ledger: Shared = Arc::new(Mutex::new(Ledger::new(o.rooms)));
        let seed = load::seed_sql(&mut lock(&ledger), o.rooms, o.per_room);
        let mut base = o.municipality.as_deref().map(|name| setup::Base {
            sizes: if name == "full" {
                testkit::municipality::Sizes::full()
            } else {
                testkit::municipality::Sizes::small()
            },
            size_name: name.to_owned(),
            summary: None,
            expected_events: 0,
            load_seconds: 0.0,
        });
        let started = Instant::now();
        let pipeline = setup::start(o.rooms, &seed, deployment, base.as_mut(), o.notice).await?;
        let started = if base.is_some() { Instant::now() } else { started };
        let seen = probe::start(&pipeline.kafka, &pipeline.prefix)?;
        let (done, watching) = tokio::sync::watch::channel(false);
        let watcher = tokio::spawn(observe::watch(
            pipeline.emu.clone(),
            ledger.clone(),
            o.rooms,
            Duration::from_millis(100),
            watching,
        ));
        // Under a municipality the seeded events come after a million-row snapshot and the resolver's catch-up.
        let deadline = if base.is_some() { FIRST_LOAD_DEADLINE } else { setup::SNAPSHOT_DEADLINE };
        let synced = wait_for(deadline, || lock(&ledger).live.values().all(|e| e.graph_id.is_some())).await;
        anyhow::ensure!(synced, "the initial snapshot did not reach the calendars in time");
        let snapshot_seconds = started.elapsed().as_secs_f64();
        eprintln!("initial snapshot synced in {snapshot_seconds:.1} s");
        // With a municipality: the steady state comes after its first load (every calendar written).
        let base = match base {
            None => None,
            Some(base) => {
                let expected = base.expected_events;
                let loaded = wait_for(FIRST_LOAD_DEADLINE, || pipeline.emu.event_count() >= expected).await;
                anyhow::ensure!(
                    loaded,
                    "the first load did not finish: {} of {expected} events",
                    pipeline.emu.event_count()
                );
                let seconds = started.elapsed().as_secs_f64();
                eprintln!("first load of {expected} events done {seconds:.1} s after the start");
                // The calendars are written before the pipeline is done with them: the sink's mapping rows come
                // back through the cdc-reader, Outlook's notices of the new events through the graph source, and
                // the resolver reads both. A step started before that backlog drains measures it.
                let settled = settle(&pipeline).await?;
                eprintln!("pipeline quiet {settled:.1} s after the first load");
                Some((base, seconds, settled))
            }
        };
        Ok(Started { pipeline, ledger, seen, done, watcher, snapshot_seconds, base })
    }

    fn run<'a>(&'a self, o: &'a Options) -> Run<'a> {
        Run { pipeline: &self.pipeline, ledger: &self.ledger, o, seen: &self.seen }
    }

    /// Stops the observer; dropping the rest stops the pipeline.
    async fn stop(self) -> setup::Pipeline {
        let _ = self.done.send(true);
        let _ = self.watcher.await;
        self.pipeline
    }
}

/// The in-process run: steady load, no-op churn, optionally the ceiling.
async fn in_process(o: &Options) -> anyhow::Result<Value> {
    let started = Started::start(o, setup::Deployment::InProcess).await?;
    let mut rng = Rng::new(0x5eed);
    let run = started.run(o);
    let steady = phase(&run, "steady", o.rate, o.seconds, &mut rng).await?;
    let noop = noop_phase(&started.pipeline, &started.ledger, o, &mut rng).await?;
    let ceiling = if o.ceiling { climb(&run, o.rate * 1.5, 1.5, 15.0, &mut rng).await? } else { Vec::new() };
    let snapshot_seconds = started.snapshot_seconds;
    let data_set = started.base.as_ref().map(|(base, first_load_seconds, settle_seconds)| {
        json!({
            "municipality": base.size_name,
            "reservation_rows": base.summary.as_ref().map(testkit::municipality::Summary::reservation_rows),
            "load_seconds": report::round(base.load_seconds),
            "calendar_events": base.expected_events,
            "snapshot_and_first_load_seconds": report::round(*first_load_seconds),
            "quiet_after_first_load_seconds": report::round(*settle_seconds),
        })
    });
    drop(started.stop().await);
    let report = json!({
        "benchmark": "pipeline",
        "command": format!("cargo bench --bench pipeline -- --rate {} --seconds {} --rooms {}{}{}", o.rate, o.seconds, o.rooms, if o.ceiling { " --ceiling" } else { "" }, o.data_flags()),
        "data_set": data_set,
        "rooms": o.rooms,
        "graph_source": o.notice.describe(),
        "seeded_events": o.rooms * o.per_room,
        "initial_snapshot_seconds": report::round(snapshot_seconds),
        "steady": steady,
        "noop": noop,
        "ceiling": ceiling,
        "process": observe::usage("self"),
        "process_note": "one process: cdc-reader, resolver, graph-sink, graph-source, the Graph emulator, the load generator and the observer",
    });
    report::table(&report);
    Ok(report)
}

/// The scale-out run: per instance count, a fresh pipeline of that many processes and the climb.
async fn scale_out(o: &Options) -> anyhow::Result<Value> {
    let mut runs = Vec::new();
    for &count in &o.instances {
        eprintln!("== {count} instance(s), {} partitions", o.partitions);
        let started = Started::start(o, setup::Deployment::Processes { count, partitions: o.partitions }).await?;
        let mut rng = Rng::new(0x5eed);
        let steps = climb(&started.run(o), o.rate, 1.25, o.step_seconds, &mut rng).await?;
        let sustained = steps
            .iter()
            .filter(|s| held(s, s["target_rate"].as_f64().unwrap_or(f64::INFINITY)))
            .filter_map(|s| s["achieved_rate"].as_f64())
            .fold(None, |best: Option<f64>, r| Some(best.map_or(r, |b| b.max(r))));
        let processes: Vec<Value> = started
            .pipeline
            .processes
            .iter()
            .filter_map(process::Process::pid)
            .map(|pid| observe::usage(&pid.to_string()))
            .collect();
        let snapshot_seconds = started.snapshot_seconds;
        let pipeline = started.stop().await;
        for process in &pipeline.processes {
            eprintln!("instance log: {}", process.log_path().display());
        }
        drop(pipeline);
        runs.push(json!({
            "instances": count,
            "partitions": o.partitions,
            "initial_snapshot_seconds": report::round(snapshot_seconds),
            "sustained_rate": sustained,
            "steps": steps,
            "processes": processes,
        }));
    }
    let first = runs.first().and_then(|r| r["sustained_rate"].as_f64());
    for run in &mut runs {
        let ratio = run["sustained_rate"].as_f64().zip(first).map(|(r, f)| report::round(r / f));
        run["ratio_to_first"] = json!(ratio);
    }
    let counts: Vec<String> = o.instances.iter().map(ToString::to_string).collect();
    let report = json!({
        "benchmark": "pipeline-scale-out",
        "command": format!("cargo bench --bench pipeline -- --instances {} --partitions {} --rate {} --step-seconds {} --rooms {}{}", counts.join(","), o.partitions, o.rate, o.step_seconds, o.rooms, o.data_flags()),
        "rooms": o.rooms,
        "graph_source": o.notice.describe(),
        "seeded_events": o.rooms * o.per_room,
        "runs": runs,
        "bench_process": observe::usage("self"),
        "bench_process_note": "the Graph emulator, the load generator and the observer; roomsync runs in the child processes",
    });
    report::scale_out_table(&report);
    Ok(report)
}

/// How long the snapshot and first load of a generated municipality may take (`--municipality`).
const FIRST_LOAD_DEADLINE: Duration = Duration::from_secs(1800);

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let o = options()?;
    let report = if o.instances.is_empty() { in_process(&o).await } else { scale_out(&o).await };
    match report {
        Ok(report) => {
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Err(err) => {
            // At once: returning would drop the runtime, which waits for the stages' blocking tasks, and a failed
            // run would hang without a word (the pipeline and its broker are already gone).
            eprintln!("Error: {err:?}");
            std::process::exit(1);
        }
    }
}
