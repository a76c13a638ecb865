//! Spotting clients that retry before the `Retry-After` they were given has elapsed (`retriedEarly` in the log).
//!
//! ```text
//! answer with Retry-After -> Penalty { request key, origin of the throttled request, until }
//! later request, same key -> early if it is a retry of that request (below) and arrives before `until`
//! ```
//! A request is a retry of a throttled one only when that is certain: it carries the same `client-request-id`
//! (Graph SDKs keep it across their retries), or, when neither carries one, it came on the same connection in a
//! later exchange (HTTP/1.1 sends the next request on a connection only after the previous answer was read).
//! Invariant: an identical request that is merely concurrent (another connection, another client-request-id,
//! or a sibling in the same `$batch`) is never flagged; the price is that an early retry on a fresh connection
//! without a client-request-id goes unnoticed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Where a request came from, as far as telling a retry from a concurrent twin needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The `client-request-id` the client sent, if any.
    pub client_request_id: Option<String>,
    /// The peer address of the connection (unknown when the router is driven without a listener).
    pub peer: Option<SocketAddr>,
    /// Arrival order of the HTTP exchange; inner `$batch` requests share their batch's.
    pub exchange: u64,
}

impl Origin {
    /// Whether `later` is certainly a retry of the request that came from `self`.
    fn retried_by(&self, later: &Origin) -> bool {
        match (&self.client_request_id, &later.client_request_id) {
            (Some(first), Some(again)) => first == again,
            (None, None) => self.peer.is_some() && self.peer == later.peer && later.exchange > self.exchange,
            _ => false,
        }
    }
}

#[derive(Debug)]
struct Penalty {
    origin: Origin,
    until: Instant,
}

/// Remembers, per request key (method, path, transactionId), who was told to wait and until when.
#[derive(Debug, Default)]
pub struct RetryWatch {
    penalties: Mutex<HashMap<String, Vec<Penalty>>>,
    exchanges: AtomicU64,
}

impl RetryWatch {
    /// The arrival number of a new HTTP exchange.
    pub fn next_exchange(&self) -> u64 {
        self.exchanges.fetch_add(1, Ordering::Relaxed)
    }

    /// Records that the request `key` from `origin` was told to wait `wait`; forgets waits that are over.
    pub fn penalize(&self, key: &str, origin: &Origin, wait: Duration) {
        let now = Instant::now();
        let mut penalties = self.penalties.lock().unwrap_or_else(PoisonError::into_inner);
        penalties.retain(|_, list| {
            list.retain(|p| p.until > now);
            !list.is_empty()
        });
        penalties.entry(key.to_string()).or_default().push(Penalty { origin: origin.clone(), until: now + wait });
    }

    /// Whether `key` from `origin` retries a throttled request before its wait is over. A 5 ms grace absorbs
    /// clock granularity.
    pub fn is_early(&self, key: &str, origin: &Origin) -> bool {
        let soon = Instant::now() + Duration::from_millis(5);
        let penalties = self.penalties.lock().unwrap_or_else(PoisonError::into_inner);
        penalties.get(key).is_some_and(|list| list.iter().any(|p| p.origin.retried_by(origin) && soon < p.until))
    }

    /// Forgets the waits a successful `key` from `origin` answered.
    pub fn clear(&self, key: &str, origin: &Origin) {
        let mut penalties = self.penalties.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(list) = penalties.get_mut(key) {
            list.retain(|p| !p.origin.retried_by(origin));
            if list.is_empty() {
                penalties.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(crid: Option<&str>, port: u16, exchange: u64) -> Origin {
        Origin {
            client_request_id: crid.map(str::to_string),
            peer: Some(SocketAddr::from(([127, 0, 0, 1], port))),
            exchange,
        }
    }

    #[test]
    fn only_a_certain_retry_before_the_wait_is_over_is_early() {
        let watch = RetryWatch::default();
        let wait = Duration::from_secs(60);
        watch.penalize("GET /x", &origin(None, 1000, 1), wait);
        assert!(watch.is_early("GET /x", &origin(None, 1000, 2)), "same connection, later exchange");
        assert!(!watch.is_early("GET /x", &origin(None, 1001, 2)), "another connection: a concurrent twin");
        assert!(!watch.is_early("GET /x", &origin(None, 1000, 1)), "a sibling in the same batch");
        assert!(!watch.is_early("GET /y", &origin(None, 1000, 2)), "another request");

        watch.penalize("GET /z", &origin(Some("a"), 2000, 5), wait);
        assert!(watch.is_early("GET /z", &origin(Some("a"), 2001, 6)), "the SDK's retry keeps its id");
        assert!(!watch.is_early("GET /z", &origin(Some("b"), 2000, 6)), "a new request says so by its id");
        assert!(!watch.is_early("GET /z", &origin(None, 2000, 6)));
    }

    #[test]
    fn a_success_clears_only_the_waits_it_answered_and_past_waits_are_forgotten() {
        let watch = RetryWatch::default();
        watch.penalize("GET /x", &origin(Some("a"), 1, 1), Duration::from_secs(60));
        watch.penalize("GET /x", &origin(Some("b"), 2, 2), Duration::from_secs(60));
        watch.clear("GET /x", &origin(Some("a"), 1, 3));
        assert!(!watch.is_early("GET /x", &origin(Some("a"), 1, 4)));
        assert!(watch.is_early("GET /x", &origin(Some("b"), 2, 4)));
        watch.penalize("GET /w", &origin(None, 3, 1), Duration::ZERO);
        assert!(!watch.is_early("GET /w", &origin(None, 3, 2)), "a wait that is over");
    }
}
