//! Throttling and injected faults: the client stays within limits, retries, and lands writes exactly once.

use std::collections::HashMap;

use futures::future::join_all;
use graph_client::{ErrorClass, Event};
use graph_emulator::FaultConfig;

use crate::events::meeting;
use crate::tenant::{start_with, ROOM_A, ROOM_B};

fn event(i: usize) -> Event {
    let at = |h: usize| format!("2030-02-{:02}T{:02}:00:00Z", 1 + i / 10, 8 + h + i % 10);
    let mut e = meeting(&format!("write {i}"), &at(0), &at(1));
    e.transaction_id = Some(format!("tx-{i}"));
    e
}

#[tokio::test]
async fn a_burst_above_four_is_throttled_while_the_client_completes_everything_within_the_limit() {
    let slow = FaultConfig { latency_ms: 400, concurrency_retry_after: "0.2".into(), ..FaultConfig::default() };
    let t = start_with(|c| c.faults = slow).await;
    let token = t.token().await;
    let url = format!("{}/v1.0/users/{ROOM_A}/events", t.base);
    let burst = (0..10).map(|_| t.http.get(&url).bearer_auth(&token).send());
    let responses: Vec<reqwest::Response> = join_all(burst).await.into_iter().map(|r| r.expect("send")).collect();
    let throttled: Vec<&reqwest::Response> = responses.iter().filter(|r| r.status() == 429).collect();
    assert!(!throttled.is_empty(), "10 concurrent requests to one mailbox must hit the limit of 4");
    assert!(responses.iter().filter(|r| r.status() == 200).count() >= 4);
    assert!(throttled.iter().all(|r| r.headers().get("retry-after").is_some_and(|v| v == "0.2")));
    let body: serde_json::Value =
        responses.into_iter().find(|r| r.status() == 429).expect("throttled").json().await.expect("json");
    assert_eq!(body["error"]["code"], "ApplicationThrottled");
    assert_eq!(body["error"]["message"], "Application is over its MailboxConcurrency limit.");

    t.emu.reset_requests();
    let writes = (0..12).map(|i| {
        let client = t.client.clone();
        async move { client.create_event(ROOM_A, &event(i)).await }
    });
    for result in join_all(writes).await {
        result.expect("every write succeeds");
    }
    assert_eq!(t.statuses(), vec![201; 12], "the client never exceeded 4 in flight, so nothing was throttled");
}

