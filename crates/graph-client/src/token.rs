//! The access-token cache: one per client, refreshed before expiry, fetched by one task at a time.
//!
//! Invariants: at most one token request is in flight (callers wait on the same async lock and then reuse the
//! fresh token: single-flight); a cached token is never used within `refresh_margin` of its expiry; the token and
//! the secret are never logged.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use crate::config::ClientConfig;
use crate::error::GraphError;

#[derive(Debug, Clone)]
struct Cached {
    token: String,
    refresh_at: Instant,
}

#[derive(Deserialize)]
struct TokenReply {
    access_token: String,
    expires_in: u64,
}

/// Client-credentials token cache.
#[derive(Debug)]
pub struct TokenCache {
    http: reqwest::Client,
    config: ClientConfig,
    cached: Mutex<Option<Cached>>,
}

impl TokenCache {
    /// A cache with nothing fetched yet.
    pub fn new(http: reqwest::Client, config: ClientConfig) -> Self {
        Self { http, config, cached: Mutex::new(None) }
    }

    /// A valid token, fetching one if needed.
    pub async fn token(&self) -> Result<String, GraphError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| Instant::now() < c.refresh_at) {
            return Ok(c.token.clone());
        }
        let fresh = self.fetch().await?;
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    /// Drops the cached token (after a 401) so the next call fetches a new one.
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    async fn fetch(&self) -> Result<Cached, GraphError> {
        let c = &self.config;
        let url = format!("{}/{}/oauth2/v2.0/token", c.authority, c.tenant_id);
        let form = [
            ("client_id", c.client_id.as_str()),
            ("client_secret", c.client_secret.expose()),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
        ];
        let response = self.http.post(&url).form(&form).send().await.map_err(GraphError::Network)?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(GraphError::Network)?;
        if !(200..300).contains(&status) {
            let error = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("error")?.as_str().map(str::to_string))
                .unwrap_or_else(|| "unknown".into());
            return Err(GraphError::Auth { status, error });
        }
        let reply: TokenReply =
            serde_json::from_slice(&bytes).map_err(|e| GraphError::Decode(format!("token reply: {e}")))?;
        let refresh_at =
            refresh_deadline(Instant::now(), Duration::from_secs(reply.expires_in), c.token_refresh_margin);
        tracing::debug!(expires_in = reply.expires_in, "fetched access token");
        Ok(Cached { token: reply.access_token, refresh_at })
    }
}

/// When a token fetched at `now` with `lifetime` must be replaced: `margin` before expiry, but never later than
/// half its life, so short-lived tokens are still refreshed ahead of expiry. A lifetime beyond a day (a corrupt
/// `expires_in`) is treated as a day.
fn refresh_deadline(now: Instant, lifetime: Duration, margin: Duration) -> Instant {
    let lifetime = lifetime.min(Duration::from_secs(86_400));
    now + (lifetime - margin.min(lifetime / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_refreshed_ahead_of_expiry() {
        let now = Instant::now();
        let hour = Duration::from_secs(3599);
        let margin = Duration::from_secs(300);
        assert_eq!(refresh_deadline(now, hour, margin), now + Duration::from_secs(3299));
        let short = Duration::from_secs(60);
        assert_eq!(refresh_deadline(now, short, margin), now + Duration::from_secs(30));
        assert_eq!(refresh_deadline(now, Duration::ZERO, margin), now);
        let absurd = refresh_deadline(now, Duration::from_secs(u64::MAX), margin);
        assert_eq!(absurd, now + Duration::from_secs(86_100));
    }
}
