//! JSON `$batch`: many requests in few round trips, chunked by 20, answers mapped back by id.
//!
//! Invariants: answers come back in request order whatever order Graph used; every request gets exactly one
//! answer or the whole call fails; inner failures (429, 404, 424, ...) are surfaced per item, never hidden; a
//! `dependsOn` must stay inside its chunk (Graph cannot express cross-batch dependencies), else we refuse up front;
//! retryable inner failures are resent (with what they depend on) until they succeed or attempts run out.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::error::{ErrorClass, GraphError};
use crate::retry::{parse_retry_after, wait_before_retry};
use crate::transport::Call;
use crate::GraphClient;

/// Graph's limit per batch.
pub const MAX_BATCH: usize = 20;

/// One inner request.
#[derive(Debug, Clone)]
pub struct BatchRequest {
    /// Unique id within the call.
    pub id: String,
    /// Method.
    pub method: Method,
    /// URL relative to the version root, from [`crate::paths`] (e.g. `paths::events(mailbox)`).
    pub url: String,
    /// JSON body.
    pub body: Option<Value>,
    /// Ids that must succeed first (same chunk).
    pub depends_on: Vec<String>,
    /// The inner request's `client-request-id`, the same when it is sent again in a later batch.
    pub client_request_id: String,
}

impl BatchRequest {
    /// A request without body or dependencies.
    pub fn new(id: impl Into<String>, method: Method, url: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            method,
            url: url.into(),
            body: None,
            depends_on: Vec::new(),
            client_request_id: crate::transport::new_request_id(),
        }
    }

    /// One GET per id of `mailbox` with roomsync's properties expanded ([`crate::properties::ROOMSYNC_PROPERTIES`]),
    /// each named by its position in `ids`: how the graph source and reconcile read the items they need in full.
    pub fn tagged_gets(mailbox: &str, ids: &[String]) -> Vec<BatchRequest> {
        ids.iter()
            .enumerate()
            .map(|(n, id)| {
                let path = crate::paths::event(mailbox, id).expand_properties(&crate::properties::ROOMSYNC_PROPERTIES);
                BatchRequest::new(n.to_string(), Method::GET, path)
            })
            .collect()
    }
}

/// One inner answer.
#[derive(Debug, Clone, Deserialize)]
pub struct BatchResponse {
    /// Request id.
    pub id: String,
    /// HTTP status.
    pub status: u16,
    /// Headers (`Retry-After`, ...).
    #[serde(default)]
    pub headers: HashMap<String, String>,
    /// Body as Graph wrote it (`None` when empty or null): decoded only by [`json`](Self::json), so an answered
    /// event is never built as a value tree first.
    #[serde(default)]
    pub body: Option<Box<RawValue>>,
}

impl BatchResponse {
    /// The inner error, if the inner request failed; classify it like any other error.
    pub fn error(&self) -> Option<GraphError> {
        if (200..300).contains(&self.status) {
            return None;
        }
        let retry_after: Option<Duration> = self
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
            .and_then(|(_, v)| parse_retry_after(v, chrono::Utc::now()));
        let body = self.body.as_ref().map_or("null", |b| b.get());
        Some(GraphError::from_response(self.status, retry_after, body.as_bytes()))
    }

    /// Decodes a successful body.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, GraphError> {
        if let Some(e) = self.error() {
            return Err(e);
        }
        serde_json::from_str(self.body.as_ref().map_or("null", |b| b.get()))
            .map_err(|e| GraphError::Decode(e.to_string()))
    }
}

/// The `$batch` envelope, written from the requests as they are (their bodies are not copied).
#[derive(Serialize)]
struct Envelope<'a> {
    requests: Vec<Outgoing<'a>>,
}

/// One inner request as sent.
#[derive(Serialize)]
struct Outgoing<'a> {
    id: &'a str,
    method: &'a str,
    url: &'a str,
    headers: InnerHeaders<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a Value>,
    #[serde(rename = "dependsOn", skip_serializing_if = "<[String]>::is_empty")]
    depends_on: &'a [String],
}

#[derive(Serialize)]
struct InnerHeaders<'a> {
    #[serde(rename = "Prefer")]
    prefer: &'a str,
    #[serde(rename = "client-request-id")]
    client_request_id: &'a str,
    #[serde(rename = "Content-Type", skip_serializing_if = "Option::is_none")]
    content_type: Option<&'a str>,
}

