//! One task per watched room: a delta round at start, after every trigger (webhook, lifecycle event) and at
//! least every poll interval; failures back off without touching any other room.
//!
//! ```text
//! webhook/lifecycle --trigger--> [Notify: many signals coalesce into one pending round]
//!                                    --> gather (notification_delay) --> round --> wait
//!                                                poll interval or backoff ----------^
//! ```
//! Invariants: a burst of notifications costs at most one extra round (a `Notify` holds at most one permit, and
//! the notifications that arrive while a notified room gathers are read by the round that follows); a
//! notification is never lost (one that arrives after the gather leaves a permit for the next round); a
//! requested full round is not lost when the round fails (the flag is put back); a failing room waits with
//! exponential backoff up to a ceiling and never blocks another room's task.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::metrics;
use crate::round::RoundContext;

/// How a room is poked from outside its task.
#[derive(Debug, Default)]
pub struct Trigger {
    pub(crate) wake: Notify,
    full: AtomicBool,
}

impl Trigger {
    /// Asks for a round soon (a full one when `full`).
    pub fn poke(&self, full: bool) {
        if full {
            self.full.store(true, Ordering::SeqCst);
        }
        self.wake.notify_one();
    }
}

/// The rooms being watched, by mailbox: the webhook and the subscription manager poke rooms through it.
#[derive(Debug, Default)]
pub struct Rooms {
    by_mailbox: Mutex<HashMap<String, Arc<Trigger>>>,
}

impl Rooms {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Trigger>>> {
        self.by_mailbox.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Pokes `mailbox`; false when it is not watched.
    pub fn poke(&self, mailbox: &str, full: bool) -> bool {
        let trigger = self.lock().get(mailbox).cloned();
        trigger.map(|t| t.poke(full)).is_some()
    }

    /// The watched mailboxes.
    pub fn mailboxes(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Whether `mailbox` is watched.
    pub fn contains(&self, mailbox: &str) -> bool {
        self.lock().contains_key(mailbox)
    }

    pub(crate) fn insert(&self, mailbox: &str) -> Arc<Trigger> {
        Arc::clone(self.lock().entry(mailbox.to_string()).or_default())
    }

    pub(crate) fn remove(&self, mailbox: &str) {
        self.lock().remove(mailbox);
    }
}

/// Timing of a room task.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Rounds at least this often.
    pub poll_interval: Duration,
    /// A notified room waits this long before its round, so that the notifications of a burst (a booking yields
    /// several; a first load thousands) are read by one round.
    pub notification_delay: Duration,
    /// First backoff step.
    pub retry_base: Duration,
    /// Backoff ceiling.
    pub retry_max: Duration,
}

impl Pace {
    /// The wait after `failures` consecutive failures (> 0): doubling from `retry_base`, capped.
    pub fn backoff(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(20));
        self.retry_base.saturating_mul(factor).min(self.retry_max)
    }
}

/// Runs the room until `cancel` fires.
pub async fn watch_room(
    ctx: Arc<RoundContext>,
    mailbox: String,
    trigger: Arc<Trigger>,
    pace: Pace,
    cancel: CancellationToken,
) {
    watch(&mailbox, &trigger, pace, &cancel, |full| ctx.run(&mailbox, full)).await;
}

