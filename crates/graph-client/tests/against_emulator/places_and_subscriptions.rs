//! Rooms with paging, and subscriptions with the validation handshake and notifications.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use graph_client::{ErrorClass, Subscription};
use graph_emulator::RoomConfig;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::events::meeting;
use crate::tenant::{start, start_with, ROOM_A};

#[tokio::test]
async fn all_rooms_are_listed_across_pages_of_one_hundred() {
    let t = start_with(|c| {
        for i in 0..150 {
            c.rooms.push(RoomConfig {
                id: format!("00000000-0000-0000-0000-{i:012}"),
                email: format!("extra-{i}@example.org"),
                display_name: format!("Extra {i}"),
                capacity: Some(4),
                building: None,
                floor_number: None,
                room_list: None,
                auto_accept: true,
                allow_conflicts: false,
            });
        }
    })
    .await;
    let rooms = t.client.list_rooms().await.expect("rooms");
    assert_eq!(rooms.len(), 152);
    assert_eq!(t.emu.requests().len(), 2, "two pages");
    assert!(rooms.iter().any(|r| r.email_address == "room-a@example.org" && r.capacity == Some(8)));
}

/// A webhook receiver: answers validation (echo or, if `echo` is false, garbage) and forwards notifications.
async fn receiver(echo: bool) -> (String, mpsc::UnboundedReceiver<Value>) {
    let (tx, rx) = mpsc::unbounded_channel::<Value>();
    async fn hook(
        State((echo, tx)): State<(bool, mpsc::UnboundedSender<Value>)>,
        Query(q): Query<HashMap<String, String>>,
        body: axum::body::Bytes,
    ) -> (axum::http::StatusCode, String) {
        if let Some(token) = q.get("validationToken") {
            let answer = if echo { token.clone() } else { "wrong".into() };
            return (axum::http::StatusCode::OK, answer);
        }
        if let Ok(v) = serde_json::from_slice::<Value>(&body) {
            let _ = tx.send(v);
        }
        (axum::http::StatusCode::ACCEPTED, String::new())
    }
    let app = Router::new().route("/hook", post(hook)).with_state((echo, tx));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

fn subscription(url: &str) -> Subscription {
    Subscription {
        id: None,
        resource: format!("/users/{ROOM_A}/events"),
        change_type: "created,updated,deleted".into(),
        notification_url: url.into(),
        lifecycle_notification_url: None,
        client_state: Some("s3cret-state".into()),
        expiration_date_time: (Utc::now() + chrono::Duration::minutes(4000)).to_rfc3339(),
    }
}

#[tokio::test]
async fn a_subscription_is_validated_and_notifies_changes_with_pascal_case_resources() {
    let t = start().await;
    let (url, mut notifications) = receiver(true).await;
    let created = t.client.create_subscription(&subscription(&url)).await.expect("subscribe");
    let id = created.id.clone().expect("id");

    let event = t
        .client
        .create_event(ROOM_A, &meeting("n", "2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z"))
        .await
        .expect("create");
    let note =
        tokio::time::timeout(Duration::from_secs(10), notifications.recv()).await.expect("in time").expect("note");
    let item = &note["value"][0];
    assert_eq!(item["clientState"], "s3cret-state");
    assert_eq!(item["changeType"], "created");
    let event_id = event.id.expect("id");
    assert_eq!(item["resource"], format!("Users/{ROOM_A}/Events/{event_id}"));
    assert_eq!(item["resourceData"]["id"], event_id.as_str());

    let renewed =
        t.client.renew_subscription(&id, Utc::now() + chrono::Duration::minutes(10_000)).await.expect("renew");
    assert_eq!(renewed.id.as_deref(), Some(id.as_str()));
    let too_long =
        t.client.renew_subscription(&id, Utc::now() + chrono::Duration::minutes(10_081)).await.expect_err("too long");
    assert_eq!(too_long.classify(), ErrorClass::Definite);
    t.client.delete_subscription(&id).await.expect("delete");
    t.client.delete_subscription(&id).await.expect("deleting twice is fine");
}

#[tokio::test]
async fn a_subscription_whose_endpoint_fails_validation_is_not_created() {
    let t = start().await;
    let (url, _notifications) = receiver(false).await;
    let err = t.client.create_subscription(&subscription(&url)).await.expect_err("validation fails");
    assert!(matches!(err, graph_client::GraphError::Api { status: 400, .. }), "{err:?}");
}

#[tokio::test]
async fn a_subscription_naming_a_room_by_an_escaped_address_watches_that_room() {
    const HALL: &str = "6f1c2d1e-8a4b-4c55-9d2e-1a2b3c4d5e04";
    const HALL_EMAIL: &str = "hall+b@example.org";
    let t = start_with(|c| c.rooms.push(crate::tenant::room(HALL, HALL_EMAIL))).await;
    let (url, mut notifications) = receiver(true).await;
    let mut request = subscription(&url);
    request.resource = graph_client::paths::events_resource(HALL_EMAIL);
    assert!(request.resource.contains("%2B"), "the address is escaped: {}", request.resource);
    t.client.create_subscription(&request).await.expect("subscribe");

    t.client
        .create_event(HALL_EMAIL, &meeting("n", "2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z"))
        .await
        .expect("create");
    let note =
        tokio::time::timeout(Duration::from_secs(10), notifications.recv()).await.expect("in time").expect("note");
    let resource = note["value"][0]["resource"].as_str().unwrap_or_default().to_owned();
    assert!(resource.starts_with(&format!("Users/{HALL}/Events/")), "{resource}");
}