impl<'a> Outgoing<'a> {
    fn of(r: &'a BatchRequest) -> Self {
        Self {
            id: &r.id,
            method: r.method.as_str(),
            url: &r.url,
            headers: InnerHeaders {
                prefer: "IdType=\"ImmutableId\"",
                client_request_id: &r.client_request_id,
                content_type: r.body.as_ref().map(|_| "application/json"),
            },
            body: r.body.as_ref(),
            depends_on: &r.depends_on,
        }
    }
}

#[derive(Deserialize)]
struct BatchReply {
    responses: Vec<BatchResponse>,
}

fn unique_ids<'a>(requests: impl IntoIterator<Item = &'a BatchRequest>) -> Result<(), GraphError> {
    let mut seen = HashSet::new();
    match requests.into_iter().find(|r| !seen.insert(r.id.as_str())) {
        Some(dup) => Err(GraphError::InvalidRequest(format!("duplicate batch id {}", dup.id))),
        None => Ok(()),
    }
}

/// Graph cannot express a dependency on a request of another call.
fn dependencies_inside(chunk: &[BatchRequest]) -> Result<(), GraphError> {
    let ids: HashSet<&str> = chunk.iter().map(|r| r.id.as_str()).collect();
    match chunk.iter().find(|r| r.depends_on.iter().any(|d| !ids.contains(d.as_str()))) {
        Some(r) => Err(GraphError::InvalidRequest(format!("batch id {} depends on a request outside its chunk", r.id))),
        None => Ok(()),
    }
}

fn chunk(requests: Vec<BatchRequest>) -> Result<Vec<Vec<BatchRequest>>, GraphError> {
    unique_ids(&requests)?;
    let chunks: Vec<Vec<BatchRequest>> = requests.chunks(MAX_BATCH).map(<[BatchRequest]>::to_vec).collect();
    for c in &chunks {
        dependencies_inside(c)?;
    }
    Ok(chunks)
}

/// The mailboxes a `$batch` call addresses, with the permits it takes in each.
type Permits = Vec<(String, usize)>;

/// Takes the answer to request `id` out of `answers`.
fn answer_of(answers: &mut HashMap<String, BatchResponse>, id: &str) -> Result<BatchResponse, GraphError> {
    answers.remove(id).ok_or_else(|| GraphError::Decode(format!("batch answer for id {id} missing")))
}

/// Counts one inner answer of a `$batch`.
fn count_item(method: &str, status: u16) {
    ::metrics::counter!(crate::metrics::BATCH_ITEMS, "method" => method.to_owned(), "status" => status.to_string())
        .increment(1);
    if status == 429 {
        ::metrics::counter!(crate::metrics::THROTTLED).increment(1);
    }
}

/// The requests to send again: retryable failures, plus 424s whose dependencies all either succeeded or are
/// being sent again (their `dependsOn` then keeps only the latter, since Graph rejects unknown ids).
fn retry_set(pending: &[BatchRequest], answers: &HashMap<String, BatchResponse>) -> Vec<BatchRequest> {
    let succeeded = |id: &str| answers.get(id).is_some_and(|a| (200..300).contains(&a.status));
    // A create whose answer leaves open whether it was carried out (500/502/504) goes back to the caller, who
    // looks before posting again; everything else retryable is sent again here.
    let resend = |r: &BatchRequest, e: &GraphError| {
        e.classify().is_retryable() && !(r.method == Method::POST && e.may_have_been_applied())
    };
    let mut again: HashSet<String> = pending
        .iter()
        .filter(|r| answers.get(&r.id).and_then(BatchResponse::error).is_some_and(|e| resend(r, &e)))
        .map(|r| r.id.clone())
        .collect();
    loop {
        let blocked: Vec<String> = pending
            .iter()
            .filter(|r| !again.contains(&r.id) && answers.get(&r.id).is_some_and(|a| a.status == 424))
            .filter(|r| r.depends_on.iter().all(|d| again.contains(d) || succeeded(d)))
            .map(|r| r.id.clone())
            .collect();
        if blocked.is_empty() {
            break;
        }
        again.extend(blocked);
    }
    pending
        .iter()
        .filter(|r| again.contains(&r.id))
        .map(|r| {
            let mut r = r.clone();
            r.depends_on.retain(|d| again.contains(d));
            r
        })
        .collect()
}

