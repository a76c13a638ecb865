//! One chaos run: start, settle once on the sample data, the seeded workload with faults, calm, quiescence, the
//! comparison with the oracle and the loop bound.
//!
//! Quiescence is decided honestly in two steps, both waits on a condition with a deadline: first the system must
//! match the oracle exactly (calendars, mapping table, conflicts, imports); then it must stay without any Graph
//! write for `STABLE` (longer than two polling rounds of the Graph source, so a delayed echo or a revert loop
//! would show up) and still match. A loop never reaches the second step.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use roomsync::cli::Stage;
use roomsync::stages;
use testkit::wait_until_every;
use tokio_postgres::{Client, NoTls};

use super::booking::{BookingSystem, APPLICATION_NAME};
use super::compare::{differences, graph_writes};
use super::faults::Injector;
use super::harness::Harness;
use super::oracle::{expected, rules_of};
use super::outlook::OutlookUsers;
use super::workload::{skipped, History, PREPARE, SCENARIOS};

/// How long the system may take to match the oracle once the faults stop (or at start).
const SETTLE: Duration = Duration::from_secs(180);
/// How long the system must stay without Graph writes to count as quiet.
const STABLE: Duration = Duration::from_secs(8);
/// How often the system is compared with the oracle while waiting (a comparison reads every table and calendar).
const COMPARE_EVERY: Duration = Duration::from_millis(500);
/// No faults during the first seconds: the initial snapshot settles first.
const FAULT_FREE_START: Duration = Duration::from_secs(5);
/// Outlook bookings made at the start leave the sync window this long into the workload (`book_aging`).
const AGING_AFTER: chrono::Duration = chrono::Duration::seconds(30);
/// How often a long wait for convergence prints what is still different.
const PROGRESS: Duration = Duration::from_secs(30);
/// How long each restart of the failure diagnosis may take to converge.
const DIAGNOSIS: Duration = Duration::from_secs(45);

