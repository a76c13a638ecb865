//! calendarView, instances, occurrences, paging, delta tokens, If-Match.

use reqwest::Method;
use serde_json::{json, Value};

use crate::tenant::{event, start, ROOM};

fn ids(body: &Value) -> Vec<String> {
    body["value"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["id"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn calendar_view_reads_its_parameters_with_their_own_offset_whatever_the_prefer_zone() {
    let g = start().await;
    g.post(&format!("/users/{ROOM}/events"), event("x", "2030-01-07T08:00:00", "2030-01-07T09:00:00")).await;
    let oslo = [("Prefer", "outlook.timezone=\"Europe/Oslo\"")];
    let view = |start: &'static str| {
        let path = format!("/users/{ROOM}/calendarView?startDateTime={start}&endDateTime=2030-01-08T00:00:00Z");
        let g = &g;
        async move { g.call(Method::GET, &path, None, &oslo).await }
    };
    assert_eq!(ids(&view("2030-01-07T10:00:00%2B01:00").await.body).len(), 0, "09:00Z: the event has ended");
    let inside = view("2030-01-07T09:30:00%2B01:00").await;
    assert_eq!(ids(&inside.body).len(), 1, "08:30Z: the event is running");
    assert_eq!(inside.body["value"][0]["start"]["dateTime"], "2030-01-07T09:00:00.0000000");
    assert_eq!(inside.body["value"][0]["start"]["timeZone"], "Europe/Oslo");
    let missing = g.get(&format!("/users/{ROOM}/calendarView")).await;
    assert_eq!(missing.status, 400);
}

#[tokio::test]
async fn instances_of_a_relative_monthly_series_and_a_deleted_occurrence_disappears() {
    let g = start().await;
    let mut body = event("Monthly", "2030-01-07T09:00:00", "2030-01-07T10:00:00");
    body["recurrence"] = json!({
        "pattern": {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["monday"], "index": "first"},
        "range": {"type": "noEnd", "startDate": "2030-01-01"}
    });
    let master = g.post(&format!("/users/{ROOM}/events"), body).await;
    assert_eq!(master.body["type"], "seriesMaster");
    let master_id = master.body["id"].as_str().expect("id").to_string();
    let path = format!(
        "/users/{ROOM}/events/{master_id}/instances?startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-04-01T00:00:00Z"
    );
    let instances = g.get(&path).await;
    let starts: Vec<&str> = instances.body["value"]
        .as_array()
        .expect("value")
        .iter()
        .filter_map(|e| e["start"]["dateTime"].as_str())
        .collect();
    assert_eq!(
        starts,
        vec!["2030-01-07T09:00:00.0000000", "2030-02-04T09:00:00.0000000", "2030-03-04T09:00:00.0000000"]
    );
    assert_eq!(instances.body["value"][1]["originalStart"], "2030-02-04T09:00:00.0000000Z");

    let feb = ids(&instances.body)[1].clone();
    let deleted = g.call(Method::DELETE, &format!("/users/{ROOM}/events/{feb}"), None, &[]).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(ids(&g.get(&path).await.body).len(), 2);
    assert_eq!(g.get(&format!("/users/{ROOM}/events/{feb}")).await.status, 404);
    let list = g.get(&format!("/users/{ROOM}/events")).await;
    assert_eq!(ids(&list.body), vec![master_id], "the events list shows the master, not occurrences");
}

#[tokio::test]
async fn the_events_list_pages_with_a_next_link() {
    let g = start().await;
    for i in 0..12 {
        let start = format!("2030-01-07T{:02}:00:00", 8 + i);
        let end = format!("2030-01-07T{:02}:30:00", 8 + i);
        g.post(&format!("/users/{ROOM}/events"), event("x", &start, &end)).await;
    }
    let first = g.get(&format!("/users/{ROOM}/events")).await;
    assert_eq!(ids(&first.body).len(), 10);
    let next = first.body["@odata.nextLink"].as_str().expect("nextLink").to_string();
    let second: Value = g.http.get(next).bearer_auth(&g.token).send().await.expect("send").json().await.expect("json");
    assert_eq!(ids(&second).len(), 2);
    assert!(second.get("@odata.nextLink").is_none());
}

#[tokio::test]
async fn delta_links_carry_tokens_and_unknown_tokens_are_gone() {
    let g = start().await;
    g.post(&format!("/users/{ROOM}/events"), event("x", "2030-01-07T08:00:00", "2030-01-07T09:00:00")).await;
    g.post(&format!("/users/{ROOM}/events"), event("y", "2030-01-07T10:00:00", "2030-01-07T11:00:00")).await;
    let path =
        format!("/users/{ROOM}/calendarView/delta?startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-02-01T00:00:00Z");
    let first = g.call(Method::GET, &path, None, &[("Prefer", "odata.maxpagesize=1")]).await;
    assert_eq!(ids(&first.body).len(), 1);
    assert_eq!(first.body["value"][0]["@odata.type"], "#microsoft.graph.event");
    let next = first.body["@odata.nextLink"].as_str().expect("nextLink");
    assert!(next.contains("$skiptoken="));
    let second: Value = g.http.get(next).bearer_auth(&g.token).send().await.expect("send").json().await.expect("json");
    assert!(second["@odata.deltaLink"].as_str().is_some_and(|l| l.contains("$deltatoken=")));
    let gone = g.get(&format!("/users/{ROOM}/calendarView/delta?$deltatoken=made-up")).await;
    assert_eq!(gone.status, 410);
    assert_eq!(gone.body["error"]["code"], "SyncStateNotFound");
}

#[tokio::test]
async fn a_stale_if_match_blocks_delete_with_412() {
    let g = start().await;
    let created =
        g.post(&format!("/users/{ROOM}/events"), event("x", "2030-01-07T08:00:00", "2030-01-07T09:00:00")).await;
    let id = created.body["id"].as_str().expect("id").to_string();
    let etag = created.body["@odata.etag"].as_str().expect("etag").to_string();
    assert_eq!(etag, format!("W/\"{}\"", created.body["changeKey"].as_str().expect("changeKey")));
    g.call(Method::PATCH, &format!("/users/{ROOM}/events/{id}"), Some(json!({"subject": "y"})), &[]).await;
    let stale = g.call(Method::DELETE, &format!("/users/{ROOM}/events/{id}"), None, &[("If-Match", &etag)]).await;
    assert_eq!(stale.status, 412);
    assert_eq!(stale.body["error"]["code"], "ErrorIrresolvableConflict");
}

#[tokio::test]
async fn an_all_day_event_across_two_zones_is_rejected() {
    let g = start().await;
    let body = json!({
        "subject": "x",
        "isAllDay": true,
        "start": {"dateTime": "2030-01-07T00:00:00", "timeZone": "Europe/Oslo"},
        "end": {"dateTime": "2030-01-08T00:00:00", "timeZone": "Pacific Standard Time"},
    });
    assert_eq!(g.post(&format!("/users/{ROOM}/events"), body).await.status, 400);
}

#[tokio::test]
async fn editing_one_occurrence_makes_an_exception_that_cannot_cross_its_neighbours() {
    let g = start().await;
    let mut body = event("Daily", "2030-01-07T09:00:00", "2030-01-07T10:00:00");
    body["recurrence"] = json!({
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "wednesday", "friday"]},
        "range": {"type": "numbered", "startDate": "2030-01-07", "numberOfOccurrences": 3}
    });
    let master = g.post(&format!("/users/{ROOM}/events"), body).await;
    let master_id = master.body["id"].as_str().expect("id").to_string();
    let delta_path =
        format!("/users/{ROOM}/calendarView/delta?startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-02-01T00:00:00Z");
    let first = g.get(&delta_path).await;
    assert_eq!(ids(&first.body).len(), 3);
    let delta_link = first.body["@odata.deltaLink"].as_str().expect("deltaLink").to_string();

    let view_path =
        format!("/users/{ROOM}/calendarView?startDateTime=2030-01-01T00:00:00Z&endDateTime=2030-02-01T00:00:00Z");
    let wednesday = ids(&g.get(&view_path).await.body)[1].clone();
    let moved = json!({"subject": "Moved", "start": {"dateTime": "2030-01-10T13:00:00", "timeZone": "UTC"}, "end": {"dateTime": "2030-01-10T14:00:00", "timeZone": "UTC"}});
    let patched = g.call(Method::PATCH, &format!("/users/{ROOM}/events/{wednesday}"), Some(moved), &[]).await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["type"], "exception");
    assert_eq!(patched.body["seriesMasterId"], master_id.as_str());
    assert_eq!(patched.body["originalStart"], "2030-01-09T09:00:00.0000000Z");

    let view = g.get(&view_path).await.body;
    let kinds: Vec<(&str, &str)> = view["value"]
        .as_array()
        .expect("value")
        .iter()
        .map(|e| (e["type"].as_str().unwrap_or(""), e["start"]["dateTime"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("occurrence", "2030-01-07T09:00:00.0000000"),
            ("exception", "2030-01-10T13:00:00.0000000"),
            ("occurrence", "2030-01-11T09:00:00.0000000"),
        ]
    );
    let next: Value =
        g.http.get(delta_link).bearer_auth(&g.token).send().await.expect("send").json().await.expect("json");
    assert_eq!(ids(&next), vec![wednesday.clone()], "only the edited occurrence changed");
    assert_eq!(next["value"][0]["type"], "exception");

    let onto_friday = json!({"start": {"dateTime": "2030-01-11T15:00:00", "timeZone": "UTC"}, "end": {"dateTime": "2030-01-11T16:00:00", "timeZone": "UTC"}});
    let crossing = g.call(Method::PATCH, &format!("/users/{ROOM}/events/{wednesday}"), Some(onto_friday), &[]).await;
    assert_eq!(crossing.status, 400);
    assert_eq!(crossing.body["error"]["code"], "ErrorOccurrenceCrossingBoundary");
}

