//! Phase 4 of the scale benchmark: the first full load of every room calendar into the Graph emulator, with
//! Outlook's limits switched on (150 ms per request, 4 requests in flight per mailbox, 10,000 requests per 10
//! minutes per mailbox), by the graph-sink stage `roomsync run` would start, from the desired topic the rebuild
//! wrote.
//!
//! ```text
//! desired topic (complete) --> graph-sink --$batch--> emulator (latency, concurrency, rate window)
//!                                   t0: the stage starts            t1: every expected event is there
//! ceiling: the busiest mailbox's events / 4 in flight x 150 ms (its rate window allowing)
//! ```
//!
//! Measured: time (t1 - t0), HTTP requests per created event (`$batch` envelopes and direct requests; inner
//! requests reported beside), inner requests by method and status, and the ratio ceiling / time. The calendars
//! are then compared with the oracle, item key by item key: a fast load that is wrong fails the run.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use graph_emulator::{ConcurrencyScope, Emulator, FaultConfig, LogEntry, TenantConfig};
use roomsync::cli::Stage;
use roomsync::config::Config;
use serde_json::{json, Value};
use testkit::municipality::Summary;
use testkit::oracle;

/// Outlook's limits as the issue states them.
pub fn outlook_limits() -> FaultConfig {
    FaultConfig {
        latency_ms: 150,
        max_concurrency: 4,
        concurrency_scope: ConcurrencyScope::Mailbox,
        rate_limit_requests: 10_000,
        rate_limit_window_ms: 600_000,
        ..FaultConfig::default()
    }
}

/// The tenant: one room mailbox per mapped resource of the municipality (client credentials as in
/// fixtures/emulator/tenant.toml, which the test pipeline's configuration uses).
pub fn tenant(summary: &Summary, faults: FaultConfig) -> TenantConfig {
    let mut tenant = TenantConfig {
        tenant_id: "00000000-0000-0000-0000-00000000f00d".into(),
        client_id: "roomsync-local".into(),
        client_secret: "roomsync-local-secret".into(),
        faults,
        ..TenantConfig::default()
    };
    tenant.rooms = crate::municipality_setup::rooms(summary);
    tenant
}

/// The least time Outlook's limits allow for creating `per_mailbox` events (one request each): every mailbox
/// works in parallel, at most `concurrency` requests in flight of `latency` each, at most `limit` per `window`.
pub fn ceiling_seconds(per_mailbox: &BTreeMap<String, usize>, faults: &FaultConfig) -> f64 {
    let latency = faults.latency_ms as f64 / 1000.0;
    let concurrency = faults.max_concurrency.max(1);
    per_mailbox
        .values()
        .map(|&n| {
            let by_concurrency = n.div_ceil(concurrency) as f64 * latency;
            let windows = match faults.rate_limit_requests {
                0 => 0,
                limit => n.saturating_sub(1) / limit,
            };
            by_concurrency.max(windows as f64 * faults.rate_limit_window_ms as f64 / 1000.0)
        })
        .fold(0.0, f64::max)
}

/// The roomsync item keys each mailbox holds.
fn calendars(emu: &Emulator, mailboxes: &BTreeSet<String>) -> BTreeMap<String, BTreeSet<String>> {
    let key_property = graph_client::properties::ROOMSYNC_ITEM_KEY.to_ascii_lowercase();
    mailboxes
        .iter()
        .map(|mailbox| {
            let keys = emu
                .mailbox_events(mailbox)
                .unwrap_or_default()
                .iter()
                .filter_map(|event| {
                    event["singleValueExtendedProperties"].as_array()?.iter().find_map(|p| {
                        let id = p["id"].as_str()?.to_ascii_lowercase();
                        (id == key_property).then(|| p["value"].as_str().map(str::to_owned)).flatten()
                    })
                })
                .collect();
            (mailbox.clone(), keys)
        })
        .collect()
}

