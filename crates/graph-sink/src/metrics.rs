//! Metric names of the graph sink (Prometheus style), in one place. Labels are low-cardinality: `op`
//! (create, update, delete, adopt, skip), `outcome`, `kind` (error class); never ids or mailboxes.

/// Counter: items applied, by `op`.
pub const ITEMS_APPLIED: &str = "roomsync_graph_sink_items_total";
/// Counter: items parked after a definite error, by `kind`.
pub const ITEMS_PARKED: &str = "roomsync_graph_sink_parked_total";
/// Counter: transient item failures that will be retried.
pub const ITEMS_RETRIED: &str = "roomsync_graph_sink_retries_total";
/// Counter: items created without a lookup by tags first, their mailbox checked clean (see `clean`).
pub const LOOKUPS_SKIPPED: &str = "roomsync_graph_sink_lookups_skipped_total";
/// Counter: records skipped because PostgreSQL's offsets say they were applied already.
pub const RECORDS_REPLAYED: &str = "roomsync_graph_sink_replayed_records_total";
/// Counter: records written to the dead-letter topic.
pub const DEAD_LETTERS: &str = "roomsync_graph_sink_dead_letters_total";
/// Counter: import records applied, by `op` (`upsert`, `cancel`; `skipped`: times out of range, logged).
pub const IMPORTS_APPLIED: &str = "roomsync_graph_sink_imports_total";
/// Histogram: seconds from the booking-system commit to the Graph write that carries it, acknowledged and
/// recorded in the mapping table (items whose desired record names its source commit time), by `op`.
pub const END_TO_END_SECONDS: &str = "roomsync_end_to_end_latency_seconds";
/// Histogram: seconds to apply one unit (poll batch), from first record to offset commit.
pub const UNIT_SECONDS: &str = "roomsync_graph_sink_unit_seconds";
/// Counter: conflicting Outlook bookings declined (policy decline), by `outcome` (declined, already_gone).
pub const DECLINES_DONE: &str = "roomsync_graph_sink_declines_total";
/// Counter: declines that failed, by `kind` (definite: recorded in `decline_error`; transient: retried).
pub const DECLINES_FAILED: &str = "roomsync_graph_sink_decline_failures_total";
/// Counter: events found or answered (transactionId de-duplication) with roomsync's tags but edited in Outlook
/// meanwhile, so rewritten instead of being taken as written, by `op` (adopt, create).
pub const EDITED_BEFORE_SETTLED: &str = "roomsync_graph_sink_edited_before_settled_total";
/// Counter: units that waited for another member's unit of the same partitions (`fence`).
pub const FENCE_WAITS: &str = "roomsync_graph_sink_fence_waits_total";
/// Counter: partition assignments and revocations of this member, by `kind` (assign, revoke).
pub const REBALANCES: &str = "roomsync_graph_sink_rebalances_total";
/// Counter: units abandoned after `unit_retry_limit` of transient failures, left to be retried by whichever
/// member owns their partitions.
pub const UNITS_ABANDONED: &str = "roomsync_graph_sink_units_abandoned_total";
/// Gauge: partitions of the sink's group (desired/imports) this instance is assigned.
pub const ASSIGNED_PARTITIONS: &str = "roomsync_graph_sink_assigned_partitions";
