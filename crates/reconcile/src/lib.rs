//! reconcile: compares the booking system's desired state with what each room calendar really holds, reports
//! the drift and repairs it through the graph sink's exactly-once path.
//!
//! ```text
//! <prefix>.sync.desired (compacted) --read to the high watermarks--> desired upserts per room
//! per room: calendarView over the window (+ tags) ; outlook_calendar_mapping rows
//!        --> findings: Missing / Changed / Stale / Unmapped  (drift.rs, pure)
//!        --> repairs (unless dry run): reset row + produce the desired record again (the sink rewrites it),
//!                                      or DELETE a stale tagged event
//! ```
//! Invariants:
//! - a dry run sends no write anywhere: no Graph write, no PostgreSQL write, no Kafka record;
//! - the reconciler never writes event content to Graph: Missing and Changed go back through the sink, whose
//!   mapping rows, intents and transactionIds make the rewrite exactly once (see graph-sink's README);
//! - Outlook-origin events (no roomsync tags) are never touched; a tagged event is only deleted when nothing
//!   the sink may still be doing can explain it (see `drift`);
//! - the comparison uses a complete snapshot of the desired topic, or the run fails.

#![warn(missing_docs)]

mod actual;
mod desired;
mod drift;
#[cfg(test)]
mod drift_tests;
mod error;
pub mod metrics;
mod periodic;
mod repair;
mod report;
mod retry;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use graph_client::{ClientConfig, GraphClient};
use schema_registry::{AvroCodec, RegistryClient};
use streams::{Connections, RecordProducer};
use tokio_postgres::NoTls;
use tracing::{info, warn};

pub use error::Error;
pub use periodic::run_periodically;
pub use report::{Drift, DriftKind, Outcome, Repair, Report};
pub use retry::{retry_parked, Retried, RetryOptions, RetryReport};

use crate::drift::{overlaps, Action, Room};

/// Where everything is. A plain struct: the root package maps its TOML into it.
#[derive(Debug, Clone)]
pub struct Config {
    /// The booking database (it holds roomsync's tables; its `Debug` hides the password), Kafka, the schema
    /// registry and the topic names (`<prefix>.sync.desired`).
    pub connections: Connections,
    /// Graph client settings.
    pub graph: ClientConfig,
    /// The compared window starts this long before now.
    pub window_past: Duration,
    /// The compared window ends this long after now.
    pub horizon: Duration,
}

impl Config {
    /// A config with the sync window of the Graph source (now - 1 day .. now + 180 days).
    pub fn new(connections: Connections, graph: ClientConfig) -> Self {
        Config {
            connections,
            graph,
            window_past: vocabulary::window::DEFAULT_PAST,
            horizon: vocabulary::window::DEFAULT_HORIZON,
        }
    }
}

/// What one run does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Only report; change nothing.
    pub dry_run: bool,
    /// Room mailboxes to compare; empty = every active room of `bb_resource_outlook_item`.
    pub rooms: Vec<String>,
}

/// Runs one reconciliation: compares, reports, and repairs unless `options.dry_run`.
pub async fn reconcile(config: &Config, options: &Options) -> Result<Report, Error> {
    let started = Instant::now();
    let result = run(config, options).await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    ::metrics::counter!(crate::metrics::RUNS, "outcome" => outcome).increment(1);
    ::metrics::histogram!(crate::metrics::RUN_SECONDS).record(started.elapsed().as_secs_f64());
    if let Ok(report) = &result {
        for kind in DriftKind::ALL {
            let found = report.count(kind);
            ::metrics::counter!(crate::metrics::DRIFT_FOUND, "kind" => kind.as_str()).increment(found as u64);
            ::metrics::gauge!(crate::metrics::LAST_DRIFT, "kind" => kind.as_str()).set(found as f64);
        }
        for repair in &report.repairs {
            ::metrics::counter!(crate::metrics::REPAIRS, "kind" => repair.drift.kind.as_str(),
                "outcome" => repair.outcome.as_str())
            .increment(1);
        }
    }
    result
}