/// Requests of the log by kind: HTTP requests (what a client pays for) and inner requests of `$batch`.
fn requests(log: &[LogEntry]) -> Value {
    let http = log.iter().filter(|e| !e.in_batch).count();
    let envelopes = log.iter().filter(|e| !e.in_batch && e.path.contains("$batch")).count();
    let mut inner: BTreeMap<String, usize> = BTreeMap::new();
    for e in log.iter().filter(|e| e.in_batch || !e.path.contains("$batch")) {
        *inner.entry(format!("{} {}", e.method, e.status)).or_insert(0) += 1;
    }
    json!({ "http": http, "batch_envelopes": envelopes, "direct": http - envelopes, "by_method_and_status": inner })
}

/// Runs the phase: starts the graph-sink stage of `config` against `emu`, waits until every expected event is
/// there, compares the calendars with the oracle.
pub async fn run(config: &Config, emu: &Emulator, db: &tokio_postgres::Client, deadline: Duration) -> Result<Value> {
    let expected = oracle::calendars(db, crate::municipality_setup::rules(&config.sync)?).await?;
    let per_mailbox: BTreeMap<String, usize> =
        expected.items.iter().map(|(mailbox, items)| (mailbox.clone(), items.len())).collect();
    let total: usize = per_mailbox.values().sum();
    let faults = emu.faults();
    let ceiling = ceiling_seconds(&per_mailbox, &faults);
    let busiest = per_mailbox.values().copied().max().unwrap_or(0);
    eprintln!(
        "first load: {total} events in {} mailboxes (busiest {busiest}); ceiling {ceiling:.1} s",
        per_mailbox.len()
    );

    let log_start = emu.requests().len();
    let events_before = emu.event_count();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let cpu_before = crate::cpu_seconds(std::process::id()).unwrap_or(0.0);
    let sink = tokio::spawn(roomsync::stages::start(config, Stage::GraphSink, async move {
        let _ = stopped.await;
    })?);
    loop {
        if emu.event_count() >= events_before + total {
            break;
        }
        if sink.is_finished() {
            anyhow::bail!("the graph sink stopped during the first load: {:?}", sink.await);
        }
        ensure!(
            started.elapsed() < deadline,
            "the first load did not finish in {deadline:?}: {} of {total} events",
            emu.event_count() - events_before
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = crate::cpu_seconds(std::process::id()).unwrap_or(0.0) - cpu_before;
    let _ = stop.send(());
    sink.await.context("the graph sink task")??;
    eprintln!("first load: {total} events in {seconds:.1} s");

    let held = calendars(emu, &expected.mailboxes);
    let mut wrong = Vec::new();
    for mailbox in &expected.mailboxes {
        let want: BTreeSet<String> =
            expected.items.get(mailbox).map(|m| m.keys().cloned().collect()).unwrap_or_default();
        let have = held.get(mailbox).cloned().unwrap_or_default();
        if want != have {
            wrong.push(format!(
                "{mailbox}: missing {:?}, unexpected {:?}",
                want.difference(&have).take(3).collect::<Vec<_>>(),
                have.difference(&want).take(3).collect::<Vec<_>>()
            ));
        }
    }
    ensure!(
        wrong.is_empty(),
        "{} calendars differ from the oracle after the first load: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );

    let log = emu.requests();
    let log = log.get(log_start..).unwrap_or_default();
    let counted = requests(log);
    let http = counted["http"].as_u64().unwrap_or(0) as f64;
    Ok(json!({
        "events": total,
        "mailboxes": per_mailbox.len(),
        "busiest_mailbox_events": busiest,
        "limits": { "latency_ms": faults.latency_ms, "max_concurrency_per_mailbox": faults.max_concurrency,
                    "rate_limit": format!("{} per {} s", faults.rate_limit_requests, faults.rate_limit_window_ms / 1000) },
        "seconds": seconds,
        "events_per_second": (total as f64 / seconds).round(),
        "cpu_seconds_sink_and_emulator": cpu,
        "requests": counted,
        "http_requests_per_created_event": http / total.max(1) as f64,
        "goal_http_requests_per_created_event": 0.06,
        "ceiling_seconds": ceiling,
        "ratio_to_ceiling": ceiling / seconds,
        "goal_ratio_to_ceiling": 0.8,
    }))
}