#[tokio::test]
async fn delta_answers_the_function_call_forms_the_sdks_send() {
    let g = start().await;
    g.post(&format!("/users/{ROOM}/events"), event("x", "2030-01-07T08:00:00", "2030-01-07T09:00:00")).await;
    // Kiota's URL templates call delta as an OData function, `delta()`, some with the namespace; Graph accepts
    // every form, with the window's colons percent-encoded or not, and with the parameter names in any case
    // (Graph's own delta example writes `startdatetime`).
    let window = "startDateTime=2030-01-01T00%3A00%3A00Z&endDateTime=2030-02-01T00%3A00%3A00Z";
    for form in [
        format!("/users/{ROOM}/calendarView/delta()?{window}"),
        format!("/users/{ROOM}/calendarView/microsoft.graph.delta()?{window}"),
        format!("/users/room%40example.org/calendar/calendarView/delta()?{window}"),
        format!("/users/{ROOM}/calendarView/delta?startdatetime=2030-01-01T00:00:00Z&enddatetime=2030-02-01T00:00:00Z"),
    ] {
        let a = g.get(&form).await;
        assert_eq!(a.status, 200, "{form}: {}", a.body);
        assert_eq!(ids(&a.body).len(), 1, "{form}");
        assert!(a.body["@odata.deltaLink"].as_str().is_some_and(|l| l.contains("$deltatoken=")), "{form}");
    }
}