impl GraphClient {
    /// Sends `requests` (all for `mailbox`) in `$batch` calls of at most 20, one after another (each runs up to 4
    /// requests at once in the mailbox, its whole allowance); answers in request order.
    ///
    /// Inner requests that fail retryably (429, 503, ...) are sent again in a smaller batch after the largest
    /// `Retry-After` among them, up to `max_attempts`; what still fails is returned as that item's answer. A
    /// create (POST) whose answer leaves open whether it was carried out (500, 502, 504; for the whole call also
    /// a broken connection) is never sent again here: Graph de-duplicates a repeated `transactionId` only for a
    /// while, so the caller looks the item up before it posts again.
    pub async fn batch(&self, mailbox: &str, requests: Vec<BatchRequest>) -> Result<Vec<BatchResponse>, GraphError> {
        let mut ordered = Vec::new();
        for chunk in chunk(requests)? {
            let permits = [(mailbox.to_owned(), chunk.len())];
            let mut answers = self.run_chunk(&permits, &chunk).await?;
            for r in &chunk {
                ordered.push(answer_of(&mut answers, &r.id)?);
            }
        }
        Ok(ordered)
    }

    /// Sends requests addressed to several mailboxes (`(mailbox, request)`, ids unique over all) in as few
    /// `$batch` calls as fit, sent at the same time; answers in request order, with the same retries as
    /// [`GraphClient::batch`]. A mailbox's requests stay in one call, so they must be at most 20; each call
    /// holds that many of each of its mailboxes' permits (at most the per-mailbox limit).
    pub async fn batch_across(&self, requests: Vec<(String, BatchRequest)>) -> Result<Vec<BatchResponse>, GraphError> {
        unique_ids(requests.iter().map(|(_, r)| r))?;
        let order: Vec<String> = requests.iter().map(|(_, r)| r.id.clone()).collect();
        let mut groups: Vec<(String, Vec<BatchRequest>)> = Vec::new();
        for (mailbox, request) in requests {
            match groups.iter_mut().find(|(m, _)| m.eq_ignore_ascii_case(&mailbox)) {
                Some((_, group)) => group.push(request),
                None => groups.push((mailbox, vec![request])),
            }
        }
        let mut calls: Vec<(Permits, Vec<BatchRequest>)> = Vec::new();
        for (mailbox, group) in groups {
            if group.len() > MAX_BATCH {
                return Err(GraphError::InvalidRequest(format!(
                    "{} requests for mailbox {mailbox} do not fit one batch",
                    group.len()
                )));
            }
            match calls.last_mut() {
                Some((permits, chunk)) if chunk.len() + group.len() <= MAX_BATCH => {
                    permits.push((mailbox, group.len()));
                    chunk.extend(group);
                }
                _ => calls.push((vec![(mailbox, group.len())], group)),
            }
        }
        for (_, chunk) in &calls {
            dependencies_inside(chunk)?;
        }
        let mut answers = HashMap::new();
        let replies =
            futures::future::join_all(calls.iter().map(|(permits, chunk)| self.run_chunk(permits, chunk))).await;
        for reply in replies {
            answers.extend(reply?);
        }
        order.iter().map(|id| answer_of(&mut answers, id)).collect()
    }

    /// One `$batch` call and its retries: the answers by id.
    async fn run_chunk(
        &self,
        permits: &[(String, usize)],
        chunk: &[BatchRequest],
    ) -> Result<HashMap<String, BatchResponse>, GraphError> {
        let config = self.transport.config();
        let mut answers: HashMap<String, BatchResponse> = HashMap::new();
        let mut pending = chunk.to_vec();
        for attempt in 1..=config.max_attempts.max(1) {
            let mut reply = self.send_chunk(permits, &pending).await?;
            for r in &pending {
                let answer = answer_of(&mut reply, &r.id)?;
                count_item(r.method.as_str(), answer.status);
                answers.insert(r.id.clone(), answer);
            }
            let again = retry_set(&pending, &answers);
            if again.is_empty() || attempt == config.max_attempts {
                break;
            }
            let hint = again
                .iter()
                .filter_map(|r| answers.get(&r.id)?.error())
                .filter_map(|e| match e.classify() {
                    ErrorClass::Throttled { retry_after } | ErrorClass::Transient { retry_after } => retry_after,
                    _ => None,
                })
                .max();
            let wait = wait_before_retry(attempt, hint, config.base_backoff, config.max_backoff);
            for r in &again {
                if let Some(error) = answers.get(&r.id).and_then(BatchResponse::error) {
                    let reason = crate::metrics::retry_reason(&error.classify());
                    ::metrics::counter!(crate::metrics::RETRIES, "reason" => reason).increment(1);
                }
            }
            tracing::debug!(retrying = again.len(), wait_ms = wait.as_millis() as u64, "retrying batch items");
            tokio::time::sleep(wait).await;
            pending = again;
        }
        Ok(answers)
    }

