//! Meeting responses of the room: accept, tentativelyAccept, decline.

use reqwest::Method;
use serde_json::{json, Value};

use crate::tenant::{event, start, Graph, ROOM};

async fn booked(g: &Graph, subject: &str) -> Value {
    let mut body = event(subject, "2030-01-07T08:00:00", "2030-01-07T09:00:00");
    body["organizer"] = json!({"emailAddress": {"name": "Kari", "address": "kari@example.org"}});
    let answer = g.admin(&format!("/mailboxes/{ROOM}/bookings"), body).await;
    assert_eq!(answer.status, 201);
    answer.body
}

fn view_path() -> String {
    format!("/users/{ROOM}/calendarView?startDateTime=2030-01-07T00:00:00Z&endDateTime=2030-01-08T00:00:00Z")
}

async fn responses(g: &Graph) -> Vec<Value> {
    let response = g.http.get(format!("{}/_emulator/mailboxes/{ROOM}/responses", g.base)).send().await.expect("send");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    body["value"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn accept_and_tentatively_accept_set_the_response_status_and_change_the_change_key() {
    let g = start().await;
    let created = booked(&g, "Team").await;
    let id = created["id"].as_str().expect("id");
    let first_key = created["changeKey"].as_str().expect("changeKey");

    let accepted = g.post(&format!("/users/{ROOM}/events/{id}/accept"), json!({"comment": "ok"})).await;
    assert_eq!(accepted.status, 202);
    assert_eq!(accepted.body, Value::Null, "202 has no body");
    let after = g.get(&format!("/users/{ROOM}/events/{id}")).await.body;
    assert_eq!(after["responseStatus"]["response"], "accepted");
    assert!(after["responseStatus"]["time"].is_string());
    let accepted_key = after["changeKey"].as_str().expect("changeKey").to_string();
    assert_ne!(accepted_key, first_key);

    let path = format!("/users/{ROOM}/calendar/events/{id}/tentativelyAccept");
    let tentative = g.post(&path, json!({"sendResponse": false})).await;
    assert_eq!(tentative.status, 202);
    let after = g.get(&format!("/users/{ROOM}/events/{id}")).await.body;
    assert_eq!(after["responseStatus"]["response"], "tentativelyAccepted");
    assert_ne!(after["changeKey"].as_str(), Some(accepted_key.as_str()));

    let log = responses(&g).await;
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["eventId"], id);
    assert_eq!(log[0]["response"], "accepted");
    assert_eq!(log[0]["comment"], "ok");
    assert_eq!(log[0]["sendResponse"], true, "Graph's default");
    assert_eq!(log[1]["response"], "tentativelyAccepted");
    assert_eq!(log[1]["comment"], Value::Null);
    assert_eq!(log[1]["sendResponse"], false);
}

#[tokio::test]
async fn decline_removes_the_event_from_the_calendar_and_delta_and_records_the_comment() {
    let g = start().await;
    let created = booked(&g, "Clash").await;
    let id = created["id"].as_str().expect("id").to_string();
    let delta = g
        .get(&format!(
            "/users/{ROOM}/calendarView/delta?startDateTime=2030-01-07T00:00:00Z&endDateTime=2030-01-08T00:00:00Z"
        ))
        .await;
    let delta_link = delta.body["@odata.deltaLink"].as_str().expect("deltaLink").to_string();
    assert_eq!(delta.body["value"].as_array().map(Vec::len), Some(1));

    let comment = "Rommet er allerede reservert. / The room is already reserved.";
    let declined =
        g.post(&format!("/users/{ROOM}/events/{id}/decline"), json!({"comment": comment, "sendResponse": true})).await;
    assert_eq!(declined.status, 202);
    assert_eq!(g.get(&view_path()).await.body["value"], json!([]));
    assert_eq!(g.get(&format!("/users/{ROOM}/events/{id}")).await.status, 404);

    let suffix = delta_link.split("/v1.0").nth(1).expect("path");
    let changes = g.get(suffix).await.body;
    assert_eq!(changes["value"][0]["id"], id.as_str());
    assert_eq!(changes["value"][0]["@removed"]["reason"], "deleted");

    let log = responses(&g).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["eventId"], id.as_str());
    assert_eq!(log[0]["iCalUId"], created["iCalUId"]);
    assert_eq!(log[0]["response"], "declined");
    assert_eq!(log[0]["comment"], comment);
    assert_eq!(log[0]["sendResponse"], true);
    assert!(log[0]["time"].is_string());

    let again = g.post(&format!("/users/{ROOM}/events/{id}/decline"), json!({})).await;
    assert_eq!(again.status, 404);
    assert_eq!(again.body["error"]["code"], "ErrorItemNotFound");
    assert_eq!(responses(&g).await.len(), 1, "a failed response is not recorded");
}

