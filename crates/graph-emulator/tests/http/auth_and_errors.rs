//! Token endpoint, bearer gate, error bodies, validation.

use reqwest::Method;
use serde_json::{json, Value};

use crate::tenant::{event, start, start_with, ROOM, TENANT};

#[tokio::test]
async fn the_token_endpoint_answers_the_client_credentials_shape() {
    let g = start().await;
    let reply: Value = g
        .http
        .post(format!("{}/{TENANT}/oauth2/v2.0/token", g.base))
        .form(&[
            ("client_id", "roomsync-test-client"),
            ("client_secret", "roomsync-test-secret"),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(reply["token_type"], "Bearer");
    assert_eq!(reply["expires_in"], 3599);
    assert_eq!(reply["ext_expires_in"], 3599);
    assert!(reply["access_token"].is_string());
    assert!(reply.get("refresh_token").is_none());
}

#[tokio::test]
async fn a_wrong_secret_is_refused_with_invalid_client() {
    let g = start().await;
    let response = g
        .http
        .post(format!("{}/{TENANT}/oauth2/v2.0/token", g.base))
        .form(&[
            ("client_id", "roomsync-test-client"),
            ("client_secret", "nope"),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn a_forged_bearer_token_gets_401_and_is_logged() {
    let g = start().await;
    let response =
        g.http.get(format!("{}/v1.0/users/{ROOM}/events", g.base)).bearer_auth("forged").send().await.expect("send");
    assert_eq!(response.status(), 401);
    assert_eq!(g.emu.requests().iter().map(|r| r.status).collect::<Vec<_>>(), vec![401]);
}

#[tokio::test]
async fn unknown_items_answer_error_item_not_found_with_inner_error() {
    let g = start().await;
    let a = g.get(&format!("/users/{ROOM}/events/AAMkADnothing")).await;
    assert_eq!(a.status, 404);
    assert_eq!(a.body["error"]["code"], "ErrorItemNotFound");
    assert!(a.body["error"]["innerError"]["request-id"].is_string());
    let unknown_user = g.get("/users/nobody@example.org/events").await;
    assert_eq!(unknown_user.status, 404);
    let unknown_segment = g.get("/nothing/here").await;
    assert_eq!(unknown_segment.status, 400);
}

#[tokio::test]
async fn unknown_properties_and_bad_json_are_rejected() {
    let g = start().await;
    let mut body = event("x", "2030-01-01T10:00:00", "2030-01-01T11:00:00");
    body["colour"] = json!("red");
    assert_eq!(g.post(&format!("/users/{ROOM}/events"), body).await.status, 400);
    let bad = g
        .http
        .post(format!("{}/v1.0/users/{ROOM}/events", g.base))
        .bearer_auth(&g.token)
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn the_transaction_id_cannot_be_changed_by_patch() {
    let g = start().await;
    let mut body = event("x", "2030-01-01T10:00:00", "2030-01-01T11:00:00");
    body["transactionId"] = json!("t-1");
    let created = g.post(&format!("/users/{ROOM}/events"), body).await;
    let id = created.body["id"].as_str().expect("id").to_string();
    let patch =
        g.call(Method::PATCH, &format!("/users/{ROOM}/events/{id}"), Some(json!({"transactionId": "t-2"})), &[]).await;
    assert_eq!(patch.status, 400);
    assert_eq!(g.get(&format!("/users/{ROOM}/events/{id}")).await.body["transactionId"], "t-1");
}

#[tokio::test]
async fn a_denied_mailbox_answers_error_access_denied() {
    let g = start_with(|c| c.faults.denied_mailboxes = vec!["room@example.org".into()]).await;
    let a = g.get(&format!("/users/{ROOM}/events")).await;
    assert_eq!(a.status, 403);
    assert_eq!(a.body["error"]["code"], "ErrorAccessDenied");
}

#[tokio::test]
async fn writing_location_replaces_locations_and_text_bodies_become_html() {
    let g = start().await;
    let mut body = event("x", "2030-01-01T10:00:00", "2030-01-01T11:00:00");
    body["locations"] = json!([{"displayName": "A"}, {"displayName": "B"}]);
    body["body"] = json!({"contentType": "text", "content": "hello"});
    let created = g.post(&format!("/users/{ROOM}/events"), body).await;
    assert_eq!(created.status, 201);
    assert_eq!(created.body["locations"].as_array().map(Vec::len), Some(2));
    assert_eq!(created.body["body"]["contentType"], "html");
    assert_eq!(created.body["bodyPreview"], "hello");
    let id = created.body["id"].as_str().expect("id").to_string();
    let patched = g
        .call(
            Method::PATCH,
            &format!("/users/{ROOM}/events/{id}"),
            Some(json!({"location": {"displayName": "C"}})),
            &[],
        )
        .await;
    assert_eq!(patched.body["locations"], json!([{"displayName": "C"}]));
}

#[tokio::test]
async fn a_read_only_app_can_read_but_not_write() {
    let g = start_with(|c| c.faults.read_only = true).await;
    assert_eq!(g.get(&format!("/users/{ROOM}/events")).await.status, 200);
    let a = g.post(&format!("/users/{ROOM}/events"), event("x", "2030-01-01T10:00:00", "2030-01-01T11:00:00")).await;
    assert_eq!(a.status, 403);
    assert_eq!(a.body["error"]["code"], "ErrorAccessDenied");
}

/// Graph answers a repeated transactionId with the existing event only for a limited time, and never with an
/// event deleted since: a client that retries a create later must look it up first, or it makes a duplicate.
#[tokio::test]
async fn a_repeated_transaction_id_returns_the_event_only_within_the_window_and_only_while_it_exists() {
    let path = format!("/users/{ROOM}/events");
    let mut body = event("x", "2030-01-01T10:00:00", "2030-01-01T11:00:00");
    body["transactionId"] = json!("t-1");

    let g = start().await;
    let first = g.post(&path, body.clone()).await;
    let again = g.post(&path, body.clone()).await;
    assert_eq!((first.status, again.status), (201, 201));
    assert_eq!(first.body["id"], again.body["id"], "within the window: the same event");
    let id = first.body["id"].as_str().expect("id").to_string();
    assert_eq!(g.call(Method::DELETE, &format!("{path}/{id}"), None, &[]).await.status, 204);
    let after_delete = g.post(&path, body.clone()).await;
    assert_ne!(after_delete.body["id"], first.body["id"], "a deleted event is not de-duplicated against");

    let expired = start_with(|c| c.faults.transaction_id_window_ms = 0).await;
    let one = expired.post(&path, body.clone()).await;
    let two = expired.post(&path, body).await;
    assert_ne!(one.body["id"], two.body["id"], "after the window: a second event");
    assert_eq!(expired.get(&path).await.body["value"].as_array().map(Vec::len), Some(2));
}