    async fn send_chunk(
        &self,
        permits: &[(String, usize)],
        chunk: &[BatchRequest],
    ) -> Result<HashMap<String, BatchResponse>, GraphError> {
        let requests: Vec<Outgoing<'_>> = chunk.iter().map(Outgoing::of).collect();
        let url = self.transport.url(&crate::paths::batch());
        let (first, more) =
            permits.split_first().ok_or_else(|| GraphError::InvalidRequest("a batch needs a mailbox".into()))?;
        let mut call = Call::new(Method::POST, url, Some(&first.0)).json_of(&Envelope { requests });
        // The envelope is a POST; sending it again is harmless unless it carries creates.
        call.idempotent = chunk.iter().all(|r| r.method != Method::POST);
        // Outlook runs up to 4 inner requests at once: the batch occupies that many of each mailbox's slots.
        call.permits = first.1;
        call.more_mailboxes = more.to_vec();
        let reply: BatchReply = self.transport.send(&call).await?.json()?;
        Ok(reply.responses.into_iter().map(|r| (r.id.clone(), r)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_gets_escape_ids_and_ask_for_all_four_properties() {
        let gets = BatchRequest::tagged_gets("room@example.org", &["AAMk/x+y=".to_owned(), "b".to_owned()]);
        assert_eq!(gets.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["0", "1"]);
        let first = gets.first().map(|r| r.url.as_str()).unwrap_or_default();
        assert!(first.starts_with("/users/room@example.org/events/AAMk%2Fx%2By%3D?$expand="), "{first}");
        assert_eq!(first.matches("id%20eq%20").count(), 4);
    }

    #[test]
    fn requests_are_chunked_by_twenty_and_cross_chunk_dependencies_are_refused() {
        let reqs: Vec<BatchRequest> = (0..25).map(|i| BatchRequest::new(i.to_string(), Method::GET, "/x")).collect();
        let chunks = chunk(reqs.clone()).expect("valid");
        assert_eq!(chunks.iter().map(Vec::len).collect::<Vec<_>>(), vec![20, 5]);
        let mut bad = reqs;
        if let Some(last) = bad.last_mut() {
            last.depends_on = vec!["0".into()];
        }
        assert!(chunk(bad).is_err());
        let dup = vec![BatchRequest::new("a", Method::GET, "/x"), BatchRequest::new("a", Method::GET, "/x")];
        assert!(chunk(dup).is_err());
    }

    fn answer(id: &str, status: u16) -> BatchResponse {
        BatchResponse { id: id.into(), status, headers: HashMap::new(), body: None }
    }

    #[test]
    fn throttled_items_are_resent_with_the_dependents_they_blocked() {
        let a = BatchRequest::new("a", Method::POST, "/x");
        let mut b = BatchRequest::new("b", Method::POST, "/x");
        b.depends_on = vec!["a".into()];
        let c = BatchRequest::new("c", Method::GET, "/x");
        let mut d = BatchRequest::new("d", Method::GET, "/x");
        d.depends_on = vec!["c".into()];
        let e = BatchRequest::new("e", Method::GET, "/missing");
        let answers: HashMap<String, BatchResponse> =
            [answer("a", 429), answer("b", 424), answer("c", 201), answer("d", 503), answer("e", 404)]
                .into_iter()
                .map(|r| (r.id.clone(), r))
                .collect();
        let again = retry_set(&[a, b, c, d, e], &answers);
        let ids: Vec<(&str, Vec<String>)> = again.iter().map(|r| (r.id.as_str(), r.depends_on.clone())).collect();
        assert_eq!(ids, vec![("a", vec![]), ("b", vec!["a".to_string()]), ("d", vec![])]);
    }
}
