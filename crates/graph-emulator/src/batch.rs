//! JSON `$batch`: up to 20 inner requests, `dependsOn`, at most 4 running at once.
//!
//! ```text
//! POST /v1.0/$batch -> validate all (400 on any problem) -> waves of ready requests -> router (gate + handler)
//!                   -> responses in completion order (or shuffled) -> 200 {responses:[...]}
//! ```
//! Invariants: inner requests go through the same gate as direct ones, so each is authorised, throttled and
//! logged on its own; a request whose dependency failed is never executed and answers 424.

use std::collections::{HashMap, HashSet};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use futures::StreamExt;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use tower::ServiceExt;

use crate::error::ApiError;
use crate::gate::BATCH_MARK;
use crate::retry_watch::Origin;
use crate::state::{lock, Emulator};

/// Graph's limit on inner requests.
pub const MAX_REQUESTS: usize = 20;
/// Inner requests Outlook runs in parallel.
pub const MAX_PARALLEL: usize = 4;

#[derive(Debug, Clone)]
struct Inner {
    id: String,
    method: String,
    url: String,
    headers: Map<String, Value>,
    /// The body as the client wrote it: it is handed on as text, so it is never parsed into a tree here.
    body: Option<Box<RawValue>>,
    depends_on: Vec<String>,
}

/// The envelope, its requests kept as text until each is read.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    requests: Option<&'a RawValue>,
}

/// One inner request's fields (others are ignored, as Graph does).
#[derive(Deserialize)]
struct Fields {
    id: Option<Value>,
    method: Option<Value>,
    url: Option<Value>,
    headers: Option<Value>,
    body: Option<Box<RawValue>>,
    #[serde(rename = "dependsOn")]
    depends_on: Option<Value>,
}

fn parse(body: &[u8]) -> Result<Vec<Inner>, ApiError> {
    let bad = |m: &str| ApiError::new(StatusCode::BAD_REQUEST, "BadRequest", m.to_string());
    let payload = || bad("Invalid batch payload format.");
    let envelope: Envelope<'_> = serde_json::from_slice(body).map_err(|_| payload())?;
    let requests: Vec<&RawValue> =
        envelope.requests.and_then(|r| serde_json::from_str(r.get()).ok()).ok_or_else(payload)?;
    if requests.is_empty() || requests.len() > MAX_REQUESTS {
        return Err(bad("Number of batch request steps must be between 1 and 20."));
    }
    let mut ids = HashSet::new();
    let mut out = Vec::new();
    for r in requests {
        // Not an object: it has no id.
        let r: Fields = serde_json::from_str(r.get()).map_err(|_| bad("Request id is required."))?;
        let text = |v: &Option<Value>| v.as_ref().and_then(Value::as_str).map(str::to_string);
        let id = text(&r.id).ok_or_else(|| bad("Request id is required."))?;
        if !ids.insert(id.clone()) {
            return Err(bad("Batch request contains duplicate ids."));
        }
        let method = text(&r.method).ok_or_else(|| bad("Method is required."))?.to_ascii_uppercase();
        if !["GET", "POST", "PATCH", "PUT", "DELETE"].contains(&method.as_str()) {
            return Err(bad("Invalid method."));
        }
        // Graph takes only URLs relative to the version root; an absolute one (as msgraph-sdk-python-core sends)
        // fails the whole batch with its generic payload error (microsoft-graph-docs-contrib issue #8576).
        let url = text(&r.url).filter(|u| !u.contains("://")).ok_or_else(payload)?;
        let headers = match r.headers {
            Some(Value::Object(headers)) => headers,
            _ => Map::new(),
        };
        let body = r.body.filter(|b| b.get() != "null");
        let has_content_type = headers.keys().any(|k| k.eq_ignore_ascii_case("content-type"));
        if body.is_some() && !has_content_type {
            return Err(bad(&format!("Write request id : {id} does not contain Content-Type header or body.")));
        }
        let depends_on = match r.depends_on {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|d| d.as_str().map(str::to_string).ok_or_else(|| bad("dependsOn must hold ids.")))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(bad("dependsOn must be an array.")),
        };
        out.push(Inner { id, method, url, headers, body, depends_on });
    }
    for r in &out {
        if r.depends_on.iter().any(|d| !ids.contains(d) || *d == r.id) {
            return Err(bad("dependsOn refers to an unknown request id."));
        }
    }
    Ok(out)
}

/// One inner request's answer. The body is kept as the handler wrote it: parsing every answered event into a
/// value tree only to write it out again was a fifth of the emulator's work in a first load.
#[derive(Debug, Serialize)]
struct Answer {
    id: String,
    status: u16,
    headers: Map<String, Value>,
    body: Option<Box<RawValue>>,
}

/// The `$batch` answer (a struct, not a `json!` value, which would parse every raw body again).
#[derive(Debug, Serialize)]
struct Reply {
    responses: Vec<Answer>,
}

impl Answer {
    fn of(id: &str, status: u16, body: Option<Box<RawValue>>) -> Self {
        Self { id: id.to_owned(), status, headers: Map::new(), body }
    }
}

