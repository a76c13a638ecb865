//! Conflict policy "decline": the resolver records an Outlook booking that overlaps a booking-system reservation
//! in `roomsync_conflicts` with status `declined`; this worker carries the decline out in Graph.
//!
//! ```text
//! every decline_interval:
//!   roomsync_conflicts (status 'declined', declined_at null, decline_error null), one pass per Outlook event
//!     -> POST /users/{room}/events/{id}/decline {comment, sendResponse: true}
//!          202 or 404 (already gone)  -> declined_at = now()  (every row of that event)
//!          definite error             -> decline_error = reason (not retried until an operator clears it)
//!          transient error            -> untouched: tried again next interval
//! ```
//! Invariants: `declined_at` is set only after Graph took the decline or the event was already gone, so a crash
//! in between repeats the decline, which then meets 404 and counts as done (the organizer is told at most twice,
//! never zero times); rows with another status (`open`: policy record; `resolved`) are never touched.

use std::time::Duration;

use graph_client::{ErrorClass, GraphClient, GraphError, ResponseOutcome};
use migrations::conflicts;
use tokio_postgres::{GenericClient, NoTls};
use tracing::{debug, info, warn};

use crate::error::SinkError;
use crate::metrics::{DECLINES_DONE, DECLINES_FAILED};

/// What one pass did, per Outlook event (several conflict rows of one event count once).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeclineReport {
    /// Declined now (Graph answered 202).
    pub declined: usize,
    /// Already gone from the room calendar (404): recorded as done.
    pub already_gone: usize,
    /// Refused for good: the reason is in `decline_error`.
    pub failed: usize,
    /// Failed transiently: left for the next pass.
    pub deferred: usize,
}

/// One Outlook event to decline and the conflict rows that asked for it.
struct Pending {
    mailbox: String,
    event_id: String,
    rows: Vec<i64>,
}

async fn pending(db: &impl GenericClient) -> Result<Vec<Pending>, SinkError> {
    let rows = db
        .query(
            "select outlook_item_id, outlook_event_id, array_agg(id order by id)
             from roomsync_conflicts
             where status = 'declined' and declined_at is null and decline_error is null
             group by outlook_item_id, outlook_event_id
             order by min(id)",
            &[],
        )
        .await
        .map_err(SinkError::pg("reading conflicts to decline"))?;
    Ok(rows.iter().map(|row| Pending { mailbox: row.get(0), event_id: row.get(1), rows: row.get(2) }).collect())
}

/// Declines, in the room mailbox, every Outlook event of a conflict row with status `declined` not yet carried
/// out, with `comment` and `sendResponse: true`, and records the outcome. Database errors stop the pass (the
/// next pass repeats what was not recorded); Graph errors are recorded per event.
pub async fn decline_pending(
    db: &impl GenericClient,
    graph: &GraphClient,
    comment: &str,
) -> Result<DeclineReport, SinkError> {
    let mut report = DeclineReport::default();
    for item in pending(db).await? {
        match graph.decline_event(&item.mailbox, &item.event_id, Some(comment), true).await {
            Ok(outcome) => {
                conflicts::declined(db, &item.rows).await.map_err(SinkError::pg("recording a decline"))?;
                let label = match outcome {
                    ResponseOutcome::Sent => {
                        report.declined += 1;
                        "declined"
                    }
                    ResponseOutcome::AlreadyGone => {
                        report.already_gone += 1;
                        "already_gone"
                    }
                };
                metrics::counter!(DECLINES_DONE, "outcome" => label).increment(1);
                debug!(mailbox = %item.mailbox, outcome = label, "declined a conflicting outlook booking");
            }
            Err(err) if is_transient(&err) => {
                report.deferred += 1;
                metrics::counter!(DECLINES_FAILED, "kind" => "transient").increment(1);
                warn!(error = %err, "declining a conflicting outlook booking failed; retrying next interval");
            }
            Err(err) => {
                conflicts::decline_refused(db, &item.rows, &err.to_string())
                    .await
                    .map_err(SinkError::pg("recording a refused decline"))?;
                report.failed += 1;
                metrics::counter!(DECLINES_FAILED, "kind" => "definite").increment(1);
                warn!(error = %err, "graph refused to decline a conflicting outlook booking; recorded in decline_error");
            }
        }
    }
    Ok(report)
}

/// Whether the decline may succeed if sent again later (a 412/409 is a race with an edit: also worth a retry).
fn is_transient(err: &GraphError) -> bool {
    let class = err.classify();
    class.is_retryable() || class == ErrorClass::Conflict
}

/// Runs [`decline_pending`] every `interval` until the future is dropped, on a connection of its own (reopened
/// after a database error, so an outage only delays declines).
pub(crate) async fn run(database: tokio_postgres::Config, graph: GraphClient, interval: Duration, comment: String) {
    // A zero interval would make tokio's timer panic and spin the database.
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(100)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut db: Option<tokio_postgres::Client> = None;
    loop {
        ticker.tick().await;
        if db.as_ref().is_none_or(tokio_postgres::Client::is_closed) {
            db = match database.connect(NoTls).await {
                Ok((client, connection)) => {
                    tokio::spawn(async move {
                        if let Err(err) = connection.await {
                            warn!(error = %err, "decline worker's postgres connection ended");
                        }
                    });
                    Some(client)
                }
                Err(err) => {
                    warn!(error = %err, "decline worker cannot connect to postgres; trying next interval");
                    continue;
                }
            };
        }
        let Some(client) = db.as_ref() else { continue };
        match decline_pending(client, &graph, &comment).await {
            Ok(report) if report != DeclineReport::default() => {
                info!(
                    declined = report.declined,
                    already_gone = report.already_gone,
                    failed = report.failed,
                    deferred = report.deferred,
                    "decline pass"
                );
            }
            Ok(_) => {}
            Err(err) => {
                warn!(error = %err, "decline pass failed; trying next interval");
                db = None;
            }
        }
    }
}