#[tokio::test]
async fn declining_one_occurrence_cancels_only_that_date() {
    let g = start().await;
    let mut body = event("Weekly", "2030-01-07T08:00:00", "2030-01-07T09:00:00");
    body["recurrence"] = json!({
        "pattern": {"type": "daily", "interval": 1},
        "range": {"type": "numbered", "startDate": "2030-01-07", "numberOfOccurrences": 3}
    });
    let master = g.admin(&format!("/mailboxes/{ROOM}/bookings"), body).await.body;
    let master_id = master["id"].as_str().expect("id");
    let path = format!(
        "/users/{ROOM}/events/{master_id}/instances?startDateTime=2030-01-07T00:00:00Z&endDateTime=2030-01-10T00:00:00Z"
    );
    let instances = g.get(&path).await.body;
    let second = instances["value"][1]["id"].as_str().expect("occurrence id").to_string();
    assert_eq!(g.post(&format!("/users/{ROOM}/events/{second}/decline"), json!({})).await.status, 202);
    assert_eq!(g.get(&path).await.body["value"].as_array().map(Vec::len), Some(2));
    assert_eq!(g.get(&format!("/users/{ROOM}/events/{second}")).await.status, 404);
}

#[tokio::test]
async fn malformed_response_bodies_and_unknown_events_change_nothing() {
    let g = start().await;
    let created = booked(&g, "Team").await;
    let id = created["id"].as_str().expect("id");
    for bad in [
        json!({"comment": 5}),
        json!({"sendResponse": "yes"}),
        json!({"proposedNewTime": {}}),
        json!({"comment": "x", "extra": 1}),
        json!(["comment"]),
    ] {
        let answer = g.post(&format!("/users/{ROOM}/events/{id}/decline"), bad.clone()).await;
        assert_eq!(answer.status, 400, "{bad}");
        assert_eq!(answer.body["error"]["code"], "ErrorInvalidRequest");
    }
    assert_eq!(g.get(&view_path()).await.body["value"].as_array().map(Vec::len), Some(1));
    for action in ["accept", "tentativelyAccept", "decline"] {
        let answer = g.post(&format!("/users/{ROOM}/events/AAMkADnothere/{action}"), json!({})).await;
        assert_eq!(answer.status, 404, "{action}");
        assert_eq!(answer.body["error"]["code"], "ErrorItemNotFound");
    }
    assert!(responses(&g).await.is_empty());
}

#[tokio::test]
async fn responses_pass_the_gate_like_other_event_requests() {
    let g = start().await;
    let created = booked(&g, "Team").await;
    let id = created["id"].as_str().expect("id");
    let unauthenticated =
        g.http.post(format!("{}/v1.0/users/{ROOM}/events/{id}/accept", g.base)).json(&json!({})).send().await;
    assert_eq!(unauthenticated.expect("send").status(), 401);

    g.emu.set_faults(graph_emulator::FaultConfig { read_only: true, ..g.emu.faults() });
    let refused = g.call(Method::POST, &format!("/users/{ROOM}/events/{id}/decline"), Some(json!({})), &[]).await;
    assert_eq!(refused.status, 403);
    g.emu.set_faults(graph_emulator::FaultConfig { read_only: false, ..g.emu.faults() });
    assert_eq!(g.post(&format!("/users/room@example.org/events/{id}/accept"), json!({})).await.status, 202);

    let log = g.emu.requests();
    let paths: Vec<(&str, u16, Option<&str>)> =
        log.iter().map(|r| (r.path.as_str(), r.status, r.mailbox.as_deref())).collect();
    assert_eq!(paths.len(), 3, "{paths:?}");
    assert_eq!(paths[0].1, 401);
    assert_eq!((paths[1].1, paths[1].2), (403, Some(ROOM)));
    assert_eq!((paths[2].1, paths[2].2), (202, Some(ROOM)));
    assert!(paths[2].0.ends_with("/accept"));
}
