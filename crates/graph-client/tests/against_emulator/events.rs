//! Events: auth, CRUD, transactionId, extended properties, time zones, all-day, calendarView.

use chrono::{DateTime, NaiveDate, Utc};
use graph_client::{
    DateTimeTimeZone, DeleteOutcome, ErrorClass, Event, EventType, ExtendedProperty, GraphClient, GraphError, ItemBody,
    Secret,
};
use serde_json::{json, Value};

use crate::tenant::{client_config, start, ROOM_A, ROOM_A_EMAIL};

const TAG: &str = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name BookingSystemId";
const KIND: &str = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name BookingSystemType";

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&Utc)
}

pub fn meeting(subject: &str, start: &str, end: &str) -> Event {
    Event {
        subject: Some(subject.into()),
        start: Some(DateTimeTimeZone::utc(utc(start))),
        end: Some(DateTimeTimeZone::utc(utc(end))),
        ..Event::default()
    }
}

#[tokio::test]
async fn requests_without_a_token_get_401_with_the_graph_error_body() {
    let t = start().await;
    let response = t.http.get(format!("{}/v1.0/users/{ROOM_A}/events", t.base)).send().await.expect("send");
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    assert!(body["error"]["innerError"]["request-id"].is_string());
    assert!(body["error"]["innerError"]["date"].is_string());
}

#[tokio::test]
async fn a_wrong_client_secret_is_a_definite_auth_error() {
    let t = start().await;
    let mut config = client_config(&t.base);
    config.client_secret = Secret::new("wrong");
    let client = GraphClient::new(config).expect("client");
    let err = client.list_rooms().await.expect_err("must fail");
    assert!(matches!(err, GraphError::Auth { status: 401, .. }), "{err:?}");
    assert_eq!(err.classify(), ErrorClass::Definite);
}

#[tokio::test]
async fn a_revoked_token_is_replaced_transparently() {
    let t = start().await;
    t.client.list_rooms().await.expect("first call");
    t.emu.revoke_tokens();
    t.client.list_rooms().await.expect("second call refreshes the token");
    assert_eq!(t.statuses(), vec![200, 401, 200]);
}

#[tokio::test]
async fn concurrent_first_calls_share_one_token_request() {
    let t = start().await;
    let calls = (0..10).map(|_| t.client.list_rooms());
    for result in futures::future::join_all(calls).await {
        result.expect("rooms");
    }
    assert_eq!(t.emu.tokens_issued(), 1);
    t.client.list_rooms().await.expect("rooms");
    assert_eq!(t.emu.tokens_issued(), 1, "the cached token is reused");
}

#[tokio::test]
async fn create_get_update_delete_round_trip_changes_the_change_key() {
    let t = start().await;
    let mut new = meeting("Board", "2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z");
    new.body = Some(ItemBody { content_type: "text".into(), content: "Agenda <1>".into() });
    let created = t.client.create_event(ROOM_A, &new).await.expect("create");
    let id = created.id.clone().expect("id");
    let key = created.change_key.clone().expect("changeKey");
    assert_eq!(created.etag.as_deref(), Some(format!("W/\"{key}\"").as_str()));
    assert!(created.ical_uid.is_some() && created.created_date_time.is_some());
    assert_eq!(created.event_type, Some(EventType::SingleInstance));
    let body = created.body.expect("body");
    assert_eq!(body.content_type, "html");
    assert!(body.content.contains("Agenda &lt;1&gt;"));

    let fetched = t.client.get_event(ROOM_A_EMAIL, &id, &[]).await.expect("get by upn");
    assert_eq!(fetched.change_key.as_deref(), Some(key.as_str()));

    let patch = Event { subject: Some("Board (moved)".into()), ..Event::default() };
    let updated = t.client.update_event(ROOM_A, &id, &patch, created.etag.as_deref()).await.expect("update");
    assert_eq!(updated.subject.as_deref(), Some("Board (moved)"));
    assert_ne!(updated.change_key.as_deref(), Some(key.as_str()));

    let stale = t.client.update_event(ROOM_A, &id, &patch, created.etag.as_deref()).await.expect_err("stale etag");
    assert_eq!(stale.classify(), ErrorClass::Conflict);
    assert_eq!(stale.code(), Some("ErrorIrresolvableConflict"));

    assert_eq!(t.client.delete_event(ROOM_A, &id).await.expect("delete"), DeleteOutcome::Deleted);
    let gone = t.client.get_event(ROOM_A, &id, &[]).await.expect_err("gone");
    assert_eq!(gone.classify(), ErrorClass::NotFound);
    assert_eq!(gone.code(), Some("ErrorItemNotFound"));
    assert_eq!(t.client.delete_event(ROOM_A, &id).await.expect("delete again"), DeleteOutcome::AlreadyGone);
}

