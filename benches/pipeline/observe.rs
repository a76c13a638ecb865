//! Watching the emulator: which change has reached its room calendar and when (the event's
//! `lastModifiedDateTime`, stamped by the emulator when it applied the write, or the arrival time of the DELETE in
//! the request log), what Graph requests the pipeline made, and what the process used.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use graph_emulator::{Emulator, LogEntry};

use crate::load::{lock, Kind, Shared};
use crate::setup::mailbox;

fn instant(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

/// One pass over every bench room calendar: acknowledges the changes whose final state is there.
pub fn sample(emu: &Emulator, ledger: &Shared, rooms: usize) {
    let started = Utc::now();
    let mut present = HashSet::new();
    let mut seen: Vec<(String, String, Option<DateTime<Utc>>)> = Vec::new();
    let mut transactions = Vec::new();
    for room in 0..rooms {
        // Stamps, not rendered events: rendering every bench event ten times a second was a fifth of the process.
        for event in emu.mailbox_event_stamps(&mailbox(room)).unwrap_or_default() {
            let Some(subject) = event.subject else { continue };
            present.insert(event.id.clone());
            if let Some(t) = event.transaction_id {
                transactions.push((t, event.id.clone()));
            }
            seen.push((event.id, subject, Some(event.modified)));
        }
    }
    let mut guard = lock(ledger);
    let l = &mut *guard;
    l.transactions.extend(transactions);
    for (id, subject, modified) in seen {
        if let Some(seq) = subject.strip_prefix("bench ").and_then(|n| n.parse::<usize>().ok()) {
            let Some(change) = l.changes.get_mut(seq) else { continue };
            let (Some(bb_id), None) = (change.bb_id, change.acked) else { continue };
            if change.kind == Kind::Cancel {
                continue;
            }
            change.acked = modified;
            change.graph_id = Some(id.clone());
            if let Some(live) = l.live.get_mut(&bb_id) {
                live.graph_id = Some(id);
                live.busy = false;
            }
        } else if let Some(bb_id) = subject.strip_prefix("seed ").and_then(|n| n.parse::<i32>().ok()) {
            if let Some(live) = l.live.get_mut(&bb_id).filter(|e| e.graph_id.is_none()) {
                live.graph_id = Some(id);
            }
        }
    }
    // A cancelled event gone from its calendar in a pass that started after the commit has been deleted; the
    // exact instant comes from the request log afterwards.
    for change in l.changes.iter_mut().filter(|c| c.kind == Kind::Cancel && c.acked.is_none()) {
        let committed_before = change.committed.is_some_and(|c| c < started);
        if committed_before && change.graph_id.as_ref().is_some_and(|g| !present.contains(g)) {
            change.acked = Some(started);
            if let Some(bb_id) = change.bb_id {
                l.live.remove(&bb_id);
            }
        }
    }
}

/// Replaces the provisional instants of cancellations with the arrival time of their DELETE.
pub fn refine_cancellations(log: &[LogEntry], ledger: &Shared) {
    let mut deleted: HashMap<&str, DateTime<Utc>> = HashMap::new();
    for entry in log.iter().filter(|e| e.method == "DELETE" && (200..300).contains(&e.status)) {
        if let (Some(id), Some(at)) = (entry.path.rsplit('/').next(), instant(&entry.timestamp)) {
            deleted.entry(id).or_insert(at);
        }
    }
    let mut l = lock(ledger);
    for change in l.changes.iter_mut().filter(|c| c.kind == Kind::Cancel && c.acked.is_some()) {
        if let Some(at) = change.graph_id.as_deref().and_then(|g| deleted.get(g)) {
            change.acked = Some(*at);
        }
    }
}

/// Polls the calendars every `every` until `done` says stop.
pub async fn watch(
    emu: Emulator,
    ledger: Shared,
    rooms: usize,
    every: Duration,
    done: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    while !*done.borrow() {
        tick.tick().await;
        sample(&emu, &ledger, rooms);
    }
}

fn is_write(entry: &LogEntry) -> bool {
    matches!(entry.method.as_str(), "POST" | "PATCH" | "DELETE") && entry.path.contains("/events")
}

/// Graph requests of one phase, by kind (2xx only for writes; every answer counts as a request).
pub fn requests(log: &[LogEntry]) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for entry in log {
        let kind = match entry.method.as_str() {
            "POST" if entry.path.contains("$batch") => "batches",
            "POST" if is_write(entry) => "creates",
            "PATCH" if is_write(entry) => "updates",
            "DELETE" if is_write(entry) => "deletes",
            "GET" => "gets",
            _ if entry.path.contains("/token") => "tokens",
            _ => "other",
        };
        *counts.entry(kind).or_insert(0) += 1;
        if !(200..300).contains(&entry.status) {
            *counts.entry("non_2xx").or_insert(0) += 1;
        }
    }
    counts
}

/// Successful event writes (inside `$batch` too).
pub fn writes(log: &[LogEntry]) -> usize {
    log.iter().filter(|e| is_write(e) && (200..300).contains(&e.status)).count()
}

/// Writes no change asked for: per Graph event, successful writes beyond one per change of the phase that
/// targeted it (its create, each move, its cancellation), plus writes that match no event at all.
pub fn echo_writes(log: &[LogEntry], ledger: &Shared, seqs: std::ops::Range<usize>) -> usize {
    let by_transaction = lock(ledger).transactions.clone();
    let mut actual: HashMap<String, usize> = HashMap::new();
    let mut unattributed = 0;
    for entry in log.iter().filter(|e| is_write(e) && (200..300).contains(&e.status)) {
        let id = match entry.method.as_str() {
            "POST" => entry.transaction_id.as_ref().and_then(|t| by_transaction.get(t)).cloned(),
            _ => entry.path.rsplit('/').next().map(str::to_owned),
        };
        match id {
            Some(id) => *actual.entry(id).or_insert(0) += 1,
            None => unattributed += 1,
        }
    }
    let l = lock(ledger);
    let mut expected: HashMap<&str, usize> = HashMap::new();
    for change in l.changes.get(seqs).unwrap_or_default() {
        if let Some(id) = &change.graph_id {
            *expected.entry(id.as_str()).or_insert(0) += 1;
        }
    }
    let extra: usize =
        actual.iter().map(|(id, n)| n.saturating_sub(expected.get(id.as_str()).copied().unwrap_or(0))).sum();
    extra + unattributed
}

fn proc_field(file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Peak RSS and CPU so far of process `pid` (a number, or `self`), as the reports give them.
pub fn usage(pid: &str) -> serde_json::Value {
    serde_json::json!({
        "peak_rss_mib": crate::report::round(peak_rss_mib_of(pid)),
        "cpu_seconds_total": crate::report::round(cpu_seconds_of(pid)),
    })
}

/// Peak resident set size of process `pid` (a number, or `self`), in MiB.
pub fn peak_rss_mib_of(pid: &str) -> f64 {
    proc_field(&format!("/proc/{pid}/status"), "VmHWM:").unwrap_or(0) as f64 / 1024.0
}

/// User plus system CPU time of this process so far.
pub fn cpu_seconds() -> f64 {
    cpu_seconds_of("self")
}

/// User plus system CPU time of process `pid` (a number, or `self`) so far (clock ticks of 1/100 s, Linux'
/// USER_HZ); 0 when it cannot be read.
pub fn cpu_seconds_of(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { return 0.0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command name.
    (ticks(11) + ticks(12)) as f64 / 100.0
}

/// The `Value` of an optional instant difference in milliseconds.
pub fn millis(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (a - b).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0
}
