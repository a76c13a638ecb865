//! Names of the reader's metrics (one place, low-cardinality labels: `table`, `op`, `cause`).

/// Counter: records acknowledged by Kafka, labels `table`, `op`.
pub const RECORDS_PRODUCED: &str = "roomsync_cdc_records_produced_total";
/// Counter: rows sent to the dead-letter topic, label `table`.
pub const DEAD_LETTERS: &str = "roomsync_cdc_dead_letters_total";
/// Counter: snapshot rows read, label `table`.
pub const SNAPSHOT_ROWS: &str = "roomsync_cdc_snapshot_rows_total";
/// Gauge: bytes of WAL between the server's position and the confirmed position.
pub const LAG_BYTES: &str = "roomsync_cdc_replication_lag_bytes";
/// Gauge: seconds between a transaction's commit and the reader processing its commit.
pub const LAG_SECONDS: &str = "roomsync_cdc_replication_lag_seconds";
/// Gauge: the confirmed (flushed) LSN reported to PostgreSQL.
pub const CONFIRMED_LSN: &str = "roomsync_cdc_confirmed_lsn";
/// Counter: reconnections after transient failures, label `cause` (postgres, kafka, encoder).
pub const RECONNECTS: &str = "roomsync_cdc_reconnects_total";
/// Counter: relation (schema) changes seen in the stream, label `table`.
pub const RELATION_CHANGES: &str = "roomsync_cdc_relation_changes_total";
/// Counter: backfills requested through the signal table, by `outcome` (done, failed).
pub const BACKFILLS: &str = "roomsync_cdc_backfills_total";
