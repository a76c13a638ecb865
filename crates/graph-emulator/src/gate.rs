//! The gate every `/v1.0` request passes: bearer check, fault injection, throttling, latency, request log.
//!
//! ```text
//! request -> ids (request-id, client-request-id) -> auth (401) -> random fault before apply (429/5xx)
//!         -> rate window (429 TooManyRequests) -> concurrency slot (429 ApplicationThrottled) -> latency
//!         -> handler -> [504 after apply] -> log -> ids stamped on the answer
//! ```
//! Invariants: every request that reaches the gate is logged exactly once with the status the client saw; the
//! concurrency slot is held for the whole handler including injected latency; an injected "after apply" failure
//! only ever hides a response, it never undoes the write (that is the case clients must survive); a retry of a
//! request told to wait by Retry-After, made before the wait is over, is flagged `retriedEarly` in the log, so
//! tests can prove the client honours Retry-After (what counts as a retry: `retry_watch`).

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde_json::Value;

use crate::auth::is_authorized;
use crate::config::ConcurrencyScope;
use crate::correlation::RequestIds;
use crate::error::ApiError;
use crate::retry_watch::Origin;
use crate::state::{lock, Emulator, LogEntry};
use crate::throttle::{retry_after_value, Quota};

/// Internal header marking inner `$batch` requests (for the log only).
pub const BATCH_MARK: &str = "x-emulator-batch-inner";

/// Largest body the gate buffers to read a transactionId.
const MAX_BODY: usize = 4 * 1024 * 1024;

fn random_error(status: u16, retry_after: &str) -> ApiError {
    let (code, message) = match status {
        429 => ("TooManyRequests", "Too many requests."),
        500 => ("generalException", "An unexpected error occurred."),
        502 => ("BadGateway", "Bad gateway."),
        503 => ("serviceNotAvailable", "The service is temporarily unavailable."),
        504 => ("GatewayTimeout", "The gateway timed out."),
        507 => ("ErrorQuotaExceeded", "The mailbox quota is exceeded."),
        _ => ("UnknownError", "Injected fault."),
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let err = ApiError::new(status, code, message);
    if retry_after.is_empty() || status == StatusCode::INTERNAL_SERVER_ERROR {
        err
    } else {
        err.with_retry_after(retry_after)
    }
}

/// The mailbox id addressed by `/v1.0/users/{id|upn}/...`, if it exists.
fn mailbox_of(emu: &Emulator, path: &str) -> Option<String> {
    let mut parts = path.trim_start_matches('/').split('/');
    let (Some("v1.0"), Some("users"), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    // Clients may percent-encode the UPN (`room%40example.org`); axum decodes it for the handlers, so the gate
    // must too, or such requests would escape throttling and fault injection and be logged without a mailbox.
    let key = percent_decode(key)?;
    lock(&emu.shared.tenant).find(&key).map(|m| m.id.clone())
}

/// Decodes `%XX` escapes of a path segment; `None` for malformed escapes or non-UTF-8 results.
pub(crate) fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The middleware. The request's correlation ids are current while it is handled (error bodies repeat them) and
/// stamped on whatever it answers, throttling and auth failures included.
pub async fn gate(State(emu): State<Emulator>, req: Request, next: Next) -> Response {
    let ids = RequestIds::for_request(req.headers());
    let mut response = ids.clone().scope(guarded(emu, req, next)).await;
    ids.stamp(&mut response);
    response
}

async fn guarded(emu: Emulator, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path_and_query().map_or_else(|| req.uri().path().to_string(), |p| p.to_string());
    let in_batch = req.headers().contains_key(BATCH_MARK);
    let mailbox = mailbox_of(&emu, req.uri().path());
    let mut entry = LogEntry {
        method,
        path,
        mailbox: mailbox.clone(),
        status: 0,
        timestamp: chrono::Utc::now().to_rfc3339(),
        transaction_id: None,
        in_batch,
        retried_early: false,
        immutable_id: asks_immutable_ids(req.headers()),
        client_request_id: None,
    };
    let origin = origin_of(&emu, &req);
    entry.client_request_id = origin.client_request_id.clone();
    let (mut parts, body) = req.into_parts();
    // Inner `$batch` requests inherit this origin: they share the batch's connection and exchange.
    parts.extensions.insert(origin.clone());
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            let response = ApiError::bad_request("Body too large.").into_response();
            return finish(&emu, Watched { entry, key: String::new(), origin }, response);
        }
    };
    entry.transaction_id = transaction_id(&bytes);
    let req = Request::from_parts(parts, Body::from(bytes));
    let key = format!("{} {} {}", entry.method, entry.path, entry.transaction_id.as_deref().unwrap_or(""));
    entry.retried_early = emu.shared.retry_watch.is_early(&key, &origin);
    let entry = Watched { entry, key, origin };

    if !is_authorized(&emu, req.headers()) {
        return finish(&emu, entry, ApiError::unauthorized().into_response());
    }
    let Some(mailbox) = mailbox else {
        let response = next.run(req).await;
        return finish(&emu, entry, response);
    };
    let faults = emu.faults();
    if is_denied(&emu, &faults.denied_mailboxes, &mailbox) {
        let err = ApiError::new(
            StatusCode::FORBIDDEN,
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again.",
        );
        return finish(&emu, entry, err.into_response());
    }
    if faults.read_only && entry.entry.method != "GET" {
        let err = ApiError::new(
            StatusCode::FORBIDDEN,
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again.",
        );
        return finish(&emu, entry, err.into_response());
    }
    let injected = {
        let mut rng = lock(&emu.shared.rng);
        let roll: f64 = rng.gen();
        (roll < faults.random_error_rate && !faults.random_error_statuses.is_empty()).then(|| {
            let i = rng.gen_range(0..faults.random_error_statuses.len());
            faults.random_error_statuses.get(i).copied().unwrap_or(503)
        })
    };
    let after_apply = injected == Some(504) && faults.fail_after_apply;
    if let (Some(status), false) = (injected, after_apply) {
        let response = random_error(status, &faults.random_retry_after).into_response();
        return finish(&emu, entry, response);
    }
    let window = Duration::from_millis(faults.rate_limit_window_ms);
    let quota = match emu.shared.throttle.check_rate(&mailbox, faults.rate_limit_requests, window) {
        Ok(quota) => quota,
        Err(wait) => {
            let err = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "Too many requests.")
                .with_retry_after(retry_after_value(wait, faults.fractional_retry_after));
            let mut response = err.into_response();
            let limit = faults.rate_limit_requests;
            rate_limit_headers(&mut response, Quota { limit, remaining: 0, reset: wait });
            return finish(&emu, entry, response);
        }
    };
    let key = match faults.concurrency_scope {
        ConcurrencyScope::Mailbox => mailbox,
        ConcurrencyScope::App => "app".to_string(),
    };
    let Some(slot) = emu.shared.throttle.try_acquire(&key, faults.max_concurrency) else {
        let err = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "ApplicationThrottled",
            "Application is over its MailboxConcurrency limit.",
        )
        .with_retry_after(faults.concurrency_retry_after.clone());
        return finish(&emu, entry, err.into_response());
    };
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    let mut response = next.run(req).await;
    drop(slot);
    if let Some(quota) = quota {
        rate_limit_headers(&mut response, quota);
    }
    if after_apply {
        response = random_error(504, &faults.random_retry_after).into_response();
    }
    finish(&emu, entry, response)
}