/// A connection of the test's own (spared by the fault injector).
pub async fn connect(url: &str) -> anyhow::Result<Client> {
    let url = format!("{url}?application_name={APPLICATION_NAME}");
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// Waits until the system matches the oracle; on timeout the error shows the last differences.
async fn settle(harness: &Harness, db: &Client, history: &History, what: &str) -> anyhow::Result<()> {
    let last: Arc<Mutex<Vec<String>>> = Arc::default();
    let started = Instant::now();
    let mut next_progress = PROGRESS;
    let waited = wait_until_every(what, SETTLE, COMPARE_EVERY, || {
        let last = last.clone();
        let progress = started.elapsed() >= next_progress;
        if progress {
            next_progress += PROGRESS;
        }
        async move {
            let expectation = expected(db, history, rules_of(&harness.config)?).await?;
            let diffs = differences(&harness.emu, db, &expectation, history).await?;
            let done = diffs.is_empty();
            if progress && !done {
                // A long wait shows what it is waiting for (the full list comes with the failure).
                let first: Vec<&String> = diffs.iter().take(5).collect();
                eprintln!("chaos: still {} differences after {:?}, e.g. {first:#?}", diffs.len(), started.elapsed());
            }
            *last.lock().unwrap_or_else(|e| e.into_inner()) = diffs;
            Ok(done.then_some(()))
        }
    })
    .await;
    if let Err(error) = waited {
        let diffs = last.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let shown: Vec<&String> = diffs.iter().take(60).collect();
        let mut text = format!("{error}: {} differences", diffs.len());
        for diff in shown {
            let _ = write!(text, "\n  {diff}");
        }
        bail!(text);
    }
    Ok(())
}

/// Waits until no Graph write happened for `STABLE`.
async fn quiet(harness: &Harness) -> anyhow::Result<()> {
    let mut seen = (graph_writes(&harness.emu).len(), Instant::now());
    wait_until_every("the Graph writes to stop", SETTLE, Duration::from_millis(250), || {
        let count = graph_writes(&harness.emu).len();
        if count != seen.0 {
            seen = (count, Instant::now());
        }
        let stable = seen.1.elapsed() >= STABLE;
        async move { Ok(stable.then_some(())) }
    })
    .await
}

/// Why the end of a run failed: not settling gets a diagnosis by restarts, the rest does not.
enum Failure {
    Settle(anyhow::Error),
    Other(anyhow::Error),
}

/// Writes every action of the run to a file next to the test's temporary files; returns its path.
fn dump_actions(seed: u64, history: &History, state: &str) -> String {
    let path = std::env::temp_dir().join(format!("roomsync-chaos-{seed}-{}-actions.log", std::process::id()));
    match std::fs::write(&path, format!("{}\n\n{state}", history.actions.join("\n"))) {
        Ok(()) => path.display().to_string(),
        Err(error) => format!("(could not write {}: {error})", path.display()),
    }
}

/// roomsync's tables and the room calendars at the moment of a failure, for the dump file.
async fn dump_state(harness: &Harness, db: &Client) -> String {
    let mut out = String::new();
    for (title, sql) in [
        (
            "outlook_calendar_mapping",
            "select outlook_item_id, item_key, reservation_type, reservation_id, outlook_event_id, sync_status, \
             intent, attempts, updated_at::text from outlook_calendar_mapping order by outlook_item_id, item_key",
        ),
        (
            "roomsync_conflicts",
            "select outlook_item_id, outlook_event_id, reservation_type, reservation_id, starts_at::text, \
             ends_at::text, status from roomsync_conflicts order by outlook_item_id, starts_at",
        ),
    ] {
        let _ = writeln!(out, "== {title}");
        match db.simple_query(sql).await {
            Ok(messages) => {
                for message in messages {
                    if let tokio_postgres::SimpleQueryMessage::Row(row) = message {
                        let cells: Vec<&str> = (0..row.len()).map(|i| row.get(i).unwrap_or("null")).collect();
                        let _ = writeln!(out, "{}", cells.join(" | "));
                    }
                }
            }
            Err(error) => {
                let _ = writeln!(out, "(query failed: {error})");
            }
        }
    }
    for room in super::workload::ROOMS {
        let _ = writeln!(out, "== calendar {}", room.mailbox);
        for event in harness.emu.mailbox_events(room.mailbox).unwrap_or_default() {
            let _ = writeln!(
                out,
                "{} | {} | {} | {} | key {:?} | recurrence {}",
                event["id"].as_str().unwrap_or_default(),
                event["subject"].as_str().unwrap_or_default(),
                event["start"]["dateTime"].as_str().unwrap_or_default(),
                event["end"]["dateTime"].as_str().unwrap_or_default(),
                super::outlook::item_key(&event),
                event["recurrence"]
            );
        }
    }
    out
}

/// After a failure to settle: restarts one stage at a time, in pipeline order, and says after which restart
/// (if any) the system converged. A stage that converges only after its restart was wedged, which tells a
/// wedged process apart from wrong state that survives restarts.
async fn diagnose_by_restarts(harness: &Harness, db: &Client, history: &History) -> String {
    for stage in [Stage::Cdc, Stage::Resolver, Stage::GraphSink, Stage::GraphSource] {
        harness.kill(stage, Duration::ZERO).await;
        let converged = wait_until_every("convergence after a restart", DIAGNOSIS, COMPARE_EVERY, || async {
            let expectation = expected(db, history, rules_of(&harness.config)?).await?;
            let diffs = differences(&harness.emu, db, &expectation, history).await?;
            Ok(diffs.is_empty().then_some(()))
        })
        .await;
        if converged.is_ok() {
            return format!("diagnosis: converged after restarting {} (it was wedged)", stage.name());
        }
    }
    "diagnosis: still not converged after restarting every stage (wrong state, not a wedged process)".to_owned()
}

/// The whole run with `instances` processes of every stage; returns a short report.
pub async fn run(seed: u64, workload: Duration, instances: usize) -> anyhow::Result<String> {
    let started = Instant::now();
    let mut harness = Harness::start(PREPARE, instances).await?;
    let outcome = drive(&harness, seed, workload, started).await;
    harness.shutdown().await;
    let logs = harness.stage_logs();
    let mut report = outcome.map_err(|error| anyhow::anyhow!("{error:#}\nstages: {logs:#?}"))?;
    let panics: Vec<&String> = logs.values().flat_map(|l| l.panics.iter()).collect();
    if !panics.is_empty() {
        bail!("stages panicked: {panics:?}");
    }
    for (stage, log) in &logs {
        let _ = writeln!(
            report,
            "stage {stage}: {} kills, {} failures (last: {:?})",
            log.kills, log.failures, log.last_error
        );
    }
    let _ = writeln!(report, "total {:?}", started.elapsed());
    Ok(report)
}

async fn drive(harness: &Harness, seed: u64, workload: Duration, started: Instant) -> anyhow::Result<String> {
    let mut report = String::new();
    let db = connect(harness.db.url()).await?;
    let mut history = History::default();
    settle(harness, &db, &history, "the sample data to be synced").await.context("initial sync")?;
    let _ = writeln!(report, "initial sync after {:?}", started.elapsed());

    let mut rng = StdRng::seed_from_u64(seed);
    let graph = graph_client::GraphClient::new(stages::graph_client_config(&harness.config)?)?;
    let mut users = OutlookUsers::new(graph, harness.emu.clone(), harness.graph_url.clone());
    let mut booking = BookingSystem::new(harness.db.url());
    let mut injector = Injector::new(seed);
    let aging = users.book_aging(&mut history, harness.config.sync.window_past, AGING_AFTER).await;
    history.log(format!("{:>7.1}s {aging}", 0.0));
    let begin = Instant::now();
    let mut actions = 0usize;
    while begin.elapsed() < workload {
        let roll = rng.gen_range(0..100);
        let action = if roll < 55 {
            booking.act(&mut rng, &mut history).await?
        } else if roll < 82 {
            users.act(&mut rng, &mut history, &booking.reservations).await
        } else if begin.elapsed() > FAULT_FREE_START {
            injector.strike(&mut rng, harness, &db).await.unwrap_or_else(|e| format!("fault failed: {e:#}"))
        } else {
            "no fault yet".to_owned()
        };
        history.log(format!("{:>7.1}s {action}", begin.elapsed().as_secs_f64()));
        actions += 1;
        // Pacing of the workload (not synchronisation): a few actions per second.
        tokio::time::sleep(Duration::from_millis(rng.gen_range(20..400))).await;
    }
    injector.calm(&harness.emu).await.context("calming the faults")?;
    let calm_at = Instant::now();
    let skipped: Vec<&str> = SCENARIOS.iter().copied().filter(|s| skipped(s)).collect();
    let _ = writeln!(
        report,
        "{actions} actions in {:?}; faults {:?}: {:?}; scenarios switched off: {skipped:?}",
        begin.elapsed(),
        super::faults::enabled_faults(),
        injector.counts
    );

    let tail =
        |history: &History| history.actions.iter().rev().take(40).rev().cloned().collect::<Vec<_>>().join("\n  ");
    let settled = async {
        settle(harness, &db, &history, "the calendars to match the oracle").await.map_err(Failure::Settle)?;
        let _ = writeln!(report, "converged {:?} after the faults stopped", calm_at.elapsed());
        quiet(harness).await.map_err(Failure::Other)?;
        settle(harness, &db, &history, "the calendars to still match the oracle once quiet")
            .await
            .map_err(Failure::Other)?;
        let crashes = harness.stage_logs().values().map(|l| l.kills + l.failures).sum::<usize>()
            + harness.broker.lock().await.restarts;
        super::writes::check(harness, &history, &booking.reservations, crashes, &mut report).map_err(Failure::Other)
    };
    if let Err(failure) = settled.await {
        let actions = dump_actions(seed, &history, &dump_state(harness, &db).await);
        let diagnosis = match failure {
            Failure::Settle(_) => diagnose_by_restarts(harness, &db, &history).await,
            Failure::Other(_) => String::new(),
        };
        let error = match failure {
            Failure::Settle(e) | Failure::Other(e) => e,
        };
        bail!("{error:#}\n{diagnosis}\nlast actions (all in {actions}):\n  {}", tail(&history));
    }
    Ok(report)
}
