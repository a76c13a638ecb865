//! Turning a phase's ledger and request log into numbers: latency percentiles, rates, Graph requests per change.

use std::collections::BTreeMap;
use std::time::Duration;

use graph_emulator::LogEntry;
use serde_json::{json, Value};

use crate::load::{lock, Kind, Shared};
use crate::observe;

/// Rounded to two decimals for the report.
pub fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The `q` quantile (nearest rank) of sorted `values`.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted.get(rank - 1).copied().unwrap_or(f64::NAN)
}

pub fn summary(mut latencies: Vec<f64>) -> Value {
    latencies.sort_by(f64::total_cmp);
    json!({
        "count": latencies.len(),
        "p50": round(quantile(&latencies, 0.50)),
        "p95": round(quantile(&latencies, 0.95)),
        "p99": round(quantile(&latencies, 0.99)),
        "max": round(latencies.last().copied().unwrap_or(f64::NAN)),
    })
}

/// The width of the windows the report's p99-over-time uses.
const WINDOW_SECONDS: i64 = 5;

/// The measurements of one phase.
pub fn phase(ledger: &Shared, seqs: std::ops::Range<usize>, elapsed: Duration, log: &[LogEntry], echo: usize) -> Value {
    let l = lock(ledger);
    let changes = l.changes.get(seqs).unwrap_or_default();
    let mut all = Vec::new();
    let mut by_kind = serde_json::Map::new();
    for kind in [Kind::Create, Kind::Move, Kind::Cancel] {
        let latencies: Vec<f64> = changes
            .iter()
            .filter(|c| c.kind == kind)
            .filter_map(|c| Some(observe::millis(c.acked?, c.committed?)))
            .collect();
        all.extend(latencies.iter().copied());
        by_kind.insert(kind.as_str().into(), summary(latencies));
    }
    let unacknowledged = changes.iter().filter(|c| c.acked.is_none()).count();
    // When in the phase the slow ones were committed: a warm-up, a periodic stall or a steady tail look alike in
    // the percentiles and not here.
    let first = changes.iter().filter_map(|c| c.committed).min();
    let mut windows: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for c in changes {
        if let (Some(first), Some(committed), Some(acked)) = (first, c.committed, c.acked) {
            let window = (committed - first).num_milliseconds() / (WINDOW_SECONDS * 1000);
            windows.entry(window).or_default().push(observe::millis(acked, committed));
        }
    }
    let p99_by_window: Vec<Value> = windows
        .into_iter()
        .map(|(window, mut v)| {
            v.sort_by(f64::total_cmp);
            json!({ "from_second": window * WINDOW_SECONDS, "count": v.len(), "p99": round(quantile(&v, 0.99)) })
        })
        .collect();
    let n = changes.len().max(1) as f64;
    let requests = observe::requests(log);
    let per_change: serde_json::Map<String, Value> =
        requests.iter().map(|(k, v)| ((*k).to_owned(), json!(round(*v as f64 / n)))).collect();
    json!({
        "changes": changes.len(),
        "achieved_rate": round(changes.len() as f64 / elapsed.as_secs_f64().max(1e-9)),
        "latency_ms": summary(all),
        "latency_ms_by_kind": by_kind,
        "latency_p99_ms_by_window": p99_by_window,
        "unacknowledged": unacknowledged,
        "graph_requests": requests,
        "graph_requests_per_change": per_change,
        "graph_writes": observe::writes(log),
        "echo_writes": echo,
    })
}

fn cell(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        _ => "-".into(),
    }
}

/// A short human table on stderr (the JSON goes to stdout).
pub fn table(report: &Value) {
    eprintln!(
        "{:<9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>6} {:>6}",
        "phase", "rate", "changes", "p50 ms", "p95 ms", "p99 ms", "max ms", "req/chg", "echo", "cpu%"
    );
    let steady = std::iter::once(&report["steady"]);
    let ceiling = report["ceiling"].as_array().into_iter().flatten();
    for p in steady.chain(ceiling) {
        let requests: f64 = p["graph_requests_per_change"]
            .as_object()
            .map(|m| m.iter().filter(|(k, _)| k.as_str() != "non_2xx").filter_map(|(_, v)| v.as_f64()).sum())
            .unwrap_or(0.0);
        eprintln!(
            "{:<9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>6} {:>6}",
            cell(&p["name"]),
            cell(&p["achieved_rate"]),
            cell(&p["changes"]),
            cell(&p["latency_ms"]["p50"]),
            cell(&p["latency_ms"]["p95"]),
            cell(&p["latency_ms"]["p99"]),
            cell(&p["latency_ms"]["max"]),
            round(requests),
            cell(&p["echo_writes"]),
            cell(&p["cpu_percent_of_one_core"]),
        );
    }
    eprintln!(
        "no-op churn: {} rows updated, {} Graph writes besides the marker",
        cell(&report["noop"]["rows_updated"]),
        cell(&report["noop"]["graph_writes_besides_marker"])
    );
    eprintln!(
        "process: peak RSS {} MiB, CPU {} s",
        cell(&report["process"]["peak_rss_mib"]),
        cell(&report["process"]["cpu_seconds_total"])
    );
}

/// The scale-out run's table on stderr: one line per load step, and per instance count the rate it held.
pub fn scale_out_table(report: &Value) {
    eprintln!(
        "{:<9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8} {:>8}",
        "instances", "target", "rate", "p50 ms", "p95 ms", "p99 ms", "max ms", "echo", "cpu%", "bench%"
    );
    for run in report["runs"].as_array().into_iter().flatten() {
        for step in run["steps"].as_array().into_iter().flatten() {
            eprintln!(
                "{:<9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8} {:>8}",
                cell(&run["instances"]),
                cell(&step["target_rate"]),
                cell(&step["achieved_rate"]),
                cell(&step["latency_ms"]["p50"]),
                cell(&step["latency_ms"]["p95"]),
                cell(&step["latency_ms"]["p99"]),
                cell(&step["latency_ms"]["max"]),
                cell(&step["echo_writes"]),
                cell(&step["instances_cpu_percent_of_one_core"]),
                cell(&step["cpu_percent_of_one_core"]),
            );
        }
        eprintln!(
            "{} instance(s): held {} changes/s at p99 <= 1 s (ratio to the first count: {})",
            cell(&run["instances"]),
            cell(&run["sustained_rate"]),
            cell(&run["ratio_to_first"])
        );
    }
}
