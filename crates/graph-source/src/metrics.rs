//! Metric names of the Graph source, in one place. Labels: `mailbox` (one per watched room, low cardinality).

/// Gauge: Unix time (seconds) of the last round that completed for a room.
pub const LAST_SUCCESS: &str = "roomsync_graph_source_last_success_timestamp_seconds";
/// Gauge: failed rounds in a row for a room (0 after a success).
pub const CONSECUTIVE_FAILURES: &str = "roomsync_graph_source_consecutive_failures";
/// Counter: records produced to the graph events topic, by `op` (upsert, delete).
pub const RECORDS_PRODUCED: &str = "roomsync_graph_source_records_produced_total";
/// Counter: completed rounds, by `kind` (full, incremental).
pub const ROUNDS: &str = "roomsync_graph_source_rounds_total";
/// Counter: delta tokens Graph no longer knew (410), each leading to a full round.
pub const TOKEN_EXPIRED: &str = "roomsync_graph_source_delta_token_expired_total";
/// Counter: items skipped because Graph sent something that could not be normalised.
pub const ITEMS_SKIPPED: &str = "roomsync_graph_source_items_skipped_total";
/// Gauge: rooms being watched.
pub const ROOMS_WATCHED: &str = "roomsync_graph_source_rooms_watched";
/// Counter: webhook notifications, by `outcome` (accepted, rejected, unknown_subscription, malformed).
pub const NOTIFICATIONS: &str = "roomsync_graph_source_notifications_total";
/// Counter: lifecycle events received, by `event`.
pub const LIFECYCLE_EVENTS: &str = "roomsync_graph_source_lifecycle_events_total";
/// Counter: subscription operations, by `op` (created, renewed, deleted, failed).
pub const SUBSCRIPTION_OPS: &str = "roomsync_graph_source_subscription_ops_total";