async fn dispatch(emu: &Emulator, outer: &HeaderMap, origin: Option<&Origin>, inner: &Inner) -> Answer {
    let Some(router) = emu.shared.router.get().cloned() else {
        return Answer::of(&inner.id, 500, None);
    };
    let path = format!("/v1.0/{}", inner.url.trim_start_matches('/'));
    let mut builder = Request::builder().method(inner.method.as_str()).uri(path).header(BATCH_MARK, "1");
    if let Some(origin) = origin {
        builder = builder.extension(origin.clone());
    }
    for name in ["authorization", "host"] {
        if let Some(v) = outer.get(name) {
            builder = builder.header(name, v);
        }
    }
    for (k, v) in &inner.headers {
        if let Some(v) = v.as_str() {
            builder = builder.header(k.as_str(), v);
        }
    }
    let body = inner.body.as_ref().map_or_else(Body::empty, |b| Body::from(b.get().to_owned()));
    let response = match builder.body(body) {
        Ok(req) => router.oneshot(req).await.unwrap_or_else(|never| match never {}),
        Err(_) => ApiError::bad_request("Invalid inner request.").into_response(),
    };
    let status = response.status().as_u16();
    let headers: Map<String, Value> = response
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), json!(v.to_str().ok()?))))
        .collect();
    let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024).await.unwrap_or_default();
    // Not JSON (an empty 204, for one): null, as Graph answers.
    let body = String::from_utf8(bytes.to_vec()).ok().and_then(|text| RawValue::from_string(text).ok());
    Answer { id: inner.id.clone(), status, headers, body }
}

fn failed_dependency(id: &str) -> Answer {
    let error = ApiError::new(StatusCode::FAILED_DEPENDENCY, "FailedDependency", "A dependent request failed.");
    let mut answer = Answer::of(id, 424, serde_json::value::to_raw_value(&error.body()).ok());
    answer.headers.insert("Content-Type".into(), json!("application/json"));
    answer
}

/// POST /v1.0/$batch
pub async fn batch(
    State(emu): State<Emulator>,
    origin: Option<Extension<Origin>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let mut pending = parse(&body)?;
    let mut statuses: HashMap<String, u16> = HashMap::new();
    let mut responses = Vec::new();
    while !pending.is_empty() {
        let (ready, waiting): (Vec<Inner>, Vec<Inner>) =
            pending.into_iter().partition(|r| r.depends_on.iter().all(|d| statuses.contains_key(d)));
        if ready.is_empty() {
            // A dependency cycle: nothing can ever run.
            return Err(ApiError::bad_request("dependsOn forms a cycle."));
        }
        pending = waiting;
        let (blocked, runnable): (Vec<Inner>, Vec<Inner>) =
            ready.into_iter().partition(|r| r.depends_on.iter().any(|d| statuses.get(d).is_none_or(|s| *s >= 400)));
        for r in blocked {
            statuses.insert(r.id.clone(), 424);
            responses.push(failed_dependency(&r.id));
        }
        let jobs = runnable.into_iter().map(|r| {
            let (emu, headers, origin) = (emu.clone(), headers.clone(), origin.as_ref().map(|o| o.0.clone()));
            async move { dispatch(&emu, &headers, origin.as_ref(), &r).await }
        });
        let done: Vec<Answer> = futures::stream::iter(jobs).buffer_unordered(MAX_PARALLEL).collect().await;
        for r in done {
            statuses.insert(r.id.clone(), r.status);
            responses.push(r);
        }
    }
    if emu.faults().batch_shuffle {
        responses.shuffle(&mut *lock(&emu.shared.rng));
    }
    Ok(Json(Reply { responses }).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_ids_too_many_requests_and_unknown_dependencies_are_rejected() {
        let dup = json!({"requests":[{"id":"1","method":"GET","url":"/me"},{"id":"1","method":"GET","url":"/me"}]});
        let parse =
            |v: Value| parse(v.to_string().as_bytes()).map(|_| ()).map_err(|e| e.body()["error"]["message"].clone());
        let message = |m: &str| Err(json!(m));
        assert_eq!(parse(dup), message("Batch request contains duplicate ids."));
        let many: Vec<Value> = (0..21).map(|i| json!({"id": i.to_string(), "method":"GET","url":"/me"})).collect();
        assert_eq!(
            parse(json!({"requests": many})),
            message("Number of batch request steps must be between 1 and 20.")
        );
        let unknown = json!({"requests":[{"id":"1","method":"GET","url":"/me","dependsOn":["9"]}]});
        assert_eq!(parse(unknown), message("dependsOn refers to an unknown request id."));
        let no_type = json!({"requests":[{"id":"1","method":"POST","url":"/me","body":{}}]});
        assert_eq!(parse(no_type), message("Write request id : 1 does not contain Content-Type header or body."));
        assert_eq!(parse(json!({"requests": "x"})), message("Invalid batch payload format."));
        assert_eq!(parse(json!([1, 2])), message("Invalid batch payload format."));
        assert_eq!(parse(json!({"requests": [7]})), message("Request id is required."));
    }

    #[test]
    fn inner_bodies_are_handed_on_as_written_and_a_null_body_is_none() {
        let body = r#"{"subject":"Möte","start":{"dateTime":"2026-12-07T10:00:00","timeZone":"Europe/Oslo"}}"#;
        let envelope = format!(
            r#"{{"requests":[{{"id":"1","method":"POST","url":"/users/a/events","body":{body},
                "headers":{{"Content-Type":"application/json"}}}},{{"id":"2","method":"GET","url":"/me","body":null}}]}}"#
        );
        let parsed = parse(envelope.as_bytes()).map_err(|e| e.body()).expect("a valid batch");
        assert_eq!(parsed[0].body.as_ref().map(|b| b.get()), Some(body));
        assert!(parsed[1].body.is_none());
    }
}
