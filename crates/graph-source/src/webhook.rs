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

/// 202 when anything was accepted (or nothing was refused); 403 when every known item failed its clientState
/// check.
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
                // Not ours, or one we already deleted: there is no secret to check it against, so it cannot be
                // trusted and does nothing. It is still answered 2xx, so Graph does not keep retrying a
                // subscription that outlived its room.
                debug!("notification for an unknown subscription");
                note("unknown_subscription", 1);
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

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use rand::{Rng, SeedableRng};
    use tower::ServiceExt;

    use super::*;
    use crate::store::StoredSubscription;

    fn state() -> (WebhookState, Arc<Rooms>, mpsc::UnboundedReceiver<LifecycleCommand>) {
        let book = Arc::new(SubscriptionBook::default());
        book.put(StoredSubscription {
            id: "sub-1".into(),
            mailbox: "room@x".into(),
            client_state: "s3cret".into(),
            expires_at: chrono::Utc::now(),
        });
        let rooms = Arc::new(Rooms::default());
        let (commands, received) = mpsc::unbounded_channel();
        (WebhookState { book, rooms: Arc::clone(&rooms), commands }, rooms, received)
    }

    async fn post(router: &Router, path: &str, body: Vec<u8>) -> StatusCode {
        let request = Request::post(path).body(Body::from(body)).expect("request");
        router.clone().oneshot(request).await.map(|r| r.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    #[tokio::test]
    async fn random_bodies_never_panic_and_never_poke_a_room() {
        let (state, rooms, mut commands) = state();
        let trigger = rooms.insert("room@x");
        let router = webhook_router(state);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let shapes: [&[u8]; 4] = [b"{\"value\":[", b"{\"value\":[{\"subscriptionId\":\"sub-1\"", b"", b"\xff"];
        for n in 0..300 {
            let mut body = shapes[n % shapes.len()].to_vec();
            let len = rng.gen_range(0..64);
            body.extend((0..len).map(|_| rng.gen::<u8>()));
            for path in ["/notifications", "/lifecycle"] {
                let status = post(&router, path, body.clone()).await;
                assert!(status == StatusCode::BAD_REQUEST || status.is_success(), "{status} for {body:?}");
            }
        }
        assert!(commands.try_recv().is_err());
        assert!(tokio::time::timeout(std::time::Duration::from_millis(1), trigger.wake.notified()).await.is_err());
    }

    #[tokio::test]
    async fn only_a_matching_client_state_pokes_the_room() {
        let (state, rooms, _commands) = state();
        let trigger = rooms.insert("room@x");
        let router = webhook_router(state);
        let note = |client_state: &str, sub: &str| {
            format!(
                r#"{{"value":[{{"subscriptionId":"{sub}","clientState":"{client_state}","changeType":"updated",
                "resource":"Users/g/Events/e","resourceData":{{"id":"e"}}}}]}}"#
            )
            .into_bytes()
        };
        assert_eq!(post(&router, "/notifications", note("wrong", "sub-1")).await, StatusCode::FORBIDDEN);
        assert_eq!(post(&router, "/notifications", note("s3cret", "unknown")).await, StatusCode::ACCEPTED);
        assert!(tokio::time::timeout(std::time::Duration::from_millis(1), trigger.wake.notified()).await.is_err());
        assert_eq!(post(&router, "/notifications", note("s3cret", "sub-1")).await, StatusCode::ACCEPTED);
        assert!(tokio::time::timeout(std::time::Duration::from_secs(1), trigger.wake.notified()).await.is_ok());
    }
}