/// A PostgreSQL session for one run; its connection task ends with it.
pub(crate) struct Session {
    pub client: tokio_postgres::Client,
    connection: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// Opens a session on the booking database.
pub(crate) async fn session(config: &Config) -> Result<Session, Error> {
    let (client, connection) = config.connections.database.connect(NoTls).await.map_err(Error::pg("connecting"))?;
    let connection = tokio::spawn(async move {
        if let Err(err) = connection.await {
            warn!(error = %err, "postgres connection ended");
        }
    });
    Ok(Session { client, connection })
}

async fn run(config: &Config, options: &Options) -> Result<Report, Error> {
    let session = session(config).await?;
    compare_and_repair(config, options, &session.client).await
}

async fn compare_and_repair(config: &Config, options: &Options, db: &tokio_postgres::Client) -> Result<Report, Error> {
    let rooms = if options.rooms.is_empty() { actual::active_rooms(db).await? } else { options.rooms.clone() };
    let topic = config.connections.topics.desired();
    let codec = AvroCodec::new(RegistryClient::new(&config.connections.registry_url));
    let wanted: HashSet<String> = rooms.iter().cloned().collect();
    let snapshot = desired::read_snapshot(&config.connections.kafka, &codec, &topic, &wanted).await?;
    let graph = GraphClient::new(config.graph.clone())?;
    let producer =
        if options.dry_run { None } else { Some(RecordProducer::new(&config.connections.kafka, codec.clone())?) };
    let now = chrono::Utc::now();
    let from = now - chrono::Duration::from_std(config.window_past).unwrap_or(chrono::Duration::days(1));
    let to = now + chrono::Duration::from_std(config.horizon).unwrap_or(chrono::Duration::days(180));
    let mut report = Report { dry_run: options.dry_run, rooms: rooms.clone(), ..Report::default() };
    let mut produced = repair::Produced::default();
    let mut found: Vec<(String, drift::Finding)> = Vec::new();
    for mailbox in &rooms {
        let desired = snapshot.room(mailbox);
        // Mapped events of desired items in the window are fetched even if they left it (moved by a person).
        let before = actual::mapping_rows(db, mailbox).await?;
        let mapped: Vec<String> = before
            .iter()
            .filter(|r| {
                desired
                    .get(&r.item_key)
                    .and_then(|d| d.item.content.as_ref())
                    .is_some_and(|content| overlaps(content, from, to))
            })
            .filter_map(|r| r.event_id.clone())
            .collect();
        let calendar = match actual::read_calendar(&graph, mailbox, from, to, &mapped).await {
            Ok(calendar) => calendar,
            Err(err) => {
                warn!(mailbox = %mailbox, error = %err, "a room calendar could not be read; skipped");
                report.failed_rooms.push((mailbox.clone(), err.to_string()));
                continue;
            }
        };
        // Read after the calendar: an event the sink created meanwhile is then covered by its row.
        let rows = actual::mapping_rows(db, mailbox).await?;
        let unknown = |key: &str| snapshot.is_unknown(mailbox, key);
        let room = Room { mailbox, desired: &desired, rows: &rows, calendar: &calendar, unknown: &unknown };
        let findings = room.findings();
        report.desired_items += desired.len();
        report.events_seen += calendar.in_window.len();
        found.extend(findings.into_iter().map(|f| (mailbox.clone(), f)));
    }
    if let Some(producer) = &producer {
        let newer = if found.iter().any(|(_, f)| f.action != Action::None) {
            repair::keys_written_since(&config.connections.kafka, &topic, &snapshot.high).await?
        } else {
            HashSet::new()
        };
        for (mailbox, finding) in &found {
            let key = vocabulary::keys::room_item_key(mailbox, &finding.drift.item_key);
            let outcome = match &finding.action {
                Action::None => continue,
                // The resolver wrote the item during the run: the sink applies that, and the next run looks again.
                _ if newer.contains(&key) => Outcome::Skipped("a newer desired record arrived during the run".into()),
                Action::Rewrite { .. } => {
                    repair::rewrite(db, producer, &topic, mailbox, finding, &mut produced).await?
                }
                Action::Delete => repair::delete_stale(db, &graph, mailbox, finding).await?,
            };
            report.repairs.push(Repair { drift: finding.drift.clone(), outcome });
        }
    }
    report.drift = found.into_iter().map(|(_, f)| f.drift).collect();
    if let Some(producer) = &producer {
        report.superseded =
            repair::fence(&config.connections.kafka, producer, &topic, &snapshot.high, produced).await?;
    }
    info!(
        rooms = report.rooms.len(),
        missing = report.count(DriftKind::Missing),
        changed = report.count(DriftKind::Changed),
        stale = report.count(DriftKind::Stale),
        unmapped = report.count(DriftKind::Unmapped),
        repaired = report.repaired(),
        dry_run = options.dry_run,
        "reconciliation finished"
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn a_run_can_be_spawned_on_a_multi_threaded_runtime() {
        let graph = ClientConfig::new("t", "c", graph_client::Secret::new("s"));
        let config = Config::new(
            Connections::new(streams::KafkaSettings::new("nowhere:9092"), "http://nowhere", Default::default()),
            graph,
        );
        let options = Options::default();
        // Never polled: only the type matters.
        assert_send(&reconcile(&config, &options));
        assert_send(&run_periodically(config.clone(), Duration::from_secs(1), async {}));
    }
}
