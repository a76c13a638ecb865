//! Waiting for Kafka's acknowledgements of the resolver's output off the driver's path.
//!
//! ```text
//!  driver --enqueue output in order--> producer queue --> broker
//!     \--Acks (one per output)--> [bounded channel] --> watcher task: await in order --first failure--> driver
//! ```
//!
//! Why: awaiting each output's acknowledgement before reading the next input transaction capped the resolver at
//! one transaction per producer linger plus broker round trip (about 100 transactions/s here; see
//! benches/README.md). The resolver stores no progress of its own (it rebuilds from the topics on every start and
//! emits full desired states, not diffs), so nothing waits for the acks but failure detection.
//!
//! A barrier ([`AckWatcher::barrier`]) resolves once every output handed over before it is acknowledged: the
//! checkpoint waits for it, so it never stands for a decision whose output could still be lost.
//!
//! Invariants: records are enqueued in decision order, so the idempotent producer keeps per-partition order;
//! the first failed acknowledgement reaches the driver, which restarts from scratch (state rebuilt from the
//! topics, missing output re-emitted); at most [`MAX_OUTSTANDING`] outputs wait for acknowledgement, so a broker
//! that stops answering slows the driver down instead of growing memory; on shutdown every outstanding
//! acknowledgement is awaited first.

use streams::{Acks, StreamError};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Outputs whose acknowledgements may be outstanding at once.
pub const MAX_OUTSTANDING: usize = 4096;

/// What the watcher awaits, in order.
#[derive(Debug)]
enum Awaited {
    /// The acknowledgements of one output.
    Acks(Acks),
    /// Told once everything before it is acknowledged; dropped unanswered after a failure.
    Barrier(oneshot::Sender<()>),
}

/// The sending half, held by the emitter.
#[derive(Debug)]
pub struct AckWatcher {
    outstanding: mpsc::Sender<Awaited>,
    task: JoinHandle<()>,
}

/// Where the first failed acknowledgement arrives; never resolves while all goes well.
#[derive(Debug)]
pub struct AckFailure(oneshot::Receiver<StreamError>);

impl AckFailure {
    /// Resolves with the first failure; pends forever once the watcher ended without one.
    pub async fn failed(&mut self) -> StreamError {
        match (&mut self.0).await {
            Ok(err) => err,
            Err(_) => std::future::pending().await,
        }
    }
}

impl AckWatcher {
    /// Starts the watcher task.
    pub fn start() -> (AckWatcher, AckFailure) {
        let (outstanding, mut arrivals) = mpsc::channel::<Awaited>(MAX_OUTSTANDING);
        let (report, failure) = oneshot::channel();
        let task = tokio::spawn(async move {
            while let Some(awaited) = arrivals.recv().await {
                match awaited {
                    Awaited::Acks(acks) => {
                        if let Err(err) = acks.acked().await {
                            let _ = report.send(err);
                            return;
                        }
                    }
                    Awaited::Barrier(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
        (AckWatcher { outstanding, task }, AckFailure(failure))
    }

    /// Hands over the acknowledgements of one output; waits while [`MAX_OUTSTANDING`] are outstanding.
    pub async fn watch(&self, acks: Acks) -> Result<(), StreamError> {
        if acks.is_empty() {
            return Ok(());
        }
        if self.outstanding.send(Awaited::Acks(acks)).await.is_err() {
            // The watcher stopped at a failure, which the driver is about to see; report it here as well.
            return Err(StreamError::Kafka {
                context: "waiting for acknowledgements".into(),
                source: rdkafka::error::KafkaError::Canceled,
            });
        }
        Ok(())
    }

    /// Resolves with `Ok` once every output handed over so far is acknowledged; with `Err` when one failed.
    /// Waits, like [`AckWatcher::watch`], while [`MAX_OUTSTANDING`] are outstanding.
    pub async fn barrier(&self) -> oneshot::Receiver<()> {
        let (done, reached) = oneshot::channel();
        // A stopped watcher drops the barrier, so it resolves with `Err` (not reached).
        let _ = self.outstanding.send(Awaited::Barrier(done)).await;
        reached
    }

    /// Waits until every outstanding acknowledgement has arrived (or the first failed).
    pub async fn drain(self) {
        drop(self.outstanding);
        let _ = self.task.await;
    }
}
