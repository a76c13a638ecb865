//! The event resource as Graph returns it by default: every property of the v1.0 event type, with the values
//! Exchange gives an event the app wrote straight into a room's calendar.

use serde_json::{json, Value};

use crate::tenant::{start, ROOM};

fn berlin_event() -> Value {
    json!({
        "subject": "Planning",
        "start": {"dateTime": "2030-01-07T09:00:00", "timeZone": "W. Europe Standard Time"},
        "end": {"dateTime": "2030-01-07T10:00:00", "timeZone": "W. Europe Standard Time"},
    })
}

#[tokio::test]
async fn an_event_carries_every_default_property_with_graphs_values() {
    let g = start().await;
    let created = g.post(&format!("/users/{ROOM}/events"), berlin_event()).await;
    assert_eq!(created.status, 201);
    let id = created.body["id"].as_str().expect("id").to_string();
    let e = g.get(&format!("/users/{ROOM}/events/{id}")).await.body;
    for (property, value) in [
        ("originalStartTimeZone", json!("W. Europe Standard Time")),
        ("originalEndTimeZone", json!("W. Europe Standard Time")),
        ("responseStatus", json!({"response": "organizer", "time": "0001-01-01T00:00:00Z"})),
        ("importance", json!("normal")),
        ("isOrganizer", json!(true)),
        ("isReminderOn", json!(true)),
        ("reminderMinutesBeforeStart", json!(15)),
        ("hasAttachments", json!(false)),
        ("isDraft", json!(false)),
        ("responseRequested", json!(true)),
        ("allowNewTimeProposals", json!(true)),
        ("hideAttendees", json!(false)),
        ("isOnlineMeeting", json!(false)),
        ("onlineMeetingProvider", json!("unknown")),
        ("onlineMeetingUrl", Value::Null),
        ("onlineMeeting", Value::Null),
        ("seriesMasterId", Value::Null),
        ("transactionId", Value::Null),
        ("recurrence", Value::Null),
    ] {
        assert_eq!(e.get(property), Some(&value), "{property} in {e}");
    }
    let link = e["webLink"].as_str().expect("webLink");
    assert!(
        link.starts_with("https://outlook.office365.com/owa/?itemid=")
            && link.ends_with("&exvsurl=1&path=/calendar/item")
    );
    assert_eq!(e["start"]["timeZone"], "UTC", "answers stay in UTC without Prefer: outlook.timezone");

    // Echoing the read-only properties back in a PATCH is harmless, as with Graph.
    let mut echo = e.clone();
    echo["subject"] = json!("Planning, moved");
    let patched = g.call(reqwest::Method::PATCH, &format!("/users/{ROOM}/events/{id}"), Some(echo), &[]).await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["subject"], "Planning, moved");
}

#[tokio::test]
async fn a_booking_made_by_someone_else_is_not_organised_by_the_room() {
    let g = start().await;
    let mut request = berlin_event();
    request["organizer"] = json!({"emailAddress": {"name": "Ada", "address": "ada@example.org"}});
    let answer = g.admin(&format!("/mailboxes/{ROOM}/meeting-requests"), request).await;
    assert_eq!(answer.body["response"], "accepted");
    let id = answer.body["event"]["id"].as_str().expect("id").to_string();
    let e = g.get(&format!("/users/{ROOM}/events/{id}")).await.body;
    assert_eq!(e["isOrganizer"], false);
    assert_eq!(e["responseStatus"]["response"], "accepted");
}
