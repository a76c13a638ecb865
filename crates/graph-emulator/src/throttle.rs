//! Throttling state: concurrent requests per scope and requests per sliding window per mailbox.
//!
//! Invariant: a concurrency slot is released exactly once, when its [`Slot`] guard drops (also on panic or
//! cancellation), so a client that disconnects mid-request cannot leak capacity.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Counters shared by all requests.
#[derive(Debug, Default)]
pub struct Throttle {
    inflight: Mutex<HashMap<String, usize>>,
    windows: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// What is left of a mailbox's rate window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests allowed per window.
    pub limit: usize,
    /// Requests left in the current window.
    pub remaining: usize,
    /// Until the oldest counted request leaves the window.
    pub reset: Duration,
}

/// A held concurrency slot.
#[derive(Debug)]
pub struct Slot {
    throttle: Arc<Throttle>,
    key: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut inflight = self.throttle.inflight.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = inflight.get_mut(&self.key) {
            *n = n.saturating_sub(1);
        }
    }
}

impl Throttle {
    /// Takes a slot under `key` if fewer than `limit` are held (`limit == 0`: unlimited).
    pub fn try_acquire(self: &Arc<Self>, key: &str, limit: usize) -> Option<Slot> {
        let mut inflight = self.inflight.lock().unwrap_or_else(PoisonError::into_inner);
        let n = inflight.entry(key.to_string()).or_insert(0);
        if limit > 0 && *n >= limit {
            return None;
        }
        *n += 1;
        Some(Slot { throttle: Arc::clone(self), key: key.to_string() })
    }

    /// Records a request against `key`'s window; `Err(wait)` when over `limit`. `Ok(Some(quota))` reports what
    /// is left (for RateLimit-* headers); `Ok(None)` when unlimited (`limit == 0`).
    pub fn check_rate(&self, key: &str, limit: usize, window: Duration) -> Result<Option<Quota>, Duration> {
        if limit == 0 {
            return Ok(None);
        }
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let times = windows.entry(key.to_string()).or_default();
        while times.front().is_some_and(|t| now.duration_since(*t) >= window) {
            times.pop_front();
        }
        let oldest = times.front().copied().unwrap_or(now);
        let reset = window.saturating_sub(now.duration_since(oldest));
        if times.len() >= limit {
            return Err(reset);
        }
        times.push_back(now);
        Ok(Some(Quota { limit, remaining: limit - times.len(), reset }))
    }

    /// Forgets all rate windows (admin reset).
    pub fn reset_windows(&self) {
        self.windows.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }
}

/// The `Retry-After` value for a computed `wait`: delay-seconds as Graph sends them (an integer, RFC 9110), rounded
/// up so a client that waits exactly that long is never early, and at least 1; with `fractional`, seconds with
/// three decimals (at least 0.001), the form some reports say Graph sends.
pub fn retry_after_value(wait: Duration, fractional: bool) -> String {
    if fractional {
        format!("{:.3}", wait.as_secs_f64().max(0.001))
    } else {
        let whole = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        whole.max(1).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_limited_and_released_on_drop() {
        let t = Arc::new(Throttle::default());
        let held: Vec<Slot> = (0..4).filter_map(|_| t.try_acquire("m", 4)).collect();
        assert_eq!(held.len(), 4);
        assert!(t.try_acquire("m", 4).is_none());
        assert!(t.try_acquire("other", 4).is_some());
        drop(held);
        assert!(t.try_acquire("m", 4).is_some());
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_unless_fractional_is_asked_for() {
        assert_eq!(retry_after_value(Duration::from_millis(2958), false), "3");
        assert_eq!(retry_after_value(Duration::from_secs(2), false), "2");
        assert_eq!(retry_after_value(Duration::ZERO, false), "1");
        assert_eq!(retry_after_value(Duration::from_millis(2958), true), "2.958");
        assert_eq!(retry_after_value(Duration::ZERO, true), "0.001");
    }

    #[test]
    fn the_rate_window_refuses_past_its_limit_with_a_wait() {
        let t = Throttle::default();
        let w = Duration::from_secs(60);
        assert_eq!(t.check_rate("m", 2, w).ok().flatten().map(|q| q.remaining), Some(1));
        assert_eq!(t.check_rate("m", 2, w).ok().flatten().map(|q| q.remaining), Some(0));
        assert_eq!(t.check_rate("m", 0, w), Ok(None));
        let wait = t.check_rate("m", 2, w).expect_err("over limit");
        assert!(wait <= w && wait > Duration::from_secs(50));
    }
}