#[tokio::test]
async fn the_rate_window_throttles_with_a_fractional_retry_after_that_the_client_honours() {
    let limited = FaultConfig { rate_limit_requests: 3, rate_limit_window_ms: 300, ..FaultConfig::default() };
    let t = start_with(|c| c.faults = limited).await;
    // This test runs on one thread (current-thread runtime): the client's metrics land in this recorder.
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    let guard = metrics::set_default_local_recorder(&recorder);
    for i in 0..5 {
        t.client.create_event(ROOM_B, &event(i)).await.expect("write");
    }
    drop(guard);
    let log = t.emu.requests();
    let throttled = log.iter().filter(|r| r.status == 429).count();
    assert!(throttled > 0, "the fourth request in the window is throttled");
    assert_eq!(log.iter().filter(|r| r.status == 201).count(), 5);
    let text = metrics.render();
    let has = |line: String| text.lines().any(|l| l == line);
    assert!(has(r#"roomsync_graph_requests_total{method="POST",status="201"} 5"#.into()), "{text}");
    assert!(has(format!(r#"roomsync_graph_requests_total{{method="POST",status="429"}} {throttled}"#)), "{text}");
    assert!(has(format!("roomsync_graph_throttled_total {throttled}")), "{text}");
    assert!(has(format!(r#"roomsync_graph_retries_total{{reason="throttled"}} {throttled}"#)), "{text}");
    assert_eq!(t.emu.mailbox_events(ROOM_B).expect("mailbox").len(), 5);
    assert!(log.iter().all(|r| !r.retried_early), "the client waited out every Retry-After");
}

/// 503 says "not processed": the client sends the create again until it lands. A 504 after Graph applied the
/// create leaves open whether it was carried out: the client hands it back to the caller and never posts it
/// again by itself (Graph de-duplicates a repeated transactionId only for a while), so each write makes exactly
/// one event either way.
#[tokio::test]
async fn a_storm_of_503_is_retried_and_a_create_whose_answer_was_lost_goes_back_to_the_caller_unrepeated() {
    let storm = FaultConfig {
        random_error_rate: 0.5,
        random_error_statuses: vec![503, 504],
        random_retry_after: "0.01".into(),
        fail_after_apply: true,
        seed: 7,
        ..FaultConfig::default()
    };
    let t = start_with(|c| c.faults = storm).await;
    let writes = (0..20).map(|i| {
        let client = t.client.clone();
        async move { client.create_event(ROOM_A, &event(i)).await }
    });
    let mut lost = Vec::new();
    for (i, result) in join_all(writes).await.into_iter().enumerate() {
        match result {
            Ok(_) => {}
            Err(err) => {
                assert!(matches!(err, graph_client::GraphError::Api { status: 504, .. }), "{err}");
                assert!(err.may_have_been_applied());
                lost.push(format!("tx-{i}"));
            }
        }
    }
    let log = t.emu.requests();
    assert!(log.iter().any(|r| r.status == 503), "the storm produced 503s");
    assert!(!lost.is_empty() && lost.len() < 20, "some answers were lost after applying: {lost:?}");
    assert!(log.iter().all(|r| !r.retried_early), "the client waited out every Retry-After");
    for tx in &lost {
        let last = log.iter().rev().find(|r| r.transaction_id.as_deref() == Some(tx.as_str())).map(|r| r.status);
        assert_eq!(last, Some(504), "{tx}: nothing was posted after its lost answer");
    }
    let events = t.emu.mailbox_events(ROOM_A).expect("mailbox");
    assert_eq!(events.len(), 20, "every write was carried out once");
    let mut per_tx: HashMap<String, usize> = HashMap::new();
    for e in &events {
        *per_tx.entry(e["transactionId"].as_str().expect("tx").to_string()).or_default() += 1;
    }
    assert!(per_tx.values().all(|n| *n == 1));
}

#[tokio::test]
async fn a_client_gives_up_after_max_attempts_with_a_transient_error() {
    let broken = FaultConfig { random_error_rate: 1.0, random_error_statuses: vec![503], ..FaultConfig::default() };
    let t = start_with(|c| c.faults = broken).await;
    let mut config = crate::tenant::client_config(&t.base);
    config.max_attempts = 3;
    let client = graph_client::GraphClient::new(config).expect("client");
    let err = client.create_event(ROOM_A, &event(0)).await.expect_err("always 503");
    assert!(matches!(err.classify(), ErrorClass::Transient { retry_after: Some(_) }));
    assert_eq!(t.statuses(), vec![503, 503, 503]);
}

#[tokio::test]
async fn the_request_log_records_method_path_mailbox_status_and_transaction_id() {
    let t = start_with(|_| {}).await;
    let created = t.client.create_event(ROOM_A, &event(1)).await.expect("create");
    t.client.get_event(ROOM_A, created.id.as_deref().expect("id"), &[]).await.expect("get");
    let log = t.emu.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].method, "POST");
    assert_eq!(log[0].path, format!("/v1.0/users/{ROOM_A}/events"));
    assert_eq!(log[0].mailbox.as_deref(), Some(ROOM_A));
    assert_eq!(log[0].status, 201);
    assert_eq!(log[0].transaction_id.as_deref(), Some("tx-1"));
    assert_eq!(log[1].method, "GET");
    assert_eq!(log[1].transaction_id, None);
    assert!(!log[1].timestamp.is_empty());
    assert!(log.iter().all(|r| r.immutable_id), "every request asks for immutable ids");
}

#[tokio::test]
async fn a_graph_that_hangs_up_is_a_transient_network_error_after_the_allowed_attempts() {
    // Accept and hang up at once: every request fails at the transport level, deterministically.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    let mut config = crate::tenant::client_config(&base);
    config.max_attempts = 2;
    let client = graph_client::GraphClient::new(config).expect("client");
    let err = client.list_rooms().await.expect_err("nobody listens");
    assert!(matches!(err, graph_client::GraphError::Network(_)), "{err:?}");
    assert_eq!(err.classify(), ErrorClass::Transient { retry_after: None });
}

/// Every request carries a `client-request-id` (a GUID, as Microsoft's SDKs send it: it names the request in
/// Graph's own logs and support cases) and keeps it across its retries, in a `$batch` too, so Graph and the
/// emulator can tell a retry from an identical concurrent request.
#[tokio::test]
async fn every_request_names_itself_with_a_client_request_id_kept_across_its_retries() {
    let limited = FaultConfig { rate_limit_requests: 2, rate_limit_window_ms: 300, ..FaultConfig::default() };
    let t = start_with(|c| c.faults = limited).await;
    for i in 0..4 {
        t.client.create_event(ROOM_B, &event(i)).await.expect("write");
    }
    let log = t.emu.requests();
    assert!(log.iter().any(|r| r.status == 429), "the rate window throttled some");
    let ids: Vec<&str> = log.iter().filter_map(|r| r.client_request_id.as_deref()).collect();
    assert_eq!(ids.len(), log.len(), "every request carries one: {log:?}");
    assert!(ids.iter().all(|id| uuid_like(id)), "{ids:?}");
    // Each create: its throttled attempts and its success share one id; the four creates have four ids.
    let created: Vec<&str> =
        log.iter().filter(|r| r.status == 201).filter_map(|r| r.client_request_id.as_deref()).collect();
    let distinct: std::collections::HashSet<&str> = ids.iter().copied().collect();
    assert_eq!((created.len(), distinct.len()), (4, 4), "{log:?}");
    for throttled in log.iter().filter(|r| r.status == 429) {
        assert!(created.contains(&throttled.client_request_id.as_deref().unwrap_or_default()), "retried under its id");
    }
}

fn uuid_like(id: &str) -> bool {
    id.len() == 36
        && id.chars().filter(|c| *c == '-').count() == 4
        && id.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}
