//! Waiting on a condition with a deadline: the only way tests here synchronise with the system under test.

use std::future::Future;
use std::time::Duration;

use anyhow::{bail, Result};

/// Polls `check` until it returns `Some`, or fails after `timeout` with `what` in the message.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    wait_until_every(what, timeout, Duration::from_millis(20), check).await
}

/// [`wait_until`] polling every `interval`: for checks that cost more than a glance (a full comparison with an
/// oracle, say), or that measure how long something stayed unchanged.
pub async fn wait_until_every<T, F, Fut>(what: &str, timeout: Duration, interval: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(interval).await;
    }
}
