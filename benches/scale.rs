//! Production-scale benchmark (issue #13), not a timed test: a large municipality's years of bookings
//! (`testkit::municipality`, about a million reservation rows) through the first stages, measured side by side in
//! one run on the local stack:
//!
//! 1. `load`: the generator writes the data set into a fresh database (rows, seconds);
//! 2. `snapshot`: the cdc-reader's initial snapshot of it into Kafka (rows/s), and a plain producer with the
//!    reader's producer settings sending as many records of the same size (the broker's own ceiling): the ratio;
//! 3. `rebuild`: a resolver in a process of its own (this binary, `--resolver-child`) reads every input topic from
//!    the beginning, as at every start, until it reports that it has caught up: records/s, its CPU seconds and
//!    the peak resident memory of that process (`VmHWM`); then a plain consumer reads the same topics (the
//!    broker's fetch ceiling): the ratio;
//! 4. `restart`: the first resolver, once it has written its checkpoint, is killed (SIGKILL) and a second one
//!    starts from that checkpoint: seconds until it has caught up with its inputs (its state ready), input records
//!    the checkpoint stands for per second, CPU and peak RSS; and, apart, until it owns its group partitions
//!    (the broker waits for the killed member's session to time out first);
//! 5. `first_load`: the graph-sink stage writes every room calendar into the Graph emulator with Outlook's limits
//!    on, from the desired topic the rebuild wrote (`scale/first_load.rs`): time, HTTP requests per created event,
//!    the ratio to the least time those limits allow; the calendars are then compared with the oracle.
//!
//! `cargo bench --bench scale -- [--small] [--seed N] [--buffer N]`: JSON on stdout, a short table on stderr.
//! Needs the local stack (`eval "$(scripts/stack env)"`) for PostgreSQL and the schema registry; the Kafka broker
//! is a tansu of the run's own (`tests/support/broker.rs`).

#[path = "../tests/support/broker.rs"]
mod broker;
#[path = "scale/first_load.rs"]
mod first_load;
#[path = "municipality.rs"]
mod municipality_setup;
#[path = "../tests/support/process.rs"]
mod process;
#[allow(dead_code)] // the reader's bench uses the rest
#[path = "../crates/cdc-reader/benches/throughput/standins.rs"]
mod standins;
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;
use testkit::municipality::{self, Sizes};
use testkit::{unique_name, Stack, TestDatabase};
use tokio::io::{AsyncBufReadExt, BufReader};

struct Options {
    small: bool,
    seed: u64,
    buffer: usize,
}

fn options() -> Result<Options> {
    let mut o = Options { small: false, seed: 1, buffer: 100_000 };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| anyhow::anyhow!("{arg} needs a value"));
        match arg.as_str() {
            "--small" => o.small = true,
            "--seed" => o.seed = value()?.parse()?,
            "--buffer" => o.buffer = value()?.parse()?,
            _ => {}
        }
    }
    Ok(o)
}

/// What `roomsync run` would give the stages of this run: topic prefix, slot and publication `prefix`, the
/// emulator at `graph` (any URL where no stage talks to Graph).
fn pipeline_config(database_url: &str, prefix: &str, graph: &str) -> Result<roomsync::config::Config> {
    support::pipeline_config(database_url, &Stack::from_env().kafka, graph, prefix, &[])
}

fn resolver_config(prefix: &str, buffer: usize, database_url: &str) -> Result<resolver::Config> {
    let mut config = roomsync::stages::resolver(&pipeline_config(database_url, prefix, "http://127.0.0.1:9")?)?;
    config.max_buffered_records = buffer;
    // One instance, as the README advises for tansu: a restarted resolver the broker leaves without partitions
    // (the chaos test's F7; two of the last five runs here) joins again. Longer than the killed member's session
    // (45 s), so an ordinary takeover never triggers it; the owning time reported includes it when it does.
    config.connections.kafka.rejoin_unassigned_after = Some(std::time::Duration::from_secs(60));
    Ok(config)
}

