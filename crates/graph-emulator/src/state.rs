//! The shared state of one emulator instance.
//!
//! Invariant: every lock here is a std mutex held only for short, non-async sections (never across `.await`), so
//! a slow client or injected latency cannot block other mailboxes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Instant;

use axum::Router;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;

use crate::config::{FaultConfig, TenantConfig};
use crate::delta::DeltaStore;
use crate::retry_watch::RetryWatch;
use crate::subscriptions::SubscriptionStore;
use crate::tenant::Tenant;
use crate::throttle::Throttle;

/// One line of the request log (`GET /_emulator/requests`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Mailbox id, when the request addressed one.
    pub mailbox: Option<String>,
    /// Status answered.
    pub status: u16,
    /// When the request arrived (RFC 3339).
    pub timestamp: String,
    /// `transactionId` of a POSTed event, if any.
    pub transaction_id: Option<String>,
    /// Whether it was an inner request of a `$batch`.
    pub in_batch: bool,
    /// Whether the request carried `Prefer: IdType="ImmutableId"` (clients should always send it).
    pub immutable_id: bool,
    /// The `client-request-id` the request carried (a client keeps it across the retries of one request).
    pub client_request_id: Option<String>,
    /// Whether this request retried one (same method, path and transactionId, and certainly the same request:
    /// same client-request-id, or same connection later) before the Retry-After it was given had elapsed: a
    /// client that does not honour Retry-After. Identical concurrent requests are not flagged.
    pub retried_early: bool,
}

/// State behind an [`Emulator`] handle.
#[derive(Debug)]
pub struct Shared {
    /// Static tenant settings (credentials, token lifetime).
    pub config: TenantConfig,
    /// Directory and calendars.
    pub tenant: Mutex<Tenant>,
    /// Fault knobs, changeable at run time.
    pub faults: Mutex<FaultConfig>,
    /// Seeded RNG for faults and batch shuffling.
    pub rng: Mutex<StdRng>,
    /// Throttling counters.
    pub throttle: Arc<Throttle>,
    /// Request log.
    pub log: Mutex<Vec<LogEntry>>,
    /// Issued tokens and their expiry.
    pub tokens: Mutex<HashMap<String, Instant>>,
    /// Retry-After promises per request, to spot clients that retry too early.
    pub retry_watch: RetryWatch,
    /// Tokens issued since start (revocation does not reset it).
    pub tokens_issued: AtomicUsize,
    /// Delta sync states.
    pub delta: Mutex<DeltaStore>,
    /// Subscriptions.
    pub subscriptions: Mutex<SubscriptionStore>,
    /// The router, so `$batch` can dispatch inner requests through the same middleware.
    pub router: OnceLock<Router>,
}

/// An event's identity, subject and last modification ([`Emulator::mailbox_event_stamps`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventStamp {
    /// Event id.
    pub id: String,
    /// Subject, if the event has one.
    pub subject: Option<String>,
    /// The transactionId its creator sent.
    pub transaction_id: Option<String>,
    /// `lastModifiedDateTime`.
    pub modified: chrono::DateTime<chrono::Utc>,
}

/// A cheap, cloneable handle to one emulated tenant.
#[derive(Debug, Clone)]
pub struct Emulator {
    pub(crate) shared: Arc<Shared>,
}

