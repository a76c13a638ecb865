//! Metric names of the reconciler (Prometheus style), in one place. Labels are low-cardinality: `kind`
//! (missing, changed, stale, unmapped), `outcome` (ok, error, repaired, skipped, failed); never ids or mailboxes.

/// Counter: reconciliation runs, by `outcome` (ok, error).
pub const RUNS: &str = "roomsync_reconcile_runs_total";
/// Counter: drift found, by `kind`.
pub const DRIFT_FOUND: &str = "roomsync_reconcile_drift_total";
/// Counter: repairs attempted, by `kind` and `outcome` (repaired, skipped, failed).
pub const REPAIRS: &str = "roomsync_reconcile_repairs_total";
/// Gauge: drift found by the last run, by `kind`.
pub const LAST_DRIFT: &str = "roomsync_reconcile_last_drift";
/// Histogram: seconds one run took.
pub const RUN_SECONDS: &str = "roomsync_reconcile_run_seconds";
