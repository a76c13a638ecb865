//! Correlation ids: the `request-id` Graph stamps on every answer and the `client-request-id` it echoes.
//!
//! ```text
//! request (client-request-id?) -> gate: RequestIds { request-id: new GUID, client-request-id: echoed or new }
//!   -> scoped around the handler -> ApiError bodies read them (innerError) -> gate stamps both headers
//! ```
//! Invariant: within one answer the headers and an error body's `innerError` carry the same two ids, so a client
//! that logs either finds the other (Graph's support asks for both). Inner `$batch` requests get their own.

use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;

tokio::task_local! {
    static CURRENT: RequestIds;
}

/// The two ids of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestIds {
    /// Made up by the service for every request.
    pub request_id: String,
    /// The client's `client-request-id` when it sent a usable one, else a new GUID (Graph does the same).
    pub client_request_id: String,
}

impl RequestIds {
    /// Fresh ids for a request with `headers`.
    pub fn for_request(headers: &HeaderMap) -> Self {
        let request_id = uuid::Uuid::new_v4().to_string();
        let client_request_id = headers
            .get("client-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string);
        Self { request_id, client_request_id }
    }

    /// The ids of the request being handled on this task, if it passed the gate.
    pub fn current() -> Option<Self> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// Runs `fut` with these ids as the current ones.
    pub async fn scope<F: std::future::Future>(self, fut: F) -> F::Output {
        CURRENT.scope(self, fut).await
    }

    /// Sets `request-id` and `client-request-id` on `response`.
    pub fn stamp(&self, response: &mut Response) {
        for (name, value) in [("request-id", &self.request_id), ("client-request-id", &self.client_request_id)] {
            if let Ok(v) = HeaderValue::from_str(value) {
                response.headers_mut().insert(name, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sent_client_request_id_is_kept_and_a_missing_or_unusable_one_is_replaced() {
        let mut headers = HeaderMap::new();
        assert!(uuid::Uuid::parse_str(&RequestIds::for_request(&headers).client_request_id).is_ok());
        headers.insert("client-request-id", HeaderValue::from_static("abc-123"));
        let ids = RequestIds::for_request(&headers);
        assert_eq!(ids.client_request_id, "abc-123");
        assert_ne!(ids.request_id, ids.client_request_id);
        headers.insert("client-request-id", HeaderValue::from_static("  "));
        assert!(uuid::Uuid::parse_str(&RequestIds::for_request(&headers).client_request_id).is_ok());
    }
}
