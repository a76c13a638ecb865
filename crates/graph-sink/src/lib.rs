//! graph-sink: writes the desired state of the room calendars to Microsoft Graph and the mapping tables,
//! effectively exactly once.
//!
//! ```text
//! <prefix>.sync.desired --+                                   +--> Graph ($batch, <= 4 per mailbox)
//! <prefix>.sync.imports --+--> units of work (see `unit`) ----+--> outlook_calendar_mapping, bb_event (imports)
//!                                                             +--> roomsync_consumer_offsets (same transaction)
//!                                                             +--> <prefix>.deadletter (parked items)
//! roomsync_conflicts (status 'declined') --> decline worker (see `decline`) --> Graph decline, declined_at
//! ```
//! Invariants (the argument is spelled out in the README):
//! - PostgreSQL's `outlook_calendar_mapping` is the authority on what exists in Graph, and
//!   `roomsync_consumer_offsets` on what has been applied; both move in one transaction per unit;
//! - every create carries a deterministic transactionId recorded (as an intent) before the POST, and is preceded
//!   by a lookup by tags (or, for an item never tried, by a check that its calendar holds no tagged event the
//!   table does not know: `clean`), so no crash window can produce a second event for an item;
//! - an item whose content hash is already recorded is not written again; deletes treat 404 as done;
//! - a definite Graph failure parks only its item (mapping status `parked`, dead letter, metric);
//! - a conflict row is marked declined only after Graph took the decline or the event was already gone.

#![warn(missing_docs)]

mod catch_up;
mod clean;
mod config;
mod conflicts;
mod consumer;
mod content;
mod deadletter;
mod decline;
mod error;
mod fence;
mod identity;
mod imports;
pub mod mapping;
pub mod metrics;
mod offsets;
mod plan;
mod unit;
mod work;
mod writer;

use std::future::Future;

use graph_client::GraphClient;
use schema_registry::{AvroCodec, RegistryClient};
use streams::{ensure_topics, RecordProducer, TopicSpec};
use tokio_postgres::NoTls;
use tracing::{info, warn};
use vocabulary::topics::Topics;

pub use clean::Lookups;
pub use config::{
    Config, CrashHook, CrashPoint, DEFAULT_BATCH_LINGER, DEFAULT_CATCH_UP_LINGER, DEFAULT_DECLINE_COMMENT,
    DEFAULT_MAX_BATCH_RECORDS, DEFAULT_MAX_CATCH_UP_RECORDS, DEFAULT_UNIT_RETRY_LIMIT,
};
pub use content::event_for;
pub use decline::{decline_pending, DeclineReport};
pub use error::SinkError;
pub use fence::KEEPALIVE_SECONDS;
pub use identity::{first_transaction_id, next_transaction_id};

use crate::consumer::SinkConsumer;
use crate::unit::Ended;
use crate::work::Source;

/// A running sink's connections.
pub(crate) struct Sink {
    config: Config,
    topics: Topics,
    db: tokio_postgres::Client,
    graph: GraphClient,
    codec: AvroCodec,
    producer: RecordProducer,
    consumer: SinkConsumer,
    /// Mailboxes checked for tagged events the mapping table does not know (see `clean`).
    clean: clean::CleanMailboxes,
    /// Records that arrived while a unit ran (partitions assigned meanwhile), for the next unit.
    pending: std::collections::VecDeque<work::Source>,
}

/// The first records of a unit.
enum Fill {
    /// A unit that did not fill up within its linger (or may not grow): applied as it is.
    Steady(Vec<Source>),
    /// A unit that filled up: it goes on taking records until `end` while it writes.
    CatchingUp {
        /// The records so far.
        records: Vec<Source>,
        /// When it stops taking records.
        end: tokio::time::Instant,
    },
}

/// Runs the sink until `shutdown` completes (a unit in progress is abandoned uncommitted: it is replayed on the
/// next start, which is safe by construction) or an error that needs fixing stops it; transient failures (a lost
/// database connection, a broker outage) start it again, from PostgreSQL's offsets (`supervision`).
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), SinkError> {
    supervision::supervise("graph-sink", shutdown, |stop| run_once(&config, stop.wait())).await
}

async fn run_once(config: &Config, shutdown: impl Future<Output = ()>) -> Result<(), SinkError> {
    let config = config.clone();
    let topics = config.connections.topics.clone();
    let (db, connection) = config.connections.database.connect(NoTls).await.map_err(SinkError::pg("connecting"))?;
    let connection = tokio::spawn(async move {
        if let Err(err) = connection.await {
            warn!(error = %err, "postgres connection ended");
        }
    });
    fence::keep_alive(&db).await?;
    let mut specs = vec![TopicSpec::of(&topics, topics.desired()), TopicSpec::of(&topics, topics.dead_letter())];
    if config.imports_enabled {
        specs.push(TopicSpec::of(&topics, topics.imports()));
    }
    ensure_topics(&config.connections.kafka, &specs).await?;
    let codec = AvroCodec::new(RegistryClient::new(&config.connections.registry_url));
    let mut sink = Sink {
        graph: GraphClient::new(config.graph.clone())?,
        producer: RecordProducer::new(&config.connections.kafka, codec.clone())?,
        consumer: subscribe(&config, &topics)?,
        clean: clean::CleanMailboxes::default(),
        pending: Default::default(),
        codec,
        db,
        topics,
        config,
    };
    info!(group = %sink.config.consumer_group, imports = sink.config.imports_enabled, "graph sink running");
    let declines = decline::run(
        sink.config.connections.database.clone(),
        sink.graph.clone(),
        sink.config.decline_interval,
        sink.config.decline_comment.clone(),
    );
    let mut shutdown = std::pin::pin!(shutdown);
    // The decline worker runs beside the consumer in this task and is dropped with it: a decline cut short is
    // repeated on the next start, where it meets 404 and counts as done.
    let result = tokio::select! {
        result = sink.serve(&mut shutdown) => result,
        () = declines => Ok(()),
    };
    drop(sink);
    connection.abort();
    result
}