#[tokio::test]
async fn repeating_a_transaction_id_creates_one_event() {
    let t = start().await;
    let mut new = meeting("Once", "2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z");
    new.transaction_id = Some("reservation-17-room-a".into());
    let first = t.client.create_event(ROOM_A, &new).await.expect("first");
    let second = t.client.create_event(ROOM_A, &new).await.expect("second");
    assert_eq!(first.id, second.id);
    assert_eq!(t.emu.mailbox_events(ROOM_A).expect("mailbox").len(), 1);
    assert_eq!(t.statuses(), vec![201, 201]);
}

#[tokio::test]
async fn extended_properties_are_returned_only_when_expanded_and_can_be_filtered_on() {
    let t = start().await;
    let mut tagged = meeting("Tagged", "2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z");
    tagged.single_value_extended_properties = Some(vec![
        ExtendedProperty { id: TAG.into(), value: "event-42".into() },
        ExtendedProperty { id: KIND.into(), value: "event".into() },
    ]);
    let created = t.client.create_event(ROOM_A, &tagged).await.expect("create");
    assert!(created.single_value_extended_properties.is_none());
    t.client
        .create_event(ROOM_A, &meeting("Other", "2030-01-07T11:00:00Z", "2030-01-07T12:00:00Z"))
        .await
        .expect("other");
    let id = created.id.expect("id");

    let plain = t.client.get_event(ROOM_A, &id, &[]).await.expect("get");
    assert!(plain.single_value_extended_properties.is_none());
    let expanded = t.client.get_event(ROOM_A, &id, &[TAG]).await.expect("expanded");
    assert_eq!(expanded.extended(TAG), Some("event-42"));
    assert_eq!(expanded.extended(KIND), None, "only the asked-for property comes back");

    let found = t.client.find_events_by_property(ROOM_A, TAG, "event-42").await.expect("filter");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id.as_deref(), Some(id.as_str()));
    assert!(found[0].single_value_extended_properties.is_none());
    assert!(t.client.find_events_by_property(ROOM_A, TAG, "event-43").await.expect("filter").is_empty());
}

#[tokio::test]
async fn windows_time_zones_are_accepted_and_answers_come_back_in_utc_with_seven_digits() {
    let t = start().await;
    let local = NaiveDate::from_ymd_opt(2030, 6, 3).and_then(|d| d.and_hms_opt(10, 0, 0)).expect("t");
    let mut new = meeting("Zoned", "2030-01-01T00:00:00Z", "2030-01-01T00:00:00Z");
    new.start = Some(DateTimeTimeZone::local(local, "W. Europe Standard Time"));
    new.end = Some(DateTimeTimeZone::local(local + chrono::Duration::hours(1), "Europe/Oslo"));
    let created = t.client.create_event(ROOM_A, &new).await.expect("create");
    let start = created.start.expect("start");
    assert_eq!(start.date_time, "2030-06-03T08:00:00.0000000");
    assert_eq!(start.time_zone, "UTC");
    assert_eq!(start.to_utc().ok(), Some(utc("2030-06-03T08:00:00Z")));

    let token = t.token().await;
    let id = created.id.expect("id");
    let oslo: Value = t
        .http
        .get(format!("{}/v1.0/users/{ROOM_A}/events/{id}", t.base))
        .bearer_auth(token)
        .header("Prefer", "outlook.timezone=\"Europe/Oslo\"")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(oslo["start"], json!({"dateTime": "2030-06-03T10:00:00.0000000", "timeZone": "Europe/Oslo"}));
}

