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

#[tokio::test]
async fn an_extended_property_filter_matches_values_without_case_and_an_id_alone_matches_any_value() {
    // learn.microsoft.com, "Get singleValueLegacyExtendedProperty": an eq on the id alone finds the instances that
    // carry the property; filtering the value of a string property is case-insensitive.
    const KIND: &str = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name BookingSystemType";
    let g = start().await;
    let mut tagged = berlin_event();
    tagged["singleValueExtendedProperties"] = json!([{"id": KIND, "value": "Event"}]);
    assert_eq!(g.post(&format!("/users/{ROOM}/events"), tagged).await.status, 201);
    assert_eq!(g.post(&format!("/users/{ROOM}/events"), berlin_event()).await.status, 201);
    let g = &g;
    let found = |filter: String| {
        let encoded: String = url::form_urlencoded::byte_serialize(filter.as_bytes()).collect();
        let path = format!("/users/{ROOM}/events?$filter={}", encoded.replace('+', "%20"));
        async move {
            let answer = g.get(&path).await;
            assert_eq!(answer.status, 200, "{}", answer.body);
            answer.body["value"].as_array().map_or(0, Vec::len)
        }
    };
    let any =
        |value: &str| format!("singleValueExtendedProperties/Any(ep: ep/id eq '{KIND}' and ep/value eq '{value}')");
    assert_eq!(found(any("event")).await, 1, "the value differs only in case");
    assert_eq!(found(any("EVENT")).await, 1);
    assert_eq!(found(any("booking")).await, 0);
    assert_eq!(found(format!("singleValueExtendedProperties/Any(ep: ep/id eq '{KIND}')")).await, 1, "any value");
}