/// The room's loop around `round` (a delta round, full when asked): when it runs, and what its outcome changes.
async fn watch<F, R>(label: &str, trigger: &Trigger, pace: Pace, cancel: &CancellationToken, mut round: F)
where
    F: FnMut(bool) -> R,
    R: std::future::Future<Output = Result<crate::round::RoundReport, crate::error::Error>>,
{
    let label = label.to_owned();
    let mut failures: u32 = 0;
    let mut first = true;
    loop {
        if !first {
            let wait = if failures == 0 { pace.poll_interval } else { pace.backoff(failures) };
            let notified = tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(wait) => false,
                // While backing off, notifications wait: they are kept as one pending permit.
                () = trigger.wake.notified(), if failures == 0 => true,
            };
            if notified && !pace.notification_delay.is_zero() {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(pace.notification_delay) => {}
                }
                // What was notified meanwhile is read by the round about to start.
                let _ = trigger.wake.notified().now_or_never();
            }
        }
        first = false;
        let full = trigger.full.swap(false, Ordering::SeqCst);
        let outcome = tokio::select! {
            () = cancel.cancelled() => return,
            outcome = round(full) => outcome,
        };
        match outcome {
            Ok(report) => {
                failures = 0;
                let kind = if report.full { "full" } else { "incremental" };
                ::metrics::counter!(metrics::ROUNDS, "mailbox" => label.clone(), "kind" => kind).increment(1);
                ::metrics::gauge!(metrics::LAST_SUCCESS, "mailbox" => label.clone())
                    .set(chrono::Utc::now().timestamp() as f64);
                if report.upserts + report.deletes > 0 {
                    info!(mailbox = %label, kind, upserts = report.upserts, deletes = report.deletes, "delta round done");
                }
            }
            Err(err) => {
                if full {
                    trigger.full.store(true, Ordering::SeqCst);
                }
                failures = failures.saturating_add(1);
                warn!(mailbox = %label, error = %err, kind = err.kind(), transient = err.is_transient(), failures,
                      "delta round failed");
            }
        }
        ::metrics::gauge!(metrics::CONSECUTIVE_FAILURES, "mailbox" => label.clone()).set(f64::from(failures));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_ceiling() {
        let pace = Pace {
            poll_interval: Duration::from_secs(300),
            notification_delay: Duration::from_secs(1),
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
        };
        assert_eq!(pace.backoff(1), Duration::from_secs(1));
        assert_eq!(pace.backoff(3), Duration::from_secs(4));
        assert_eq!(pace.backoff(40), Duration::from_secs(60));
    }

    /// Runs a room whose rounds only count themselves, pokes it `pokes` times 100 ms apart, and returns how many
    /// rounds ran besides the first one at start (tokio's clock paused: no real waiting).
    async fn rounds_for_pokes(notification_delay: Duration, pokes: usize) -> usize {
        let pace = Pace {
            poll_interval: Duration::from_secs(300),
            notification_delay,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
        };
        let (trigger, cancel) = (Arc::new(Trigger::default()), CancellationToken::new());
        let rounds = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let task = {
            let (trigger, cancel, rounds) = (trigger.clone(), cancel.clone(), rounds.clone());
            tokio::spawn(async move {
                watch("room", &trigger, pace, &cancel, |full| {
                    rounds.fetch_add(1, Ordering::SeqCst);
                    std::future::ready(Ok(crate::round::RoundReport { full, upserts: 0, deletes: 0 }))
                })
                .await;
            })
        };
        for _ in 0..pokes {
            tokio::time::sleep(Duration::from_millis(100)).await;
            trigger.poke(false);
        }
        // Long enough for every gathered round, far shorter than the poll interval.
        tokio::time::sleep(Duration::from_secs(10)).await;
        cancel.cancel();
        task.await.ok();
        rounds.load(Ordering::SeqCst) - 1
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_notifications_is_read_by_one_round() {
        // 8 notifications within 0.8 s: one round after the gathering second (without the wait: one each).
        assert_eq!(rounds_for_pokes(Duration::from_secs(1), 8).await, 1);
        assert_eq!(rounds_for_pokes(Duration::ZERO, 8).await, 8);
        // Spread over 2.5 s: the notifications after the first gathering get a round of their own.
        assert_eq!(rounds_for_pokes(Duration::from_secs(1), 25).await, 3);
    }

    #[test]
    fn pokes_reach_only_watched_rooms_and_remember_a_full_round() {
        let rooms = Rooms::default();
        let trigger = rooms.insert("a@x");
        assert!(rooms.poke("a@x", true));
        assert!(!rooms.poke("b@x", false));
        assert!(trigger.full.load(Ordering::SeqCst));
        rooms.remove("a@x");
        assert!(!rooms.contains("a@x"));
    }
}
