//! `$batch`: chunking by 20, answers mapped back by id, dependsOn and inner failures.

use graph_client::{BatchRequest, ErrorClass, Event, GraphClient, Method};
use graph_emulator::FaultConfig;

use crate::events::meeting;
use crate::tenant::{client_config, start, start_with, ROOM_A, ROOM_B};

fn create(i: usize) -> BatchRequest {
    let at = |h: usize| format!("2030-03-{:02}T{:02}:00:00Z", 1 + i / 10, 8 + h + i % 10);
    let mut e = meeting(&format!("batched {i}"), &at(0), &at(1));
    e.transaction_id = Some(format!("batch-tx-{i}"));
    let mut r = BatchRequest::new(format!("c{i}"), Method::POST, format!("/users/{ROOM_A}/events"));
    r.body = Some(serde_json::to_value(&e).expect("json"));
    r
}

#[tokio::test]
async fn twenty_five_creates_go_out_as_twenty_plus_five_and_come_back_in_request_order() {
    let t = start_with(|c| c.faults = FaultConfig { batch_shuffle: true, ..FaultConfig::default() }).await;
    let answers = t.client.batch(ROOM_A, (0..25).map(create).collect()).await.expect("batch");
    assert_eq!(answers.len(), 25);
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(a.id, format!("c{i}"));
        assert_eq!(a.status, 201);
        let e: Event = a.json().expect("event");
        assert_eq!(e.subject, Some(format!("batched {i}")));
    }
    let log = t.emu.requests();
    let outer: Vec<_> = log.iter().filter(|r| r.path == "/v1.0/$batch").collect();
    assert_eq!(outer.len(), 2);
    assert_eq!(log.iter().filter(|r| r.in_batch && r.status == 201).count(), 25);
    assert!(log.iter().all(|r| r.immutable_id), "outer and inner requests ask for immutable ids");
    assert_eq!(t.emu.mailbox_events(ROOM_A).expect("mailbox").len(), 25);
}

#[tokio::test]
async fn a_failed_dependency_answers_424_and_inner_errors_surface_per_item() {
    let t = start().await;
    let missing = BatchRequest::new("get", Method::GET, format!("/users/{ROOM_A}/events/does-not-exist"));
    let mut dependent = create(1);
    dependent.depends_on = vec!["get".into()];
    let independent = create(2);
    let answers = t.client.batch(ROOM_A, vec![missing, dependent, independent]).await.expect("batch");
    assert_eq!(answers.iter().map(|a| a.status).collect::<Vec<_>>(), vec![404, 424, 201]);
    assert_eq!(answers[0].error().map(|e| e.classify()), Some(ErrorClass::NotFound));
    assert!(answers[1].error().is_some());
    assert!(answers[2].error().is_none());
    assert_eq!(t.emu.mailbox_events(ROOM_A).expect("mailbox").len(), 1, "the dependent create never ran");
}

#[tokio::test]
async fn throttled_inner_requests_are_resent_until_they_land() {
    let limited = FaultConfig { rate_limit_requests: 2, rate_limit_window_ms: 200, ..FaultConfig::default() };
    let t = start_with(|c| c.faults = limited).await;
    let answers = t.client.batch(ROOM_A, (0..5).map(create).collect()).await.expect("batch");
    assert_eq!(answers.iter().map(|a| a.status).collect::<Vec<_>>(), vec![201; 5]);
    let log = t.emu.requests();
    assert!(log.iter().any(|r| r.in_batch && r.status == 429), "some inner requests were throttled");
    assert!(log.iter().filter(|r| r.path == "/v1.0/$batch").count() > 1, "and resent in a later batch");
    assert!(log.iter().all(|r| !r.retried_early), "after their Retry-After");
    assert_eq!(t.emu.mailbox_events(ROOM_A).expect("mailbox").len(), 5);
}

#[tokio::test]
async fn inner_throttling_is_surfaced_per_item_when_attempts_run_out() {
    let limited = FaultConfig { rate_limit_requests: 2, rate_limit_window_ms: 60_000, ..FaultConfig::default() };
    let t = start_with(|c| c.faults = limited).await;
    let mut config = client_config(&t.base);
    config.max_attempts = 1;
    let client = GraphClient::new(config).expect("client");
    let answers = client.batch(ROOM_A, (0..4).map(create).collect()).await.expect("batch");
    let throttled: Vec<_> = answers.iter().filter(|a| a.status == 429).collect();
    assert_eq!(throttled.len(), 2);
    for a in throttled {
        assert!(matches!(a.error().map(|e| e.classify()), Some(ErrorClass::Throttled { retry_after: Some(_) })));
    }
}

#[tokio::test]
async fn malformed_batches_are_refused_with_400() {
    let t = start().await;
    let token = t.token().await;
    let url = format!("{}/v1.0/$batch", t.base);
    let twenty_one: Vec<serde_json::Value> = (0..21)
        .map(|i| serde_json::json!({"id": i.to_string(), "method": "GET", "url": "/places/microsoft.graph.room"}))
        .collect();
    for body in [
        serde_json::json!({"requests": twenty_one}),
        serde_json::json!({"requests": [{"id": "1", "method": "GET", "url": "/x"}, {"id": "1", "method": "GET", "url": "/x"}]}),
        serde_json::json!({"nope": true}),
    ] {
        let response = t.http.post(&url).bearer_auth(&token).json(&body).send().await.expect("send");
        assert_eq!(response.status(), 400, "{body}");
    }
}

#[tokio::test]
async fn requests_to_several_mailboxes_share_batches_without_splitting_a_mailbox_and_come_back_in_order() {
    let t = start_with(|c| c.faults = FaultConfig { batch_shuffle: true, ..FaultConfig::default() }).await;
    let get = |m: &str, i: usize| {
        (m.to_owned(), BatchRequest::new(format!("{m}-{i}"), Method::GET, format!("/users/{m}/events?$top=1")))
    };
    // 12 + 12 requests: two calls of 12, since a mailbox is never split over two (one of 20 and one of 4 would be).
    let mut requests: Vec<(String, BatchRequest)> = Vec::new();
    for i in 0..12 {
        requests.push(get(ROOM_A, i));
        requests.push(get(ROOM_B, i));
    }
    let ids: Vec<String> = requests.iter().map(|(_, r)| r.id.clone()).collect();
    let answers = t.client.batch_across(requests).await.expect("batch across mailboxes");
    assert_eq!(answers.iter().map(|a| a.id.clone()).collect::<Vec<_>>(), ids);
    assert!(answers.iter().all(|a| a.status == 200));
    let log = t.emu.requests();
    assert_eq!(log.iter().filter(|r| r.path == "/v1.0/$batch").count(), 2);

    let too_many: Vec<(String, BatchRequest)> = (0..21).map(|i| get(ROOM_A, i)).collect();
    assert!(t.client.batch_across(too_many).await.is_err(), "21 requests of one mailbox do not fit one call");
}