/// The child: a resolver until it is killed, logging to stderr (the parent waits for "caught up").
async fn resolver_child(args: &[String]) -> Result<()> {
    let [prefix, buffer, database_url] = args else { bail!("--resolver-child PREFIX BUFFER URL") };
    tracing_subscriber::fmt().with_env_filter("resolver=info").with_writer(std::io::stderr).with_ansi(false).init();
    let config = resolver_config(prefix, buffer.parse()?, database_url)?;
    resolver::run(config, std::future::pending()).await?;
    Ok(())
}

/// Sum of the high watermarks of `topics`.
fn records_in(topics: &[String]) -> Result<i64> {
    let positions = testkit::committed_offsets(&unique_name("bench_count"), topics)?;
    Ok(positions.values().map(|p| p.high).sum())
}

/// User plus system CPU seconds of process `pid` so far (clock ticks of 1/100 s).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    Some((ticks(11)? + ticks(12)?) as f64 / 100.0)
}

/// Seconds for a plain consumer to read every record of `topics` from the beginning (the broker's fetch ceiling
/// for the resolver's rebuild); `records` is how many they hold.
async fn fetch_ceiling(topics: &[String], records: i64) -> Result<f64> {
    use rdkafka::consumer::{Consumer, StreamConsumer};
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", Stack::from_env().kafka)
        .set("group.id", unique_name("bench_fetch"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&names)?;
    let started = Instant::now();
    let mut read = 0_i64;
    while read < records {
        tokio::time::timeout(Duration::from_secs(60), consumer.recv()).await.context("the fetch stalled")??;
        read += 1;
    }
    Ok(started.elapsed().as_secs_f64())
}

fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<f64>().ok()? / 1024.0)
}

/// The longest a resolver child may take to log what a step waits for.
const CHILD_DEADLINE: Duration = Duration::from_secs(600);

/// A resolver in a process of its own (this binary with `--resolver-child`). Its log is read line by line the
/// whole time (a pipe nobody reads would stop the child once full) and kept in a file beside the report.
struct Child {
    process: tokio::process::Child,
    pid: u32,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    peak: f64,
    log: std::path::PathBuf,
}

impl Child {
    fn start(prefix: &str, buffer: usize, database_url: &str) -> Result<Child> {
        let mut process = tokio::process::Command::new(std::env::current_exe()?)
            .args(["--resolver-child", prefix, &buffer.to_string(), database_url])
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let pid = process.id().context("the child's pid")?;
        let mut stderr = BufReader::new(process.stderr.take().context("the child's stderr")?).lines();
        let log = std::env::temp_dir().join(format!("{prefix}-resolver-{pid}.log"));
        let mut file = std::fs::File::create(&log)?;
        let (send, lines) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                use std::io::Write;
                let _ = writeln!(file, "{line}");
                let _ = send.send(line);
            }
        });
        eprintln!("resolver process {pid}, log {}", log.display());
        Ok(Child { process, pid, lines, peak: 0.0, log })
    }

    /// Reads the log until a line with each of `needles` has passed (in any order), sampling the peak RSS; at
    /// most [`CHILD_DEADLINE`].
    async fn wait_for(&mut self, needles: &[&str]) -> Result<()> {
        let mut missing: Vec<&str> = needles.to_vec();
        let started = Instant::now();
        while !missing.is_empty() {
            if started.elapsed() > CHILD_DEADLINE {
                bail!("the resolver did not log {missing:?} within {CHILD_DEADLINE:?} (log {})", self.log.display());
            }
            let line = tokio::time::timeout(Duration::from_secs(1), self.lines.recv()).await;
            self.peak = self.peak.max(peak_rss_mib(self.pid).unwrap_or(0.0));
            match line {
                Ok(Some(line)) => missing.retain(|needle| !line.contains(needle)),
                Err(_) => {}
                Ok(None) => bail!(
                    "the resolver process ended before it logged {missing:?} (log {}): {:?}",
                    self.log.display(),
                    self.process.wait().await
                ),
            }
        }
        Ok(())
    }

    /// CPU seconds so far and peak RSS (MiB).
    fn usage(&mut self) -> (f64, f64) {
        self.peak = self.peak.max(peak_rss_mib(self.pid).unwrap_or(0.0));
        (cpu_seconds(self.pid).unwrap_or(0.0), self.peak)
    }
}

fn per_second(count: f64, seconds: f64) -> f64 {
    (count / seconds).round()
}

