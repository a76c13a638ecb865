//! One supervision policy for the stages: a run that fails with a transient error (a broker, registry, database
//! or Graph outage) starts again after a backoff; a definite one (a configuration or a bug to fix) ends the stage
//! and says so. So a transient failure of one stage never takes `roomsync run`, and the stages beside it, down.
//!
//! ```text
//!  supervise(stage, shutdown, run_once)
//!     run_once(stop) --Ok--> done
//!          |--Err(transient)--> warn, roomsync_stage_restarts_total{stage}, wait backoff --> run_once again
//!          |--Err(definite)---> error, returned to the caller
//!     shutdown --> stop fires, the running attempt finishes gracefully, its result is returned
//! ```
//! Invariants: the backoff doubles from [`FIRST_BACKOFF`] up to [`MAX_BACKOFF`] and starts over after a run that
//! lasted [`HEALTHY_RUN`]; a shutdown during a backoff returns at once; nothing is retried after a shutdown.

#![warn(missing_docs)]

pub mod role;

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{error, warn};

/// The wait after the first failure.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The longest wait between two runs.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A run that lasted this long was healthy: the next failure waits [`FIRST_BACKOFF`] again.
pub const HEALTHY_RUN: Duration = Duration::from_secs(60);
/// Counter (label `stage`): runs started again after a transient failure.
pub const RESTARTS: &str = "roomsync_stage_restarts_total";

/// An error that says whether trying again later may succeed.
pub trait Transient: Display {
    /// Whether a new run may succeed without anybody fixing anything.
    fn is_transient(&self) -> bool;
}

/// The stop signal a run watches: completes once the supervisor is asked to shut down.
#[derive(Debug, Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    /// Completes when the stage is to stop.
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// Runs `run_once` until it succeeds, fails definitely, or `shutdown` completes (then the running attempt is
/// stopped through its [`Stop`] and its result returned).
pub async fn supervise<E, F, Fut>(
    stage: &'static str,
    shutdown: impl Future<Output = ()>,
    mut run_once: F,
) -> Result<(), E>
where
    E: Transient,
    F: FnMut(Stop) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let (stop, stopped) = watch::channel(false);
    tokio::pin!(shutdown);
    let mut backoff = FIRST_BACKOFF;
    loop {
        let started = Instant::now();
        let run = run_once(Stop(stopped.clone()));
        tokio::pin!(run);
        let result = tokio::select! {
            result = &mut run => result,
            () = &mut shutdown => {
                let _ = stop.send(true);
                return run.await;
            }
        };
        let err = match result {
            Ok(()) => return Ok(()),
            Err(err) if err.is_transient() => err,
            Err(err) => {
                error!(stage, error = %err, "stage stopped: this needs fixing, a retry would not help");
                return Err(err);
            }
        };
        if started.elapsed() >= HEALTHY_RUN {
            backoff = FIRST_BACKOFF;
        }
        warn!(stage, error = %err, retry_in = ?backoff, "stage interrupted; starting it again");
        ::metrics::counter!(RESTARTS, "stage" => stage).increment(1);
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = &mut shutdown => return Ok(()),
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use super::*;

    #[derive(Debug, PartialEq)]
    struct Failure(bool);

    impl Display for Failure {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}", if self.0 { "outage" } else { "bad configuration" })
        }
    }

    impl Transient for Failure {
        fn is_transient(&self) -> bool {
            self.0
        }
    }

    /// A run that fails with `failures` in turn, then succeeds; counts its attempts.
    fn scripted(
        failures: Vec<Failure>,
    ) -> (Arc<AtomicU32>, impl FnMut(Stop) -> std::future::Ready<Result<(), Failure>>) {
        let attempts = Arc::new(AtomicU32::new(0));
        let counter = Arc::clone(&attempts);
        let mut failures = failures.into_iter();
        (attempts, move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            std::future::ready(failures.next().map_or(Ok(()), Err))
        })
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_start_the_run_again_with_a_growing_backoff() {
        let (attempts, run) = scripted(vec![Failure(true), Failure(true), Failure(true)]);
        let started = Instant::now();
        assert_eq!(supervise("test", std::future::pending(), run).await, Ok(()));
        assert_eq!(attempts.load(Ordering::SeqCst), 4);
        assert_eq!(started.elapsed(), FIRST_BACKOFF * (1 + 2 + 4), "paused clock: the waits themselves");
    }

    #[tokio::test(start_paused = true)]
    async fn a_definite_failure_ends_the_stage_at_once() {
        let (attempts, run) = scripted(vec![Failure(true), Failure(false)]);
        assert_eq!(supervise("test", std::future::pending(), run).await, Err(Failure(false)));
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_shutdown_stops_the_running_attempt_gracefully_and_retries_nothing() {
        let attempts = Arc::new(AtomicU32::new(0));
        let counter = Arc::clone(&attempts);
        let (ask, asked) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = asked.await;
        };
        let supervised = tokio::spawn(supervise("test", shutdown, move |stop: Stop| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                stop.wait().await;
                Err::<(), _>(Failure(true))
            }
        }));
        tokio::task::yield_now().await;
        let _ = ask.send(());
        let result = supervised.await.expect("joins");
        assert_eq!(result, Err(Failure(true)), "the attempt's own result, returned after the stop");
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_shutdown_during_the_backoff_returns_at_once() {
        let (ask, asked) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = asked.await;
        };
        let (attempts, run) = scripted(std::iter::repeat_with(|| Failure(true)).take(100).collect());
        let supervised = tokio::spawn(supervise("test", shutdown, run));
        tokio::time::sleep(FIRST_BACKOFF / 2).await;
        let _ = ask.send(());
        assert_eq!(supervised.await.expect("joins"), Ok(()));
        assert_eq!(attempts.load(Ordering::SeqCst), 1, "stopped while waiting after the first failure");
    }
}
