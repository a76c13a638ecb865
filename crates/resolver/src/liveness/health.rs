//! Reporting the resolver's liveness ([`crate::liveness`] decides it): a log line on every change (an error for
//! a stall), the `roomsync_resolver_stalled_seconds` gauge, and this instance's row in `roomsync_stage_health`,
//! written on every change, refreshed every [`HEALTH_REFRESH`] and removed at a graceful stop, which
//! `roomsync status` and `/health/ready` read.

use std::time::Duration;

use tracing::{error, info, warn};

use crate::postgres::conflicts::ConflictStore;

/// This process's name in `roomsync_stage_health`: host and process id.
pub fn instance_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    format!("{host}:{}", std::process::id())
}

/// The liveness tracker with its reporting: a warning on every change, the stall gauge, the health row (written
/// on every change and refreshed every [`HEALTH_REFRESH`]).
pub struct Health {
    liveness: crate::liveness::Liveness,
    instance: String,
    since: chrono::DateTime<chrono::Utc>,
    written: Option<std::time::Instant>,
}

/// How often the health row is rewritten when nothing changes (readers take a row older than a few of these
/// for an instance that is gone).
const HEALTH_REFRESH: Duration = Duration::from_secs(30);

impl Health {
    /// A tracker reporting a stall after `bound`, for the instance named `instance`.
    pub fn new(bound: Duration, instance: String) -> Self {
        let liveness = crate::liveness::Liveness::new(bound, std::time::Instant::now());
        Health { liveness, instance, since: chrono::Utc::now(), written: None }
    }

    /// Takes in this tick's facts; reports and records what changed (and refreshes the row when due).
    pub async fn observe(&mut self, facts: &crate::liveness::Facts, store: &ConflictStore) {
        let now = std::time::Instant::now();
        let changed = self.liveness.observe(facts, now);
        ::metrics::gauge!(crate::metrics::STALLED_SECONDS).set(self.liveness.stalled_for(now).as_secs_f64());
        if let Some(state) = &changed {
            self.since = chrono::Utc::now();
            match state {
                crate::liveness::State::Stalled(detail) => error!(detail = %detail, "resolver stalled"),
                crate::liveness::State::Degraded(detail) => warn!(detail = %detail, "resolver degraded"),
                other => info!(state = other.name(), "resolver liveness"),
            }
        }
        let due = self.written.is_none_or(|at| now.duration_since(at) >= HEALTH_REFRESH);
        if changed.is_some() || due {
            match store.record_health(&self.instance, self.liveness.state(), self.since).await {
                Ok(()) => self.written = Some(now),
                Err(err) => warn!(error = %err, "the resolver's liveness could not be recorded"),
            }
        }
    }

    /// Removes this instance's row (a graceful stop).
    pub async fn forget(&self, store: &ConflictStore) {
        if let Err(err) = store.forget_health(&self.instance).await {
            warn!(error = %err, "the resolver's liveness row could not be removed");
        }
    }
}
