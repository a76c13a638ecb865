//! What the sink needs to run, as a plain struct (the root binary maps its TOML into it), plus the crash hook
//! tests use to stop the sink at the windows the exactly-once argument is about.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use graph_client::ClientConfig;
use migrations::conflicts::ConflictPolicy;
use streams::Connections;

/// A point between two durable writes where a crash must not break exactly-once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrashPoint {
    /// A mailbox's intents (and transactionIds) are committed in PostgreSQL; none of its Graph writes was sent yet
    /// (other mailboxes of the unit may be further on: each goes through its round on its own).
    AfterIntent,
    /// Graph writes were answered; their results are not yet committed in PostgreSQL.
    AfterGraph,
    /// Results and offsets are committed in PostgreSQL; the Kafka offset commit has not been sent.
    AfterCommit,
}

/// Asked at every [`CrashPoint`]; answering `true` makes [`run`](crate::run) stop at once with
/// [`SinkError::Crashed`](crate::SinkError::Crashed), leaving everything after that point undone, as a crash would.
pub type CrashHook = Arc<dyn Fn(CrashPoint) -> bool + Send + Sync>;

/// Configuration of the graph sink.
#[derive(Clone)]
pub struct Config {
    /// Kafka, the schema registry (records are Confluent-framed Avro), the topic names and the booking database
    /// (which holds roomsync's tables; its `Debug` hides the password).
    pub connections: Connections,
    /// Consumer group (default `<prefix>-graph-sink`); also the key of the offsets stored in PostgreSQL (a group
    /// without offsets takes those of `offsets::LEGACY_GROUP` for the same topics).
    pub consumer_group: String,
    /// Microsoft Graph client settings (per-mailbox concurrency, retries).
    pub graph: ClientConfig,
    /// Most records handled as one unit (one intent statement per mailbox and round, one result transaction).
    pub max_batch_records: usize,
    /// How long to wait for more records once one has arrived, to fill a unit.
    pub batch_linger: Duration,
    /// Most records of a unit taken while catching up: a unit that fills `max_batch_records` before its linger
    /// (a first load, a restart after an outage, a backfill) goes on taking records while they keep coming, up to
    /// this many, writing while it fills (`catch_up`; see the README, "Catching up").
    pub max_catch_up_records: usize,
    /// How long a catching-up unit may go on taking records (it then finishes what it took and commits).
    pub catch_up_linger: Duration,
    /// Whether an item seen for the first time may skip its lookup by tags in a mailbox checked clean (`clean`).
    pub lookups: crate::clean::Lookups,
    /// First wait before a unit's transiently failed items are tried again.
    pub retry_backoff: Duration,
    /// Longest wait between such retries.
    pub max_retry_backoff: Duration,
    /// How long a unit's items may go on failing transiently (counted from the first failure) before the unit is
    /// abandoned uncommitted and the member rejoins its group, so that whichever member then owns the partitions
    /// (this one again, alone) applies the records anew.
    pub unit_retry_limit: Duration,
    /// Import Outlook-origin bookings from `<prefix>.sync.imports` (mapping rows).
    pub imports_enabled: bool,
    /// With imports enabled, also create a `bb_event` (with resource link and date) per import.
    pub import_bb_events: bool,
    /// With imports enabled, check each import against the booking database in the import's transaction: an
    /// overlap with an active reservation of the resource is recorded in `roomsync_conflicts` instead of
    /// imported.
    pub record_import_conflicts: bool,
    /// The status such a conflict is recorded with: `open` for review, or `declined` (the decline worker
    /// declines it in the room calendar). The same policy the resolver applies to the conflicts it finds.
    pub conflict_policy: ConflictPolicy,
    /// How often the decline worker looks for conflicts with status `declined` not yet carried out (at least
    /// 100 ms).
    pub decline_interval: Duration,
    /// The comment sent to the organizer with a decline.
    pub decline_comment: String,
    /// Tests only: stop at crash windows. `None` in production.
    pub crash_hook: Option<CrashHook>,
}

/// The default [`Config::max_batch_records`].
pub const DEFAULT_MAX_BATCH_RECORDS: usize = 500;

/// The default [`Config::batch_linger`].
pub const DEFAULT_BATCH_LINGER: Duration = Duration::from_millis(50);

/// The default [`Config::max_catch_up_records`]: a first load of a large municipality (about 26,000 events in
/// 400 rooms) in one unit.
pub const DEFAULT_MAX_CATCH_UP_RECORDS: usize = 50_000;

/// The default [`Config::catch_up_linger`].
pub const DEFAULT_CATCH_UP_LINGER: Duration = Duration::from_secs(3);

/// The default [`Config::unit_retry_limit`]: a Graph outage or throttling storm shorter than this is ridden out
/// inside the unit.
pub const DEFAULT_UNIT_RETRY_LIMIT: Duration = Duration::from_secs(600);

/// The default [`Config::decline_comment`], in Norwegian and English.
pub const DEFAULT_DECLINE_COMMENT: &str =
    "Rommet er allerede reservert i bookingsystemet. / The room is already reserved in the booking system.";

impl Config {
    /// A config with the defaults documented in the README.
    pub fn new(connections: Connections, graph: ClientConfig) -> Self {
        let consumer_group = connections.topics.group("graph-sink");
        Config {
            connections,
            consumer_group,
            graph,
            max_batch_records: DEFAULT_MAX_BATCH_RECORDS,
            batch_linger: DEFAULT_BATCH_LINGER,
            max_catch_up_records: DEFAULT_MAX_CATCH_UP_RECORDS,
            catch_up_linger: DEFAULT_CATCH_UP_LINGER,
            lookups: crate::clean::Lookups::default(),
            retry_backoff: Duration::from_millis(200),
            max_retry_backoff: Duration::from_secs(30),
            unit_retry_limit: DEFAULT_UNIT_RETRY_LIMIT,
            imports_enabled: false,
            import_bb_events: false,
            record_import_conflicts: true,
            conflict_policy: ConflictPolicy::default(),
            decline_interval: Duration::from_secs(10),
            decline_comment: DEFAULT_DECLINE_COMMENT.to_owned(),
            crash_hook: None,
        }
    }

    pub(crate) fn crash_at(&self, point: CrashPoint) -> bool {
        self.crash_hook.as_ref().is_some_and(|hook| hook(point))
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("connections", &self.connections)
            .field("consumer_group", &self.consumer_group)
            .field("graph", &self.graph)
            .field("max_batch_records", &self.max_batch_records)
            .field("batch_linger", &self.batch_linger)
            .field("max_catch_up_records", &self.max_catch_up_records)
            .field("catch_up_linger", &self.catch_up_linger)
            .field("unit_retry_limit", &self.unit_retry_limit)
            .field("lookups", &self.lookups)
            .field("imports_enabled", &self.imports_enabled)
            .field("import_bb_events", &self.import_bb_events)
            .field("record_import_conflicts", &self.record_import_conflicts)
            .field("conflict_policy", &self.conflict_policy)
            .field("decline_interval", &self.decline_interval)
            .field("crash_hook", &self.crash_hook.is_some())
            .finish_non_exhaustive()
    }
}
