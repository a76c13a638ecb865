//! The client's error type and the one function that decides what to do about an error.
//!
//! Invariant: every error maps to exactly one [`ErrorClass`]; retry loops and callers (graph-sink, graph-source)
//! decide only on that class, never on raw status codes.

use std::time::Duration;

/// What to do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Try again after a backoff (or the server's `Retry-After`).
    Transient {
        /// Server's wait hint.
        retry_after: Option<Duration>,
    },
    /// Throttled (429): wait at least `retry_after`, then try again.
    Throttled {
        /// Server's wait hint.
        retry_after: Option<Duration>,
    },
    /// Will fail again: park with the reason.
    Definite,
    /// The item does not exist (404).
    NotFound,
    /// The change key did not match (412): re-read and retry.
    Conflict,
    /// The delta token is gone (410): restart with a full round.
    SyncStateGone,
}

impl ErrorClass {
    /// Whether the request may simply be sent again.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Transient { .. } | Self::Throttled { .. })
    }
}

/// Errors from Graph or from reaching it.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// Graph answered with an error status.
    #[error("graph returned {status} {code}: {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Graph error code (`ErrorItemNotFound`, `TooManyRequests`, ...).
        code: String,
        /// Graph's message.
        message: String,
        /// Parsed `Retry-After`.
        retry_after: Option<Duration>,
        /// `innerError.request-id`, for support cases.
        request_id: Option<String>,
    },
    /// The token endpoint refused us.
    #[error("token request failed with {status}: {error}")]
    Auth {
        /// HTTP status.
        status: u16,
        /// OAuth error code (`invalid_client`, ...).
        error: String,
    },
    /// The request never got an answer (connect, timeout, reset).
    #[error("network error: {0}")]
    Network(#[source] reqwest::Error),
    /// The answer was not what the API promises.
    #[error("unexpected response from graph: {0}")]
    Decode(String),
    /// The caller asked for something the client refuses to send.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl GraphError {
    /// Maps this error to what to do about it.
    pub fn classify(&self) -> ErrorClass {
        match self {
            Self::Api { status, code, retry_after, .. } => match status {
                429 => ErrorClass::Throttled { retry_after: *retry_after },
                404 => ErrorClass::NotFound,
                409 | 412 => ErrorClass::Conflict,
                410 => ErrorClass::SyncStateGone,
                400 if code == "SyncStateNotFound" || code == "resyncRequired" => ErrorClass::SyncStateGone,
                408 | 500 | 502 | 503 | 504 => ErrorClass::Transient { retry_after: *retry_after },
                _ => ErrorClass::Definite,
            },
            Self::Auth { status, .. } if *status == 429 || *status >= 500 => {
                ErrorClass::Transient { retry_after: None }
            }
            Self::Network(_) => ErrorClass::Transient { retry_after: None },
            Self::Auth { .. } | Self::Decode(_) | Self::InvalidRequest(_) => ErrorClass::Definite,
        }
    }

    /// Whether the request may have been carried out although it failed: the connection broke after the request
    /// went out (not a refused connection), or Graph answered 500, 502 or 504. A 429 or 503 says it was not
    /// processed.
    pub fn may_have_been_applied(&self) -> bool {
        match self {
            Self::Api { status, .. } => matches!(status, 500 | 502 | 504),
            Self::Network(err) => !err.is_connect(),
            _ => false,
        }
    }

    /// The Graph error code, if Graph sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Builds an [`GraphError::Api`] from a status, headers' Retry-After and a body that may or may not be Graph's
    /// error shape (never fails: unknown bodies give code `UnknownError`).
    pub fn from_response(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Self {
        let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let error = parsed.as_ref().and_then(|v| v.get("error"));
        let text = |k: &str| error.and_then(|e| e.get(k)).and_then(|v| v.as_str()).map(str::to_string);
        let request_id = error
            .and_then(|e| e.get("innerError"))
            .and_then(|i| i.get("request-id"))
            .and_then(|v| v.as_str())
            .map(str::to_string);
        Self::Api {
            status,
            code: text("code").unwrap_or_else(|| "UnknownError".into()),
            message: text("message").unwrap_or_default(),
            retry_after,
            request_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_the_documented_classes() {
        let class = |status: u16, code: &str| {
            GraphError::Api { status, code: code.into(), message: String::new(), retry_after: None, request_id: None }
                .classify()
        };
        assert_eq!(class(429, "ApplicationThrottled"), ErrorClass::Throttled { retry_after: None });
        assert_eq!(class(503, "serviceNotAvailable"), ErrorClass::Transient { retry_after: None });
        assert_eq!(class(404, "ErrorItemNotFound"), ErrorClass::NotFound);
        assert_eq!(class(412, "ErrorIrresolvableConflict"), ErrorClass::Conflict);
        assert_eq!(class(410, "SyncStateNotFound"), ErrorClass::SyncStateGone);
        assert_eq!(class(400, "ErrorInvalidRequest"), ErrorClass::Definite);
        assert_eq!(class(403, "ErrorAccessDenied"), ErrorClass::Definite);
    }

    #[test]
    fn a_non_graph_error_body_still_gives_an_error() {
        let e = GraphError::from_response(502, None, b"<html>bad gateway</html>");
        assert_eq!(e.code(), Some("UnknownError"));
        let e = GraphError::from_response(
            404,
            None,
            br#"{"error":{"code":"ErrorItemNotFound","message":"x","innerError":{"request-id":"r"}}}"#,
        );
        assert_eq!(e.code(), Some("ErrorItemNotFound"));
    }
}
