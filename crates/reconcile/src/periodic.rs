//! The periodic reconciliation: the same run as `roomsync reconcile`, every interval.
//!
//! Invariants: the first run starts one interval after the call (not at start-up, when the sink may still be
//! catching up); runs never overlap (the next interval is measured from the end of the previous run); a
//! failed run is logged and counted, and the next one runs as planned; shutdown interrupts a wait or a run.

use std::future::Future;
use std::time::Duration;

use tracing::{info, warn};

use crate::{reconcile, Config, DriftKind, Options};

/// Reconciles every room every `interval` (repairing) until `shutdown` completes.
pub async fn run_periodically(config: Config, interval: Duration, shutdown: impl Future<Output = ()>) {
    let mut shutdown = std::pin::pin!(shutdown);
    let options = Options::default();
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = &mut shutdown => return,
        }
        tokio::select! {
            result = reconcile(&config, &options) => match result {
                Ok(report) => info!(
                    missing = report.count(DriftKind::Missing),
                    changed = report.count(DriftKind::Changed),
                    stale = report.count(DriftKind::Stale),
                    unmapped = report.count(DriftKind::Unmapped),
                    repaired = report.repaired(),
                    failed_rooms = report.failed_rooms.len(),
                    "periodic reconciliation done"
                ),
                Err(err) => warn!(error = %err, transient = err.is_transient(), "periodic reconciliation failed"),
            },
            () = &mut shutdown => return,
        }
    }
}
