//! Metric names of the resolver, in one place. Labels stay low-cardinality (no ids, no mailboxes).

/// CDC transactions applied.
pub const TRANSACTIONS_APPLIED: &str = "roomsync_resolver_transactions_applied_total";
/// Reservation records emitted (label `op`).
pub const RESERVATIONS_EMITTED: &str = "roomsync_resolver_reservations_emitted_total";
/// Desired items emitted (label `op`).
pub const DESIRED_EMITTED: &str = "roomsync_resolver_desired_emitted_total";
/// Outlook events classified (label `class`: echo, edited, import, conflict, foreign_ignored).
pub const OUTLOOK_CLASSIFIED: &str = "roomsync_resolver_outlook_events_total";
/// Outlook edits of roomsync events reverted (their desired record emitted again with `rewrite`).
pub const REVERTS_EMITTED: &str = "roomsync_resolver_reverts_total";
/// Input records dead-lettered (label `kind`).
pub const DEAD_LETTERS: &str = "roomsync_resolver_dead_letters_total";
/// Records skipped as copies: a replayed record at or below its key's applied position, or a copy of a record
/// of a transaction already applied whole (normal after a reconnect or a crash of the cdc-reader).
pub const REPLAYS_DROPPED: &str = "roomsync_resolver_replays_dropped_total";
/// Transactions applied before all their records had arrived (buffer bound, stall timeout, snapshot without
/// END); each is also a warning with its commit LSN.
pub const RELEASED_INCOMPLETE: &str = "roomsync_resolver_transactions_released_incomplete_total";
/// Records that arrived after their transaction had been applied incomplete: applied late, never dropped; each
/// transaction is also a warning with its commit LSN.
pub const LATE_RECORDS: &str = "roomsync_resolver_late_records_total";
/// Gauge: partitions of the resolver's group (desired/reservations) this instance is assigned.
pub const ASSIGNED_PARTITIONS: &str = "roomsync_resolver_assigned_partitions";
/// Gauge: how long the resolver has been stalled (0 when it is not; see `liveness`).
pub const STALLED_SECONDS: &str = "roomsync_resolver_stalled_seconds";
/// Gauge (label `topic`): input records not yet handled, summed over the topic's partitions (the resolver's
/// lag; its position is also committed to the group `<group>-inputs` for Kafka tooling).
pub const INPUT_LAG: &str = "roomsync_resolver_input_lag_records";
/// Forgotten reservations (ended before the window) read again from the database because an UPDATE moved them
/// back into it (label `kind`).
pub const RESTORED: &str = "roomsync_resolver_reservations_restored_total";
/// Counter: records another member wrote into a partition this instance owns (after loading it), by `topic`
/// (desired, reservations): a member that lost the partition while frozen and ran on.
pub const FOREIGN_WRITES: &str = "roomsync_resolver_foreign_writes_total";
/// Counter: checkpoints of the resolver's state written (`roomsync_resolver_checkpoints`).
pub const CHECKPOINTS_WRITTEN: &str = "roomsync_resolver_checkpoints_written_total";
/// Gauge: size in bytes of the last checkpoint written.
pub const CHECKPOINT_BYTES: &str = "roomsync_resolver_checkpoint_bytes";
