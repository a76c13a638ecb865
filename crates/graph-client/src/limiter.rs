//! Per-mailbox concurrency limiting: Outlook allows 4 concurrent requests per mailbox, so we never send more.
//!
//! Invariant: a permit is held for the duration of one HTTP attempt (not during backoff sleeps), so waiting
//! retries do not starve other requests to the same mailbox. Keys are case-insensitive; an id and a UPN of the
//! same mailbox are different keys, so callers address each mailbox in one form.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::GraphError;

/// Semaphores keyed by mailbox.
#[derive(Debug)]
pub struct MailboxLimiter {
    per_mailbox: usize,
    semaphores: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl MailboxLimiter {
    /// At most `per_mailbox` permits per mailbox (at least 1).
    pub fn new(per_mailbox: usize) -> Self {
        Self { per_mailbox: per_mailbox.max(1), semaphores: Mutex::new(HashMap::new()) }
    }

    /// Waits for `n` permits (capped at the limit) for `mailbox`.
    pub async fn acquire(&self, mailbox: &str, n: usize) -> Result<OwnedSemaphorePermit, GraphError> {
        let semaphore = {
            let mut map = self.semaphores.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(
                map.entry(mailbox.to_ascii_lowercase()).or_insert_with(|| Arc::new(Semaphore::new(self.per_mailbox))),
            )
        };
        let n = u32::try_from(n.clamp(1, self.per_mailbox)).unwrap_or(1);
        semaphore.acquire_many_owned(n).await.map_err(|_| GraphError::InvalidRequest("mailbox limiter closed".into()))
    }
}