#[tokio::test]
async fn an_offset_inside_date_time_is_rejected_as_a_definite_error() {
    let t = start().await;
    let mut new = meeting("Offset", "2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z");
    new.start = Some(DateTimeTimeZone { date_time: "2030-01-07T09:00:00+01:00".into(), time_zone: "UTC".into() });
    let err = t.client.create_event(ROOM_A, &new).await.expect_err("offset");
    assert!(matches!(err, GraphError::Api { status: 400, .. }), "{err:?}");
    assert_eq!(err.classify(), ErrorClass::Definite);
    assert!(t.emu.mailbox_events(ROOM_A).expect("mailbox").is_empty());
}

#[tokio::test]
async fn all_day_events_must_run_midnight_to_midnight() {
    let t = start().await;
    let day = |d: u32, h: u32| {
        let local = NaiveDate::from_ymd_opt(2030, 3, d).and_then(|x| x.and_hms_opt(h, 0, 0)).expect("t");
        DateTimeTimeZone::local(local, "Europe/Oslo")
    };
    let mut bad = meeting("All day", "2030-01-01T00:00:00Z", "2030-01-01T00:00:00Z");
    bad.is_all_day = Some(true);
    bad.start = Some(day(4, 10));
    bad.end = Some(day(5, 0));
    let err = t.client.create_event(ROOM_A, &bad).await.expect_err("not midnight");
    assert_eq!(err.classify(), ErrorClass::Definite);

    let mut good = bad.clone();
    good.start = Some(day(4, 0));
    let created = t.client.create_event(ROOM_A, &good).await.expect("midnight to midnight");
    assert_eq!(created.is_all_day, Some(true));
    assert_eq!(created.start.expect("start").date_time, "2030-03-04T00:00:00.0000000");
    assert_eq!(created.end.expect("end").date_time, "2030-03-05T00:00:00.0000000");
}

#[tokio::test]
async fn calendar_view_expands_a_weekly_series_into_occurrences_without_the_master() {
    let t = start().await;
    let mut series = meeting("Weekly", "2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z");
    series.recurrence = Some(json!({
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "wednesday"], "firstDayOfWeek": "monday"},
        "range": {"type": "numbered", "startDate": "2030-01-07", "numberOfOccurrences": 6}
    }));
    let single = meeting("Single", "2030-01-08T12:00:00Z", "2030-01-08T13:00:00Z");
    let master = t.client.create_event(ROOM_A, &series).await.expect("series");
    assert_eq!(master.event_type, Some(EventType::SeriesMaster));
    t.client.create_event(ROOM_A, &single).await.expect("single");

    let view =
        t.client.calendar_view(ROOM_A, utc("2030-01-06T00:00:00Z"), utc("2030-01-20T00:00:00Z")).await.expect("view");
    let starts: Vec<String> = view.iter().filter_map(|e| e.start.as_ref().map(|s| s.date_time.clone())).collect();
    assert_eq!(
        starts,
        vec![
            "2030-01-07T09:00:00.0000000",
            "2030-01-08T12:00:00.0000000",
            "2030-01-09T09:00:00.0000000",
            "2030-01-14T09:00:00.0000000",
            "2030-01-16T09:00:00.0000000",
        ]
    );
    let occurrences: Vec<&Event> = view.iter().filter(|e| e.event_type == Some(EventType::Occurrence)).collect();
    assert_eq!(occurrences.len(), 4);
    assert!(occurrences.iter().all(|o| o.series_master_id == master.id));
    assert!(view.iter().all(|e| e.event_type != Some(EventType::SeriesMaster)));

    let instances = t
        .client
        .instances(ROOM_A, master.id.as_deref().expect("id"), utc("2030-01-01T00:00:00Z"), utc("2030-03-01T00:00:00Z"))
        .await
        .expect("instances");
    assert_eq!(instances.len(), 6);

    let occurrence_id = occurrences[0].id.clone().expect("id");
    let fetched = t.client.get_event(ROOM_A, &occurrence_id, &[]).await.expect("occurrence by id");
    assert_eq!(fetched.event_type, Some(EventType::Occurrence));
}
