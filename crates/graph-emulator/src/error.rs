//! Errors of the emulator, in two layers.
//!
//! - [`ApiError`] is what a Graph client sees: an HTTP status plus the Graph error body
//!   `{"error":{"code","message","innerError":{"request-id","date"}}}`. Every failing endpoint answers with it,
//!   so clients can be tested against the exact shape the real service uses.
//! - [`EmulatorError`] is for the operator of the emulator itself (config, bind, serve).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::correlation::RequestIds;

/// A Graph-shaped error response.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Graph error code, e.g. `ErrorItemNotFound`.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// `Retry-After` header value in seconds (may be fractional), when the error is retryable.
    pub retry_after: Option<String>,
}

impl ApiError {
    /// Builds an error with no `Retry-After`.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self { status, code: code.to_string(), message: message.into(), retry_after: None }
    }

    /// Adds a `Retry-After` header value.
    pub fn with_retry_after(mut self, seconds: impl Into<String>) -> Self {
        self.retry_after = Some(seconds.into());
        self
    }

    /// 400 with Graph's generic code for malformed requests.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ErrorInvalidRequest", message)
    }

    /// 404 for an unknown event.
    pub fn item_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "ErrorItemNotFound", "The specified object was not found in the store.")
    }

    /// 404 for an unknown user or mailbox.
    pub fn user_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "ErrorInvalidUser", "The requested user is invalid.")
    }

    /// 401 for a missing or invalid bearer token.
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", "Access token is empty or invalid.")
    }

    /// The JSON body Graph sends with this error; `innerError` carries the ids of the request being answered
    /// (fresh ones outside a request, e.g. in unit tests).
    pub fn body(&self) -> serde_json::Value {
        let ids = RequestIds::current().unwrap_or_else(|| RequestIds::for_request(&axum::http::HeaderMap::new()));
        json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {
                    "date": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
                    "request-id": ids.request_id,
                    "client-request-id": ids.client_request_id,
                }
            }
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(value) = self.retry_after.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            response.headers_mut().insert("retry-after", value);
        }
        response
    }
}

/// Errors starting or running the emulator.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The tenant config file could not be read.
    #[error("cannot read config {path}: {source}")]
    ReadConfig {
        /// Path given.
        path: String,
        /// Underlying IO error.
        source: std::io::Error,
    },
    /// The tenant config file is not valid TOML for [`crate::config::TenantConfig`].
    #[error("invalid config: {0}")]
    ParseConfig(#[from] toml::de::Error),
    /// The config is syntactically valid but inconsistent.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// Serving failed.
    #[error("server error: {0}")]
    Serve(#[from] std::io::Error),
}
