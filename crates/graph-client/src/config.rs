//! Client configuration and the secret wrapper.
//!
//! Invariant: the client secret never appears in `Debug` or `Display` output, so a config logged by mistake
//! leaks nothing.

use std::fmt;
use std::time::Duration;

/// A secret string (client secret, password, token) that never prints: `Debug` and `Display` show
/// `[redacted]`, so it cannot end up in a log line or an error message by accident. The one secret type of
/// the workspace (the root package re-exports it for its admin token and database password).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Everything the client needs to reach Graph.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Entra ID authority, e.g. `https://login.microsoftonline.com` (tests: the emulator's base URL).
    pub authority: String,
    /// Directory (tenant) id.
    pub tenant_id: String,
    /// Application (client) id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: Secret,
    /// Graph base including the version, e.g. `https://graph.microsoft.com/v1.0`.
    pub graph_base: String,
    /// Attempts per request including the first (>= 1).
    pub max_attempts: u32,
    /// First backoff step when the server gives no Retry-After.
    pub base_backoff: Duration,
    /// Largest backoff step (and largest Retry-After honoured).
    pub max_backoff: Duration,
    /// Requests in flight per mailbox (Outlook allows 4).
    pub mailbox_concurrency: usize,
    /// Timeout of one HTTP attempt.
    pub request_timeout: Duration,
    /// A token is refreshed this long before it expires.
    pub token_refresh_margin: Duration,
}

impl ClientConfig {
    /// Config for the public cloud with default limits.
    pub fn new(tenant_id: impl Into<String>, client_id: impl Into<String>, client_secret: Secret) -> Self {
        Self {
            authority: "https://login.microsoftonline.com".into(),
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            client_secret,
            graph_base: "https://graph.microsoft.com/v1.0".into(),
            max_attempts: 6,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(60),
            mailbox_concurrency: 4,
            request_timeout: Duration::from_secs(60),
            token_refresh_margin: Duration::from_secs(300),
        }
    }

    /// Points the client at another authority and Graph base (the emulator in tests).
    pub fn with_base_urls(mut self, authority: impl Into<String>, graph_base: impl Into<String>) -> Self {
        self.authority = authority.into().trim_end_matches('/').to_string();
        self.graph_base = graph_base.into().trim_end_matches('/').to_string();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_secret_never_prints() {
        let config = ClientConfig::new("t", "c", Secret::new("hunter2"));
        let shown = format!("{config:?} {}", config.client_secret);
        assert!(!shown.contains("hunter2"));
        assert_eq!(config.client_secret.expose(), "hunter2");
    }
}