/// Joins the sink's group on its input topics (the desired items, and the imports when enabled).
fn subscribe(config: &Config, topics: &Topics) -> Result<SinkConsumer, SinkError> {
    let mut inputs = vec![topics.desired()];
    if config.imports_enabled {
        inputs.push(topics.imports());
    }
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    SinkConsumer::subscribe(&config.connections.kafka, &config.consumer_group, &inputs, &config.connections.database)
}

impl Sink {
    /// The records of the next unit, `first` first: those arriving within `batch_linger`, up to
    /// `max_batch_records`. A unit that fills up before its linger is catching up (a first load, a backlog): it
    /// goes on taking records while they keep coming, up to `max_catch_up_records` or `catch_up_linger`, and
    /// writes while it fills (`catch_up`). In steady state a unit never fills, so latency stays that of the
    /// linger.
    async fn fill_unit(&mut self, first: Source) -> Result<Fill, SinkError> {
        let started = tokio::time::Instant::now();
        let mut records = vec![first];
        let linger_end = started + self.config.batch_linger;
        while records.len() < self.config.max_batch_records.max(1) {
            if let Some(record) = self.pending.pop_front() {
                records.push(record);
                continue;
            }
            match tokio::time::timeout_at(linger_end, self.consumer.recv()).await {
                Ok(record) => records.push(record?),
                Err(_) => return Ok(Fill::Steady(records)),
            }
        }
        if records.len() >= self.config.max_catch_up_records {
            return Ok(Fill::Steady(records));
        }
        Ok(Fill::CatchingUp { records, end: started + self.config.catch_up_linger })
    }

    async fn serve(&mut self, shutdown: &mut (impl Future<Output = ()> + Unpin)) -> Result<(), SinkError> {
        let mut assignment = streams::AssignmentWatch::new(std::time::Instant::now(), streams::UNASSIGNED_REPORT_AFTER)
            .with_rejoin(self.config.connections.kafka.rejoin_unassigned_after);
        let mut check = tokio::time::interval(std::time::Duration::from_secs(10));
        loop {
            let pending = self.pending.pop_front();
            let first = if let Some(record) = pending {
                record
            } else {
                tokio::select! {
                    record = self.consumer.recv() => record?,
                    () = &mut *shutdown => return Ok(()),
                    _ = check.tick() => {
                        let assigned = self.consumer.assigned();
                        ::metrics::gauge!(crate::metrics::ASSIGNED_PARTITIONS).set(assigned as f64);
                        if let Some(idle) = assignment.observe(assigned, std::time::Instant::now()) {
                            warn!(idle_seconds = idle.as_secs(), "the graph sink has no partition of its group: it \
                                applies nothing (normal only while other instances hold every partition)");
                        }
                        if let Some(idle) = assignment.rejoin_due(std::time::Instant::now()) {
                            // A new consumer joins as a new member; the old one leaves the group as it is dropped.
                            warn!(idle_seconds = idle.as_secs(), "the graph sink leaves its group to join again");
                            self.consumer = subscribe(&self.config, &self.topics)?;
                            assignment.joined(std::time::Instant::now());
                        }
                        continue;
                    }
                }
            };
            let ended = match self.fill_unit(first).await? {
                Fill::Steady(records) => self.apply_unit(records, shutdown).await?,
                Fill::CatchingUp { records, end } => self.apply_catching_up(records, end, shutdown).await?,
            };
            match ended {
                Ended::Committed => {}
                Ended::Interrupted => {
                    info!("graph sink stopped inside a unit; it is replayed on the next start");
                    return Ok(());
                }
                Ended::Abandoned => {
                    ::metrics::counter!(crate::metrics::UNITS_ABANDONED).increment(1);
                    warn!(
                        limit_seconds = self.config.unit_retry_limit.as_secs(),
                        "a unit kept failing transiently; abandoned uncommitted, joining the group again so that \
                         whichever member owns its partitions applies it"
                    );
                    // The new member is assigned at PostgreSQL's offsets; what arrived meanwhile comes again.
                    self.pending.clear();
                    self.consumer = subscribe(&self.config, &self.topics)?;
                    assignment.joined(std::time::Instant::now());
                }
            }
        }
    }
}
