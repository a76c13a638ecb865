//! Absolute links (`@odata.nextLink`, `@odata.deltaLink`) pointing back at this emulator.
//!
//! Invariant: links are built from the request's own `Host`, so a client that follows them verbatim reaches the
//! same emulator whatever address it was bound to.

use axum::http::HeaderMap;

/// `http://{host}` of the current request (`localhost` when absent).
pub fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)))
        .unwrap_or("localhost");
    format!("http://{host}")
}
