//! Delta rounds: paging, changes since the last round, removals, expired tokens.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use graph_client::{DeltaStart, ErrorClass, Event, EventType};
use graph_emulator::FaultConfig;
use serde_json::json;

use crate::events::meeting;
use crate::tenant::{start, start_with, ROOM_A};

fn window() -> DeltaStart {
    let at = |s: &str| DateTime::parse_from_rfc3339(s).expect("t").with_timezone(&Utc);
    DeltaStart::Initial { start: at("2030-01-01T00:00:00Z"), end: at("2030-02-01T00:00:00Z") }
}

fn hour(day: u32, h: u32) -> String {
    format!("2030-01-{day:02}T{h:02}:00:00Z")
}

#[tokio::test]
async fn a_delta_round_pages_through_everything_then_only_changes_come_back() {
    let t = start_with(|c| c.faults = FaultConfig { delta_empty_first_page: true, ..FaultConfig::default() }).await;
    let mut ids = Vec::new();
    for i in 0..25 {
        let e = meeting(&format!("m{i}"), &hour(2 + i / 10, 8 + i % 10), &hour(2 + i / 10, 9 + i % 10));
        ids.push(t.client.create_event(ROOM_A, &e).await.expect("create").id.expect("id"));
    }
    // Outside the window: never reported.
    t.client
        .create_event(ROOM_A, &meeting("later", "2030-03-01T08:00:00Z", "2030-03-01T09:00:00Z"))
        .await
        .expect("create");

    let first = t.client.delta_round(ROOM_A, window(), Some(10)).await.expect("initial round");
    assert_eq!(first.pages, 4, "an empty page, then 10 + 10 + 5");
    let seen: HashSet<String> = first.items.iter().filter_map(|e| e.id.clone()).collect();
    assert_eq!(seen, ids.iter().cloned().collect::<HashSet<_>>());
    assert!(first.delta_link.contains("$deltatoken="));

    let patch = Event { subject: Some("renamed".into()), ..Event::default() };
    t.client.update_event(ROOM_A, &ids[3], &patch, None).await.expect("update");
    t.client.delete_event(ROOM_A, &ids[7]).await.expect("delete");
    let moved = Event {
        start: meeting("", "2030-05-01T08:00:00Z", "2030-05-01T09:00:00Z").start,
        end: meeting("", "2030-05-01T08:00:00Z", "2030-05-01T09:00:00Z").end,
        ..Event::default()
    };
    t.client.update_event(ROOM_A, &ids[9], &moved, None).await.expect("move out of window");
    let added = t.client.create_event(ROOM_A, &meeting("new", &hour(20, 8), &hour(20, 9))).await.expect("create");

    let second =
        t.client.delta_round(ROOM_A, DeltaStart::Link(first.delta_link.clone()), Some(10)).await.expect("next round");
    assert_eq!(second.items.len(), 4, "{:?}", second.items);
    let by_id = |id: &str| second.items.iter().find(|e| e.id.as_deref() == Some(id)).cloned();
    assert_eq!(by_id(&ids[3]).and_then(|e| e.subject), Some("renamed".into()));
    assert_eq!(by_id(&ids[7]).and_then(|e| e.removed).map(|r| r.reason), Some("deleted".into()));
    assert!(by_id(&ids[9]).is_some_and(|e| e.is_removed()), "moved out of the window comes as @removed");
    assert!(by_id(added.id.as_deref().expect("id")).is_some_and(|e| !e.is_removed()));

    let quiet =
        t.client.delta_round(ROOM_A, DeltaStart::Link(second.delta_link.clone()), None).await.expect("quiet round");
    assert!(quiet.items.is_empty());
}

#[tokio::test]
async fn an_expired_delta_token_is_sync_state_gone() {
    let t = start().await;
    t.client.create_event(ROOM_A, &meeting("m", &hour(2, 8), &hour(2, 9))).await.expect("create");
    let round = t.client.delta_round(ROOM_A, window(), None).await.expect("round");
    t.emu.expire_delta_tokens();
    let err = t.client.delta_round(ROOM_A, DeltaStart::Link(round.delta_link), None).await.expect_err("expired");
    assert_eq!(err.classify(), ErrorClass::SyncStateGone);
    assert_eq!(err.code(), Some("SyncStateNotFound"));
    assert_eq!(t.statuses().last(), Some(&410));
}

#[tokio::test]
async fn delta_reports_series_occurrences_as_stubs() {
    let t = start().await;
    let mut series = meeting("Daily", &hour(5, 9), &hour(5, 10));
    series.recurrence = Some(json!({
        "pattern": {"type": "daily", "interval": 1},
        "range": {"type": "endDate", "startDate": "2030-01-05", "endDate": "2030-01-07"}
    }));
    let master = t.client.create_event(ROOM_A, &series).await.expect("series");
    let round = t.client.delta_round(ROOM_A, window(), None).await.expect("round");
    assert_eq!(round.items.len(), 3);
    for stub in &round.items {
        assert_eq!(stub.event_type, Some(EventType::Occurrence));
        assert_eq!(stub.series_master_id, master.id);
        assert!(stub.subject.is_none(), "stubs carry no subject");
        assert!(stub.etag.is_some() && stub.start.is_some() && stub.end.is_some());
    }
}

#[tokio::test]
async fn query_options_on_delta_are_refused() {
    let t = start().await;
    let token = t.token().await;
    let url = format!(
        "{}/v1.0/users/{ROOM_A}/calendarView/delta?startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-02-01T00:00:00Z&$select=subject",
        t.base
    );
    let response = t.http.get(url).bearer_auth(token).send().await.expect("send");
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn a_replayed_item_is_reported_twice_and_collapses_to_its_latest_state() {
    let t = start_with(|c| c.faults = FaultConfig { delta_duplicates: true, ..FaultConfig::default() }).await;
    for i in 0..3 {
        t.client.create_event(ROOM_A, &meeting("m", &hour(2, 8 + i), &hour(2, 9 + i))).await.expect("create");
    }
    let round = t.client.delta_round(ROOM_A, window(), Some(2)).await.expect("round");
    assert_eq!(round.items.len(), 4);
    assert_eq!(round.latest_per_id().len(), 3);
}