/// Locks a mutex, recovering from poisoning (a panicked handler must not wedge the emulator).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Emulator {
    /// A new tenant from config.
    pub fn new(config: TenantConfig) -> Self {
        let faults = config.faults.clone();
        let rng = StdRng::seed_from_u64(faults.seed);
        Self {
            shared: Arc::new(Shared {
                tenant: Mutex::new(Tenant::from_config(&config)),
                faults: Mutex::new(faults),
                rng: Mutex::new(rng),
                throttle: Arc::new(Throttle::default()),
                log: Mutex::new(Vec::new()),
                tokens: Mutex::new(HashMap::new()),
                tokens_issued: AtomicUsize::new(0),
                retry_watch: RetryWatch::default(),
                delta: Mutex::new(DeltaStore::default()),
                subscriptions: Mutex::new(SubscriptionStore::default()),
                router: OnceLock::new(),
                config,
            }),
        }
    }

    /// The fault knobs now in force.
    pub fn faults(&self) -> FaultConfig {
        lock(&self.shared.faults).clone()
    }

    /// Replaces the fault knobs (and reseeds the RNG).
    pub fn set_faults(&self, faults: FaultConfig) {
        *lock(&self.shared.rng) = StdRng::seed_from_u64(faults.seed);
        *lock(&self.shared.faults) = faults;
    }

    /// A copy of the request log.
    pub fn requests(&self) -> Vec<LogEntry> {
        lock(&self.shared.log).clone()
    }

    /// The request log from entry `start` on (an observer reading it as it grows copies only what is new).
    pub fn requests_since(&self, start: usize) -> Vec<LogEntry> {
        lock(&self.shared.log).get(start..).map(<[LogEntry]>::to_vec).unwrap_or_default()
    }

    /// Clears the request log and rate windows.
    pub fn reset_requests(&self) {
        lock(&self.shared.log).clear();
        self.shared.throttle.reset_windows();
    }

    /// Invalidates every delta and skip token: the next use answers 410 SyncStateNotFound.
    pub fn expire_delta_tokens(&self) {
        lock(&self.shared.delta).clear();
    }

    /// How many tokens the token endpoint has issued.
    pub fn tokens_issued(&self) -> usize {
        self.shared.tokens_issued.load(Ordering::SeqCst)
    }

    /// Invalidates every access token: the next use answers 401.
    pub fn revoke_tokens(&self) {
        lock(&self.shared.tokens).clear();
    }

    /// The JSON of every stored event of a mailbox (by id or email), in UTC with all extended properties.
    pub fn mailbox_events(&self, mailbox: &str) -> Option<Vec<serde_json::Value>> {
        let tenant = lock(&self.shared.tenant);
        let mbx = tenant.find(mailbox)?;
        Some(
            mbx.events
                .iter()
                .map(|e| {
                    let ids: Vec<String> = e.extended.iter().map(|(k, _)| k.clone()).collect();
                    e.render(&crate::time::OutputZone::default(), Some(&ids))
                })
                .collect(),
        )
    }

    /// What observers of a mailbox usually need of each event, without rendering it (cheap enough to poll
    /// often: [`Emulator::mailbox_events`] renders every event while it holds the tenant, which a benchmark's
    /// observer polling 10 times a second made a load of its own).
    pub fn mailbox_event_stamps(&self, mailbox: &str) -> Option<Vec<EventStamp>> {
        let tenant = lock(&self.shared.tenant);
        let mbx = tenant.find(mailbox)?;
        Some(
            mbx.events
                .iter()
                .map(|e| EventStamp {
                    id: e.id.clone(),
                    subject: e.fields.get("subject").and_then(serde_json::Value::as_str).map(str::to_owned),
                    transaction_id: e.transaction_id.clone(),
                    modified: e.modified,
                })
                .collect(),
        )
    }

    /// How many events all mailboxes hold together (cheap: nothing is rendered).
    pub fn event_count(&self) -> usize {
        lock(&self.shared.tenant).mailboxes().iter().map(|m| m.events.len()).sum()
    }

    /// The meeting responses (accept, tentativelyAccept, decline) a mailbox's owner sent, oldest first, as JSON.
    pub fn mailbox_responses(&self, mailbox: &str) -> Option<Vec<serde_json::Value>> {
        let tenant = lock(&self.shared.tenant);
        let mbx = tenant.find(mailbox)?;
        Some(mbx.responses.iter().filter_map(|r| serde_json::to_value(r).ok()).collect())
    }
}