async fn parent(o: Options) -> Result<serde_json::Value> {
    // Off unless RUST_LOG asks (e.g. RUST_LOG=graph_sink=debug for the sink's unit timings).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "off".into()))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let sizes = if o.small { Sizes::small() } else { Sizes::full() };
    // A broker of the run's own, as the pipeline benchmark has: tansu's sqlite storage gets slower the more it
    // holds, so the stack's broker, filled by earlier runs, would measure its own history (a run on a stack broker
    // holding 584 MB: rebuild 88 s instead of 26 s, then a fetch that stalled for a minute). Everything below,
    // the resolver child included, finds it through the stack's environment variable; nothing else runs yet.
    let broker = broker::Broker::start().await?;
    std::env::set_var("ROOMSYNC_TEST_KAFKA", broker.bootstrap());

    // 1. The data set.
    let db = TestDatabase::create().await?;
    let mut client = db.connect().await?;
    migrations::apply(&mut client).await?;
    let started = Instant::now();
    let summary = municipality::load(&client, &sizes, o.seed, chrono::Utc::now().date_naive()).await?;
    let load_seconds = started.elapsed().as_secs_f64();
    eprintln!("load: {} reservation rows in {load_seconds:.1} s", summary.reservation_rows());

    // 2. The initial snapshot, then the broker's ceiling for as many records of the same size.
    let prefix = unique_name("scale");
    let mut cdc = cdc_reader::Config::new(db.connections(&prefix));
    cdc.slot = prefix.clone();
    cdc.publication = prefix.clone();
    let (stop_cdc, cdc_stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let reader = tokio::spawn(cdc_reader::run(cdc.clone(), async move {
        let _ = cdc_stopped.await;
    }));
    loop {
        if reader.is_finished() {
            bail!("the cdc-reader stopped during the snapshot: {:?}", reader.await);
        }
        if cdc_reader::setup::snapshot_complete(&client, &cdc).await? {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let snapshot_seconds = started.elapsed().as_secs_f64();
    let config = resolver_config(&prefix, o.buffer, db.url())?;
    let cdc_topics = resolver::kafka::consume::cdc_topics(&config);
    let snapshot_rows = records_in(&cdc_topics)?;
    eprintln!("snapshot: {snapshot_rows} rows in {snapshot_seconds:.1} s");
    let sample_topic = cdc_topics.iter().find(|t| t.ends_with("bb_allocation")).context("the allocation topic")?;
    let sample = testkit::consume_all(sample_topic, 1, Duration::from_secs(60)).await?;
    let (key, value) = (sample[0].key.clone().unwrap_or_default(), sample[0].value.clone().unwrap_or_default());
    let records = usize::try_from(snapshot_rows)?;
    let ceiling_seconds = standins::broker_only(&cdc, records, &key, &value).await?;
    eprintln!("broker ceiling: {records} records in {ceiling_seconds:.1} s");
    let _ = stop_cdc.send(());
    reader.await??;

    // 3. The resolver's rebuild in a process of its own.
    let inputs: Vec<String> = resolver::kafka::consume::input_topics(&config)
        .into_iter()
        .filter(|t| cdc_topics.contains(t) || t.ends_with("transactions"))
        .collect();
    let input_records = records_in(&inputs)?;
    // The broker's fetch ceiling first, on a broker that serves nothing else (measured after the rebuild, it
    // competed with the resolver's output).
    let fetch_seconds = fetch_ceiling(&inputs, input_records).await?;
    eprintln!("fetch ceiling: {input_records} records in {fetch_seconds:.1} s");
    let started = Instant::now();
    let mut child = Child::start(&prefix, o.buffer, db.url())?;
    child.wait_for(&["caught up with its inputs"]).await?;
    let rebuild_seconds = started.elapsed().as_secs_f64();
    let (cpu, peak) = child.usage();
    eprintln!("rebuild: {input_records} records in {rebuild_seconds:.1} s ({cpu:.1} s CPU), peak RSS {peak:.0} MiB");

    // 4. A restart: the first resolver writes its checkpoint once it has caught up; it is killed (SIGKILL) and a
    //    new one starts from the checkpoint, ready once it has read its inputs and loaded its own partitions.
    child.wait_for(&["resolver checkpoint written"]).await?;
    let row = client
        .query_one(
            "select octet_length(state)::int8, input_records from roomsync_resolver_checkpoints
              where consumer_group = $1",
            &[&resolver_config(&prefix, o.buffer, db.url())?.group],
        )
        .await?;
    let (checkpoint_bytes, checkpoint_records): (i64, i64) = (row.get(0), row.get(1));
    child.process.kill().await?;
    let started = Instant::now();
    let mut child = Child::start(&prefix, o.buffer, db.url())?;
    child.wait_for(&["caught up with its inputs"]).await?;
    let restart_seconds = started.elapsed().as_secs_f64();
    let (restart_cpu, restart_peak) = child.usage();
    // Its partitions of the group come once the broker has given up on the killed member (its session timeout).
    child.wait_for(&["loaded every partition it is assigned"]).await?;
    let owning_seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "restart from a checkpoint of {checkpoint_bytes} bytes ({checkpoint_records} input records): \
         {restart_seconds:.1} s ({restart_cpu:.1} s CPU), peak RSS {restart_peak:.0} MiB; \
         owning its partitions after {owning_seconds:.1} s"
    );

    // 5. The first load of every room calendar, from the desired topic the resolver (still running, so its last
    //    outputs are written) made.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let graph = format!("http://{}", listener.local_addr()?);
    let emu = graph_emulator::Emulator::new(first_load::tenant(&summary, first_load::outlook_limits()));
    let (stop_emulator, emulator_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(graph_emulator::serve(listener, emu.clone(), async move {
        let _ = emulator_stopped.await;
    }));
    let pipeline = pipeline_config(db.url(), &prefix, &graph)?;
    let first_load = first_load::run(&pipeline, &emu, &client, Duration::from_secs(1800)).await?;
    child.process.kill().await?;
    let _ = stop_emulator.send(());
    server.await??;
    drop(broker);

    Ok(json!({
        "machine": { "cores": std::thread::available_parallelism().map(usize::from).unwrap_or(0) },
        "data_set": {
            "size": if o.small { "small" } else { "full" },
            "seed": o.seed,
            "reservation_rows": summary.reservation_rows(),
            "rows_per_table": summary.counts,
            "load_seconds": load_seconds,
        },
        "snapshot": {
            "rows": snapshot_rows,
            "seconds": snapshot_seconds,
            "rows_per_second": per_second(snapshot_rows as f64, snapshot_seconds),
            "broker_ceiling_rows_per_second": per_second(records as f64, ceiling_seconds),
            "ratio_to_ceiling": ceiling_seconds / snapshot_seconds,
        },
        "rebuild": {
            "input_records": input_records,
            "max_buffered_records": o.buffer,
            "seconds": rebuild_seconds,
            "records_per_second": per_second(input_records as f64, rebuild_seconds),
            "cpu_seconds": cpu,
            "broker_fetch_ceiling_records_per_second": per_second(input_records as f64, fetch_seconds),
            "ratio_to_fetch_ceiling": fetch_seconds / rebuild_seconds,
            "goal_records_per_second": 100_000,
            "peak_rss_mib": peak.round(),
            "goal_peak_rss_mib": 1024,
        },
        "restart": {
            "checkpoint_bytes": checkpoint_bytes,
            "checkpoint_input_records": checkpoint_records,
            "seconds": restart_seconds,
            "input_records_per_second": per_second(checkpoint_records as f64, restart_seconds),
            "seconds_until_owning_its_partitions": owning_seconds,
            "owning_note": "the group gives the killed member's partitions to the new one once its session times out (45 s, librdkafka's default); a member tansu leaves unassigned joins again after 60 s (kafka.rejoin_unassigned_after)",
            "goal_records_per_second": 100_000,
            "cpu_seconds": restart_cpu,
            "peak_rss_mib": restart_peak.round(),
            "goal_peak_rss_mib": 1024,
        },
        "first_load": first_load,
    }))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if let Some(at) = args.iter().position(|a| a == "--resolver-child") {
        return runtime.block_on(resolver_child(&args[at + 1..]));
    }
    let report = runtime.block_on(parent(options()?))?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