/// The body's `transactionId`, read without building the body's value tree (every create passes here).
fn transaction_id(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(rename = "transactionId")]
        transaction_id: Option<Value>,
    }
    match serde_json::from_slice::<Body>(body).ok()?.transaction_id? {
        Value::String(id) => Some(id),
        _ => None,
    }
}

/// Dev Proxy-style `RateLimit-*` headers (IETF draft): limit, remaining, seconds until reset.
fn rate_limit_headers(response: &mut Response, quota: Quota) {
    let reset = quota.reset.as_secs_f64().ceil().to_string();
    let headers = response.headers_mut();
    for (name, value) in [
        ("ratelimit-limit", quota.limit.to_string()),
        ("ratelimit-remaining", quota.remaining.to_string()),
        ("ratelimit-reset", reset),
    ] {
        if let Ok(v) = axum::http::HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
}

fn asks_immutable_ids(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("IdType=\"ImmutableId\""))
}

fn is_denied(emu: &Emulator, denied: &[String], mailbox_id: &str) -> bool {
    if denied.is_empty() {
        return false;
    }
    let tenant = lock(&emu.shared.tenant);
    denied.iter().any(|d| tenant.find(d).is_some_and(|m| m.id == mailbox_id))
}

/// A request on its way through the gate: its log line, its key for the retry watch, and where it came from.
struct Watched {
    entry: LogEntry,
    key: String,
    origin: Origin,
}

/// The origin of `req`: inherited from the enclosing `$batch` for inner requests, else its connection's peer
/// and a new exchange number. The client-request-id is always the request's own.
fn origin_of(emu: &Emulator, req: &Request) -> Origin {
    let client_request_id =
        req.headers().get("client-request-id").and_then(|v| v.to_str().ok()).map(|v| v.trim().to_string());
    if let Some(outer) = req.extensions().get::<Origin>() {
        return Origin { client_request_id, ..outer.clone() };
    }
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    Origin { client_request_id, peer, exchange: emu.shared.retry_watch.next_exchange() }
}

fn finish(emu: &Emulator, Watched { mut entry, key, origin }: Watched, response: Response) -> Response {
    entry.status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0);
    match retry_after {
        Some(seconds) => emu.shared.retry_watch.penalize(&key, &origin, Duration::from_secs_f64(seconds.min(86_400.0))),
        None if response.status().is_success() => emu.shared.retry_watch.clear(&key, &origin),
        None => {}
    }
    tracing::debug!(method = %entry.method, status = entry.status, "graph request");
    lock(&emu.shared.log).push(entry);
    response
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn encoded_mailbox_segments_are_decoded() {
        assert_eq!(percent_decode("room-a%40example.org").as_deref(), Some("room-a@example.org"));
        assert_eq!(percent_decode("room-a@example.org").as_deref(), Some("room-a@example.org"));
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%ff"), None, "not UTF-8");
    }

    #[test]
    fn the_transaction_id_is_read_from_any_body() {
        use super::transaction_id;
        let create = br#"{"subject":"x","body":{"content":"y"},"transactionId":"6f1c","start":{"dateTime":"2026"}}"#;
        assert_eq!(transaction_id(create).as_deref(), Some("6f1c"));
        assert_eq!(transaction_id(br#"{"subject":"x"}"#), None);
        assert_eq!(transaction_id(br#"{"transactionId":17}"#), None, "not a string");
        assert_eq!(transaction_id(br#"[1,2]"#), None, "not an object");
        assert_eq!(transaction_id(b""), None, "no body");
    }
}
