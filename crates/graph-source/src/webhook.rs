//! The webhook receiver Graph posts to: the validation handshake, change notifications and lifecycle events.
//!
//! ```text
//! POST /notifications?validationToken=..  -> 200 text/plain <token>
//! POST /notifications {value:[...]}        -> clientState check per item -> poke room (coalesced) -> 202
//! POST /lifecycle {value:[...]}            -> clientState check -> missed: full round; removed: recreate;
//!                                             reauthorizationRequired: reauthorize -> 202
//! ```
//! Invariants: the answer never waits for Graph or Kafka (the work happens in the room tasks), so it stays far
//! inside Graph's 3-second budget; a body that does not parse is answered 400 and changes nothing; a
//! notification counts only when its clientState matches its subscription's secret (constant-time compare);
//! notifications are a signal to run delta, never the truth about an event.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use graph_client::{client_state_matches, parse_change_notifications, parse_lifecycle_notifications};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::metrics;
use crate::room::Rooms;
use crate::subscription::{LifecycleCommand, SubscriptionBook};

/// What the receiver needs.
#[derive(Debug, Clone)]
pub struct WebhookState {
    /// Known subscriptions and their secrets.
    pub book: Arc<SubscriptionBook>,
    /// Rooms to poke.
    pub rooms: Arc<Rooms>,
    /// Lifecycle work for the subscription manager.
    pub commands: mpsc::UnboundedSender<LifecycleCommand>,
}

/// The receiver's routes: `POST /notifications` and `POST /lifecycle` (mount it under the public URL's path).
pub fn webhook_router(state: WebhookState) -> Router {
    Router::new().route("/notifications", post(notifications)).route("/lifecycle", post(lifecycle)).with_state(state)
}

fn validation(query: &HashMap<String, String>) -> Option<Response> {
    let token = query.get("validationToken")?;
    Some((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], token.clone()).into_response())
}

fn note(outcome: &'static str, n: usize) {
    ::metrics::counter!(metrics::NOTIFICATIONS, "outcome" => outcome).increment(n as u64);
}

/// 202 when anything was accepted (or nothing was refused); 403 when every item failed its clientState check.
fn answer(accepted: usize, rejected: usize) -> Response {
    if accepted == 0 && rejected > 0 {
        StatusCode::FORBIDDEN.into_response()
    } else {
        StatusCode::ACCEPTED.into_response()
    }
}

async fn notifications(
    State(state): State<WebhookState>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if let Some(reply) = validation(&query) {
        return reply;
    }
    let Ok(items) = parse_change_notifications(&body) else {
        note("malformed", 1);
        return StatusCode::BAD_REQUEST.into_response();
    };
    let (mut accepted, mut rejected) = (0, 0);
    for item in &items {
        match state.book.get(&item.subscription_id) {
            Some(sub) if client_state_matches(item.client_state.as_deref(), &sub.client_state) => {
                accepted += 1;
                state.rooms.poke(&sub.mailbox, false);
            }
            Some(_) => rejected += 1,
            None => {
                // Not ours (or gone): there is no secret to check it against, so it cannot be trusted.
                debug!("notification for an unknown subscription");
                note("unknown_subscription", 1);
                rejected += 1;
            }
        }
    }
    note("accepted", accepted);
    if rejected > 0 {
        warn!(rejected, accepted, "refused notifications whose clientState did not match");
        note("rejected", rejected);
    }
    answer(accepted, rejected)
}

async fn lifecycle(
    State(state): State<WebhookState>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if let Some(reply) = validation(&query) {
        return reply;
    }
    let Ok(items) = parse_lifecycle_notifications(&body) else {
        note("malformed", 1);
        return StatusCode::BAD_REQUEST.into_response();
    };
    let (mut accepted, mut rejected) = (0, 0);
    for item in &items {
        let Some(sub) = state
            .book
            .get(&item.subscription_id)
            .filter(|sub| client_state_matches(item.client_state.as_deref(), &sub.client_state))
        else {
            rejected += 1;
            continue;
        };
        accepted += 1;
        let event = item.lifecycle_event.as_str();
        ::metrics::counter!(metrics::LIFECYCLE_EVENTS, "event" => event.to_string()).increment(1);
        info!(mailbox = %sub.mailbox, event, "lifecycle event");
        match event {
            "missed" => {
                state.rooms.poke(&sub.mailbox, true);
            }
            "subscriptionRemoved" => {
                let _ = state.commands.send(LifecycleCommand::Recreate(sub.id.clone()));
            }
            "reauthorizationRequired" => {
                let _ = state.commands.send(LifecycleCommand::Reauthorize(sub.id.clone()));
            }
            other => debug!(event = other, "ignoring an unknown lifecycle event"),
        }
    }
    if rejected > 0 {
        note("rejected", rejected);
    }
    answer(accepted, rejected)
}
