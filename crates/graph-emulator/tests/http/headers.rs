//! Response headers Graph sends and clients read: request-id, client-request-id, Location, Preference-Applied.

use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::Value;

use crate::tenant::{event, start, Graph, ROOM};

/// Sends `/v1.0{path}` and returns the status, headers and JSON body.
async fn send(
    g: &Graph,
    method: Method,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (u16, HeaderMap, Value) {
    let answer = g.call(method, path, body, headers).await;
    (answer.status, answer.headers, answer.body)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_echoes_the_client_request_id() {
    let g = start().await;
    let sent = "4f1d9a8e-0b7c-4d2e-9c1a-2b3c4d5e6f70";
    let (status, headers, _) =
        send(&g, Method::GET, &format!("/users/{ROOM}/events"), None, &[("client-request-id", sent)]).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "client-request-id"), Some(sent));
    let request_id = header(&headers, "request-id").expect("request-id");
    assert!(uuid::Uuid::parse_str(request_id).is_ok(), "{request_id}");

    // Without one, Graph makes one up; an error body's innerError repeats both ids of its answer.
    let (status, headers, body) = send(&g, Method::GET, &format!("/users/{ROOM}/events/nothere"), None, &[]).await;
    assert_eq!(status, 404);
    let generated = header(&headers, "client-request-id").expect("client-request-id");
    assert!(uuid::Uuid::parse_str(generated).is_ok(), "{generated}");
    let inner = &body["error"]["innerError"];
    assert_eq!(inner["request-id"].as_str(), header(&headers, "request-id"));
    assert_eq!(inner["client-request-id"].as_str(), Some(generated));
}

#[tokio::test]
async fn a_created_event_answers_201_with_its_location() {
    let g = start().await;
    let body = event("x", "2030-01-07T08:00:00", "2030-01-07T09:00:00");
    let (status, headers, created) = send(&g, Method::POST, "/users/room%40example.org/events", Some(body), &[]).await;
    assert_eq!(status, 201);
    let location = header(&headers, "location").expect("Location");
    let id = created["id"].as_str().expect("id");
    assert_eq!(location, format!("{}/v1.0/users/{ROOM}/events/{id}", g.base));
    let fetched: Value =
        g.http.get(location).bearer_auth(&g.token).send().await.expect("send").json().await.expect("json");
    assert_eq!(fetched["id"], created["id"], "the Location resolves to the created event");
}

#[tokio::test]
async fn honoured_preferences_are_named_in_preference_applied() {
    let g = start().await;
    let prefer = r#"outlook.timezone="Pacific Standard Time", IdType="ImmutableId""#;
    let body = event("x", "2030-01-07T08:00:00", "2030-01-07T09:00:00");
    let (_, headers, created) =
        send(&g, Method::POST, &format!("/users/{ROOM}/events"), Some(body), &[("Prefer", prefer)]).await;
    let applied = header(&headers, "preference-applied").expect("Preference-Applied");
    assert!(applied.contains(r#"outlook.timezone="Pacific Standard Time""#), "{applied}");
    assert!(applied.contains(r#"IdType="ImmutableId""#), "{applied}");
    assert_eq!(created["start"]["timeZone"], "Pacific Standard Time");

    let window = "startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-02-01T00:00:00Z";
    let (_, headers, _) = send(
        &g,
        Method::GET,
        &format!("/users/{ROOM}/calendarView/delta?{window}"),
        None,
        &[("Prefer", "odata.maxpagesize=2")],
    )
    .await;
    assert_eq!(header(&headers, "preference-applied"), Some("odata.maxpagesize=2"));

    // A preference that was not honoured (an unknown zone) is not claimed, and none at all means no header.
    let (_, headers, _) = send(
        &g,
        Method::GET,
        &format!("/users/{ROOM}/events"),
        None,
        &[("Prefer", r#"outlook.timezone="Mars/Olympus""#)],
    )
    .await;
    assert_eq!(header(&headers, "preference-applied"), None);
    let (_, headers, _) = send(&g, Method::GET, &format!("/users/{ROOM}/events"), None, &[]).await;
    assert_eq!(header(&headers, "preference-applied"), None);
}
