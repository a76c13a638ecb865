//! Concurrency scopes, rate windows, random faults, runtime knobs, batch parallelism.

use futures::future::join_all;
use graph_emulator::{ConcurrencyScope, FaultConfig};
use reqwest::Method;
use serde_json::{json, Value};

use crate::tenant::{start_with, OTHER_ROOM, ROOM};

#[tokio::test]
async fn with_app_scope_the_concurrency_limit_spans_mailboxes() {
    let faults = FaultConfig {
        latency_ms: 400,
        concurrency_scope: ConcurrencyScope::App,
        max_concurrency: 2,
        ..FaultConfig::default()
    };
    let g = start_with(|c| c.faults = faults).await;
    let calls = [ROOM, OTHER_ROOM, ROOM, OTHER_ROOM].map(|m| {
        let path = format!("/users/{m}/events");
        let g = &g;
        async move { g.get(&path).await.status }
    });
    let statuses = join_all(calls).await;
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 2, "{statuses:?}");
}

#[tokio::test]
async fn the_rate_window_answers_too_many_requests_with_retry_after_in_whole_seconds_rounded_up() {
    let faults = FaultConfig { rate_limit_requests: 2, rate_limit_window_ms: 10_000, ..FaultConfig::default() };
    let g = start_with(|c| c.faults = faults).await;
    g.get(&format!("/users/{ROOM}/events")).await;
    g.get(&format!("/users/{ROOM}/events")).await;
    let third = g.get(&format!("/users/{ROOM}/events")).await;
    assert_eq!(third.status, 429);
    assert_eq!(third.body["error"]["code"], "TooManyRequests");
    // Graph sends delay-seconds, an integer (RFC 9110); Kiota's retry handler parses it with int() and fails on
    // "9.998". The window has a little under 10 s left, so the answer is 10, never less than what is left.
    assert_eq!(third.retry_after.as_deref(), Some("10"));
    assert_eq!(
        g.get(&format!("/users/{OTHER_ROOM}/events")).await.status,
        200,
        "other mailboxes have their own window"
    );
}

