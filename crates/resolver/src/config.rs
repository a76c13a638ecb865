//! Configuration of the resolver: a plain struct (the root binary maps its TOML into it), with every
//! default in one place ([`Config::new`] and [`Policies::default`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use vocabulary::oslo::DstRules;

pub use migrations::conflicts::ConflictPolicy;

/// How lower-priority items are shown where a higher-priority item holds the same room at the same time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverlapPolicy {
    /// Only for the uncovered parts, split into pieces; pieces shorter than `min_piece` are dropped.
    #[default]
    Trim,
    /// Not at all if any higher-priority item overlaps it.
    Hide,
    /// Every item in full, overlaps and all.
    ShowAll,
}

/// What to do when someone edits (or deletes) in Outlook an event roomsync wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EditPolicy {
    /// The booking system is the authority: the desired state is emitted again so the sink rewrites it.
    #[default]
    Revert,
    /// Leave the edit in Outlook; log and count it.
    Record,
}

/// The domain policies; each default is documented in the README.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policies {
    /// Overlap of priorities in one room.
    pub overlap: OverlapPolicy,
    /// Trimmed pieces shorter than this are dropped (default one minute).
    pub min_piece: Duration,
    /// Outlook edits of roomsync's events.
    pub outlook_edit: EditPolicy,
    /// Outlook-origin bookings that overlap a reservation.
    pub conflict: ConflictPolicy,
    /// Emit import records for non-conflicting Outlook-origin bookings (default on).
    pub import_outlook_bookings: bool,
    /// DST rules for Oslo wall-clock times (default: gap shifted forward, fold takes the earlier instant).
    pub dst: DstRules,
    /// The zone written into desired items (default Europe/Oslo).
    pub time_zone: String,
}

impl Default for Policies {
    fn default() -> Self {
        Policies {
            overlap: OverlapPolicy::Trim,
            min_piece: Duration::from_secs(60),
            outlook_edit: EditPolicy::Revert,
            conflict: ConflictPolicy::Record,
            import_outlook_bookings: true,
            dst: DstRules::default(),
            time_zone: "Europe/Oslo".to_owned(),
        }
    }
}

/// The sync window: `[now - past, now + horizon)`, sliding with time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowConfig {
    /// How far back from now items are still managed (default 1 day).
    pub past: Duration,
    /// How far ahead items are written (default 180 days).
    pub horizon: Duration,
    /// How often the window is moved and every room re-evaluated (default 1 minute).
    pub tick: Duration,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig {
            past: vocabulary::window::DEFAULT_PAST,
            horizon: vocabulary::window::DEFAULT_HORIZON,
            tick: Duration::from_secs(60),
        }
    }
}

/// How long the oldest buffered transaction may wait for its END and records (whatever else arrives meanwhile)
/// before it is applied as it is, with a warning; records of it arriving later are applied late.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How the resolver knows that a source transaction is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionMode {
    /// Wait for the END record of `<prefix>.cdc.transactions` and all records it counts (exact; default).
    /// The oldest transaction still incomplete after [`STALL_TIMEOUT`] (a record the resolver could not decode
    /// never counts) is applied as it is, with a warning.
    EndMarkers,
    /// FALLBACK for a cdc-reader without transaction metadata: apply the buffered transactions once no CDC
    /// record arrived for this long (a link rewrite spread over topics is applied as one step if it arrives
    /// within the period).
    QuietPeriod(Duration),
}

/// Settings of the resolver.
#[derive(Debug, Clone)]
pub struct Config {
    /// Kafka (with the partitions and replication factor of the topics the resolver creates: reservations,
    /// desired, imports; and the rejoin delay of a member without partitions), the schema registry, the topic
    /// names, and the booking database: it holds `roomsync_conflicts`, and the rows of reservations moved back
    /// into the window are read from it.
    pub connections: streams::Connections,
    /// Schema of the captured booking tables (default `public`).
    pub source_schema: String,
    /// Consumer group of the resolver instances (default `<prefix>-resolver`, [`vocabulary::topics::Topics::group`]).
    pub group: String,
    /// Domain policies.
    pub policies: Policies,
    /// Sync window.
    pub window: WindowConfig,
    /// Transaction completeness.
    pub transactions: TransactionMode,
    /// Most CDC records buffered while waiting for transactions to complete (bounds memory; when reached the
    /// oldest buffered transactions are applied as they are).
    pub max_buffered_records: usize,
    /// Input taken in and not turned into output for this long is a stall: warned, counted in
    /// `roomsync_resolver_stalled_seconds`, written to `roomsync_stage_health` (see `liveness`).
    pub stall_after: Duration,
    /// How often the state is written to the group's checkpoint (`roomsync_resolver_checkpoints`, see
    /// [`crate::checkpoint`]); also once after every start that read anything. `None`: never (every start
    /// reads every input topic from the beginning).
    pub checkpoint_every: Option<Duration>,
}

/// Default of [`Config::checkpoint_every`].
pub const DEFAULT_CHECKPOINT_EVERY: Duration = Duration::from_secs(600);

impl Config {
    /// Every default, for `connections`.
    pub fn new(connections: streams::Connections) -> Self {
        let group = connections.topics.group("resolver");
        Config {
            connections,
            source_schema: "public".to_owned(),
            group,
            policies: Policies::default(),
            window: WindowConfig::default(),
            transactions: TransactionMode::EndMarkers,
            max_buffered_records: 100_000,
            stall_after: Duration::from_secs(120),
            checkpoint_every: Some(DEFAULT_CHECKPOINT_EVERY),
        }
    }
}
