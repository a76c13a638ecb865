//! Subscriptions: expiry limits, lifecycle events, held (out-of-order) and duplicated notifications.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::tenant::{event, start, Graph, ROOM};

async fn receiver() -> (String, mpsc::UnboundedReceiver<Value>) {
    let (tx, rx) = mpsc::unbounded_channel::<Value>();
    async fn hook(
        State(tx): State<mpsc::UnboundedSender<Value>>,
        Query(q): Query<HashMap<String, String>>,
        body: axum::body::Bytes,
    ) -> (axum::http::StatusCode, String) {
        if let Some(token) = q.get("validationToken") {
            return (axum::http::StatusCode::OK, token.clone());
        }
        if let Ok(v) = serde_json::from_slice::<Value>(&body) {
            let _ = tx.send(v);
        }
        (axum::http::StatusCode::ACCEPTED, String::new())
    }
    let app = Router::new().route("/hook", post(hook)).with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("in time").expect("open")
}

async fn subscribe(g: &Graph, url: &str, minutes: i64) -> crate::tenant::Answer {
    let body = json!({
        "changeType": "created,updated,deleted",
        "notificationUrl": url,
        "lifecycleNotificationUrl": url,
        "resource": format!("/users/{ROOM}/events"),
        "expirationDateTime": (Utc::now() + chrono::Duration::minutes(minutes)).to_rfc3339(),
        "clientState": "state",
    });
    g.post("/subscriptions", body).await
}

#[tokio::test]
async fn an_expiry_beyond_10080_minutes_is_refused() {
    let g = start().await;
    let (url, _rx) = receiver().await;
    assert_eq!(subscribe(&g, &url, 10_090).await.status, 400);
    assert_eq!(subscribe(&g, &url, 10_000).await.status, 201);
}

#[tokio::test]
async fn lifecycle_events_are_delivered_and_removal_deletes_the_subscription() {
    let g = start().await;
    let (url, mut rx) = receiver().await;
    let id = subscribe(&g, &url, 60).await.body["id"].as_str().expect("id").to_string();
    assert_eq!(g.call(Method::POST, &format!("/subscriptions/{id}/reauthorize"), None, &[]).await.status, 204);
    g.admin(&format!("/subscriptions/{id}/lifecycle/reauthorizationRequired"), json!({})).await;
    assert_eq!(next(&mut rx).await["value"][0]["lifecycleEvent"], "reauthorizationRequired");
    g.admin(&format!("/subscriptions/{id}/lifecycle/subscriptionRemoved"), json!({})).await;
    assert_eq!(next(&mut rx).await["value"][0]["lifecycleEvent"], "subscriptionRemoved");
    assert_eq!(g.get(&format!("/subscriptions/{id}")).await.status, 404);
}

#[tokio::test]
async fn held_notifications_are_released_on_flush_and_duplicated_on_demand() {
    let g = start().await;
    let (url, mut rx) = receiver().await;
    subscribe(&g, &url, 60).await;
    let knobs = json!({"notificationHold": true, "notificationDuplicates": true});
    g.http.patch(format!("{}/_emulator/faults", g.base)).json(&knobs).send().await.expect("send");
    let created =
        g.post(&format!("/users/{ROOM}/events"), event("x", "2030-01-07T08:00:00", "2030-01-07T09:00:00")).await;
    let id = created.body["id"].as_str().expect("id").to_string();
    g.call(Method::PATCH, &format!("/users/{ROOM}/events/{id}"), Some(json!({"subject": "y"})), &[]).await;
    assert_eq!(g.admin("/notifications/flush", json!({})).await.body["delivered"], 2);
    let mut kinds = Vec::new();
    for _ in 0..4 {
        let note = next(&mut rx).await;
        assert_eq!(note["value"][0]["clientState"], "state");
        kinds.push(note["value"][0]["changeType"].as_str().unwrap_or_default().to_string());
    }
    kinds.sort();
    assert_eq!(kinds, vec!["created", "created", "updated", "updated"]);
}

#[tokio::test]
async fn a_refused_notification_is_delivered_again() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    // A receiver that validates, then refuses the first notification with 503 and accepts the next.
    let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
    let refused = Arc::new(AtomicUsize::new(0));
    async fn hook(
        State((tx, refused)): State<(mpsc::UnboundedSender<Value>, Arc<AtomicUsize>)>,
        Query(q): Query<HashMap<String, String>>,
        body: axum::body::Bytes,
    ) -> (axum::http::StatusCode, String) {
        if let Some(token) = q.get("validationToken") {
            return (axum::http::StatusCode::OK, token.clone());
        }
        if refused.fetch_add(1, Ordering::SeqCst) == 0 {
            return (axum::http::StatusCode::SERVICE_UNAVAILABLE, String::new());
        }
        if let Ok(v) = serde_json::from_slice::<Value>(&body) {
            let _ = tx.send(v);
        }
        (axum::http::StatusCode::ACCEPTED, String::new())
    }
    let app = Router::new().route("/hook", post(hook)).with_state((tx, Arc::clone(&refused)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let g = start().await;
    let body = json!({
        "changeType": "created",
        "notificationUrl": url,
        "resource": format!("/users/{ROOM}/events"),
        "expirationDateTime": (Utc::now() + chrono::Duration::minutes(60)).to_rfc3339(),
    });
    assert_eq!(g.post("/subscriptions", body).await.status, 201);
    g.post(&format!("/users/{ROOM}/events"), event("x", "2030-01-07T08:00:00", "2030-01-07T09:00:00")).await;
    assert_eq!(next(&mut rx).await["value"][0]["changeType"], "created");
    assert_eq!(refused.load(Ordering::SeqCst), 2, "refused once, accepted on the retry");
}