#[tokio::test]
async fn random_faults_are_reproducible_from_the_seed() {
    let faults = FaultConfig {
        random_error_rate: 0.5,
        random_error_statuses: vec![429, 503, 504],
        seed: 11,
        ..FaultConfig::default()
    };
    let mut runs = Vec::new();
    for _ in 0..2 {
        let g = start_with(|c| c.faults = faults.clone()).await;
        let mut statuses = Vec::new();
        for _ in 0..20 {
            let a = g.get(&format!("/users/{ROOM}/events")).await;
            if a.status != 200 {
                assert!(a.retry_after.is_some(), "injected {} carries Retry-After", a.status);
            }
            statuses.push(a.status);
        }
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
    assert!(runs[0].iter().any(|s| *s != 200) && runs[0].contains(&200));
}

#[tokio::test]
async fn fault_knobs_change_at_run_time_through_the_admin_endpoint() {
    let g = start_with(|_| {}).await;
    let url = format!("{}/_emulator/faults", g.base);
    let patched: Value = g
        .http
        .patch(&url)
        .json(&json!({"randomErrorRate": 1.0, "randomErrorStatuses": [503]}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(patched["maxConcurrency"], 4, "untouched knobs keep their value");
    assert_eq!(g.get(&format!("/users/{ROOM}/events")).await.status, 503);
    g.http.patch(&url).json(&json!({"randomErrorRate": 0.0})).send().await.expect("send");
    assert_eq!(g.get(&format!("/users/{ROOM}/events")).await.status, 200);
}

#[tokio::test]
async fn a_batch_runs_at_most_four_inner_requests_at_once() {
    let g = start_with(|c| c.faults = FaultConfig { latency_ms: 50, ..FaultConfig::default() }).await;
    let requests: Vec<Value> = (0..12)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": format!("/users/{ROOM}/events")}))
        .collect();
    let a = g.call(Method::POST, "/$batch", Some(json!({"requests": requests})), &[]).await;
    assert_eq!(a.status, 200);
    let statuses: Vec<u64> =
        a.body["responses"].as_array().expect("responses").iter().filter_map(|r| r["status"].as_u64()).collect();
    assert_eq!(statuses, vec![200; 12], "never more than the mailbox's 4 concurrent requests");
}

#[tokio::test]
async fn inner_batch_requests_need_a_content_type_when_they_carry_a_body() {
    let g = start_with(|_| {}).await;
    let body = json!({"requests": [{"id": "1", "method": "POST", "url": format!("/users/{ROOM}/events"), "body": {"subject": "x"}}]});
    assert_eq!(g.call(Method::POST, "/$batch", Some(body), &[]).await.status, 400);
}

#[tokio::test]
async fn a_request_repeated_before_its_retry_after_is_flagged_in_the_log() {
    let faults = FaultConfig { rate_limit_requests: 1, rate_limit_window_ms: 10_000, ..FaultConfig::default() };
    let g = start_with(|c| c.faults = faults).await;
    let path = format!("/users/{ROOM}/events");
    assert_eq!(g.get(&path).await.status, 200);
    assert_eq!(g.get(&path).await.status, 429);
    assert_eq!(g.get(&path).await.status, 429);
    let flags: Vec<bool> = g.emu.requests().iter().map(|r| r.retried_early).collect();
    assert_eq!(flags, vec![false, false, true]);
}

#[tokio::test]
async fn rate_limit_headers_count_down_while_the_window_is_on() {
    let faults = FaultConfig { rate_limit_requests: 2, rate_limit_window_ms: 10_000, ..FaultConfig::default() };
    let g = start_with(|c| c.faults = faults).await;
    let url = format!("{}/v1.0/users/{ROOM}/events", g.base);
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let response = g.http.get(&url).bearer_auth(&g.token).send().await.expect("send");
        assert_eq!(response.headers().get("ratelimit-limit").and_then(|v| v.to_str().ok()), Some("2"));
        assert!(response.headers().get("ratelimit-reset").is_some());
        remaining.push(response.headers().get("ratelimit-remaining").and_then(|v| v.to_str().ok()).map(str::to_string));
    }
    assert_eq!(remaining, vec![Some("1".to_string()), Some("0".to_string()), Some("0".to_string())]);
}

#[tokio::test]
async fn a_percent_encoded_upn_is_throttled_and_logged_as_its_mailbox() {
    let faults = FaultConfig { rate_limit_requests: 1, rate_limit_window_ms: 10_000, ..FaultConfig::default() };
    let g = start_with(|c| c.faults = faults).await;
    assert_eq!(g.get("/users/room%40example.org/events").await.status, 200);
    assert_eq!(g.get(&format!("/users/{ROOM}/events")).await.status, 429, "the encoded UPN used the room's window");
    let log = g.emu.requests();
    assert_eq!(log.first().and_then(|entry| entry.mailbox.as_deref()), Some(ROOM));
}

#[tokio::test]
async fn a_fractional_retry_after_is_sent_only_when_asked_for() {
    let faults = FaultConfig {
        rate_limit_requests: 1,
        rate_limit_window_ms: 10_000,
        fractional_retry_after: true,
        ..FaultConfig::default()
    };
    let g = start_with(|c| c.faults = faults).await;
    g.get(&format!("/users/{ROOM}/events")).await;
    let throttled = g.get(&format!("/users/{ROOM}/events")).await;
    let value = throttled.retry_after.expect("Retry-After");
    let (whole, fraction) = value.split_once('.').expect("a fraction, as some threads report Graph sending");
    assert!(whole.parse::<u64>().is_ok_and(|s| s <= 10) && fraction.len() == 3, "{value}");
}

#[tokio::test]
async fn identical_concurrent_requests_are_not_flagged_as_early_retries() {
    let faults = FaultConfig { latency_ms: 300, concurrency_retry_after: "5".into(), ..FaultConfig::default() };
    let g = start_with(|c| c.faults = faults).await;
    // Ten identical GETs at once: four hold the mailbox's slots, the others are throttled while their twins are
    // still arriving. None of them is a retry of another.
    let url = format!("{}/v1.0/users/{ROOM}/events", g.base);
    let burst = (0..10).map(|_| g.http.get(&url).bearer_auth(&g.token).send());
    let statuses: Vec<u16> = join_all(burst).await.into_iter().map(|r| r.expect("send").status().as_u16()).collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    let flagged: Vec<(u16, bool)> = g.emu.requests().iter().map(|r| (r.status, r.retried_early)).collect();
    assert!(flagged.iter().all(|(_, early)| !early), "{flagged:?}");
}

#[tokio::test]
async fn the_same_request_from_another_client_is_not_a_retry_but_a_repeat_on_the_connection_is() {
    let faults = FaultConfig { rate_limit_requests: 1, rate_limit_window_ms: 10_000, ..FaultConfig::default() };
    let g = start_with(|c| c.faults = faults).await;
    let path = format!("/users/{ROOM}/events");
    assert_eq!(g.get(&path).await.status, 200);
    assert_eq!(g.get(&path).await.status, 429, "throttled, told to wait");
    // Another client (another connection, no client-request-id) sends the identical request in the meantime.
    let other = reqwest::Client::new();
    let url = format!("{}/v1.0{path}", g.base);
    assert_eq!(other.get(&url).bearer_auth(&g.token).send().await.expect("send").status(), 429);
    // The first client comes back on its connection before the wait is over: that is an early retry.
    assert_eq!(g.get(&path).await.status, 429);
    let flags: Vec<bool> = g.emu.requests().iter().map(|r| r.retried_early).collect();
    assert_eq!(flags, vec![false, false, false, true]);
}

#[tokio::test]
async fn an_sdk_retry_is_recognised_by_its_client_request_id_on_any_connection() {
    let faults = FaultConfig { rate_limit_requests: 1, rate_limit_window_ms: 10_000, ..FaultConfig::default() };
    let g = start_with(|c| c.faults = faults).await;
    let path = format!("/users/{ROOM}/events");
    let id = [("client-request-id", "0d3c1a5e-7a0e-4a8e-9a55-2f6a8f3e4b11")];
    assert_eq!(g.get(&path).await.status, 200);
    assert_eq!(g.call(Method::GET, &path, None, &id).await.status, 429);
    // A new request (its own client-request-id) on the same connection is not a retry...
    let fresh = [("client-request-id", "5b2e9f0c-1d4a-4c3b-8e7f-6a5d4c3b2a19")];
    assert_eq!(g.call(Method::GET, &path, None, &fresh).await.status, 429);
    // ...the SDK's retry, which keeps the id (and adds Retry-Attempt), is, even from a new connection.
    let other = reqwest::Client::new();
    let retry = other
        .get(format!("{}/v1.0{path}", g.base))
        .bearer_auth(&g.token)
        .header(id[0].0, id[0].1)
        .header("Retry-Attempt", "1")
        .send()
        .await
        .expect("send");
    assert_eq!(retry.status(), 429);
    let flags: Vec<bool> = g.emu.requests().iter().map(|r| r.retried_early).collect();
    assert_eq!(flags, vec![false, false, false, true]);
}
