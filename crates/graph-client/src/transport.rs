//! One Graph HTTP call with everything around it: token, headers, mailbox limiter, retries.
//!
//! ```text
//! call -> [per-mailbox permit] -> token cache -> HTTP (Prefer: IdType="ImmutableId") -> 2xx: done
//!                    ^                                                 | 401: refresh token once
//!                    +---- sleep Retry-After or jittered backoff <----- | 429/5xx/network: retry (max_attempts)
//! ```
//! Invariants: every request carries `Prefer: IdType="ImmutableId"` and a `client-request-id` (a random GUID,
//! kept across the request's retries, as Microsoft's SDKs do); the bearer token is only ever sent to the
//! configured Graph origin (links from responses are checked before they are followed); permits are released
//! while sleeping between attempts.

use reqwest::Method;
use serde_json::Value;
use url::Url;

use crate::config::ClientConfig;
use crate::error::GraphError;
use crate::limiter::MailboxLimiter;
use crate::paths::GraphPath;
use crate::retry::{parse_retry_after, wait_before_retry};
use crate::token::TokenCache;

/// A request to send.
#[derive(Debug, Clone)]
pub struct Call {
    /// HTTP method.
    pub method: Method,
    /// Absolute URL (must be on the Graph origin).
    pub url: String,
    /// Mailbox addressed, for the concurrency limiter.
    pub mailbox: Option<String>,
    /// Permits to take (a `$batch` runs up to 4 requests at once in the mailbox).
    pub permits: usize,
    /// Further mailboxes the call addresses, with the permits to take in each (a `$batch` across mailboxes).
    pub more_mailboxes: Vec<(String, usize)>,
    /// JSON body, serialised once (a call sent again sends the same bytes).
    pub body: Option<bytes::Bytes>,
    /// Extra `Prefer` values besides `IdType="ImmutableId"`.
    pub prefer: Vec<String>,
    /// `If-Match` value.
    pub if_match: Option<String>,
    /// `client-request-id`: names the request in Graph's logs; the same on every retry of this call.
    pub client_request_id: String,
    /// Whether sending it twice does no harm. A request that is not (a create, a `$batch` with creates) is sent
    /// again only after an answer that says it was not processed (429, 503); after one that leaves it open (a
    /// timeout, a lost connection, 500/502/504) the error goes back to the caller, who looks before it posts again.
    pub idempotent: bool,
}

impl Call {
    /// A call with no body, no extra preferences.
    pub fn new(method: Method, url: String, mailbox: Option<&str>) -> Self {
        let idempotent = method_is_idempotent(&method);
        Self {
            method,
            url,
            mailbox: mailbox.map(str::to_string),
            permits: 1,
            more_mailboxes: Vec::new(),
            body: None,
            prefer: Vec::new(),
            if_match: None,
            client_request_id: new_request_id(),
            idempotent,
        }
    }

    /// Adds a JSON body.
    pub fn json(self, body: Value) -> Self {
        self.json_of(&body)
    }

    /// Adds a JSON body written from `body` directly (no value tree in between).
    pub fn json_of(mut self, body: &impl serde::Serialize) -> Self {
        // Serialising a value of plain fields and JSON values cannot fail.
        self.body = serde_json::to_vec(body).ok().map(bytes::Bytes::from);
        self
    }
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Body bytes (empty for 204).
    pub body: bytes::Bytes,
}

impl Reply {
    /// Decodes the body.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, GraphError> {
        serde_json::from_slice(&self.body).map_err(|e| GraphError::Decode(e.to_string()))
    }
}

/// Sends calls.
#[derive(Debug)]
pub struct Transport {
    http: reqwest::Client,
    tokens: TokenCache,
    limiter: MailboxLimiter,
    config: ClientConfig,
    origin: String,
}

impl Transport {
    /// Builds the transport; fails on an unusable Graph base URL.
    pub fn new(config: ClientConfig) -> Result<Self, GraphError> {
        let origin = Url::parse(&config.graph_base)
            .map_err(|e| GraphError::InvalidRequest(format!("graph base url: {e}")))?
            .origin()
            .ascii_serialization();
        let http = reqwest::Client::builder().timeout(config.request_timeout).build().map_err(GraphError::Network)?;
        Ok(Self {
            tokens: TokenCache::new(http.clone(), config.clone()),
            limiter: MailboxLimiter::new(config.mailbox_concurrency),
            http,
            config,
            origin,
        })
    }

    /// The absolute URL of `path` under the configured Graph base (`.../v1.0`).
    pub fn url(&self, path: &GraphPath) -> String {
        path.under(&self.config.graph_base)
    }

    /// The configuration (retry limits are shared with `$batch` inner retries).
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Refuses URLs off the Graph origin, so a forged nextLink cannot collect our token.
    pub fn check_origin(&self, url: &str) -> Result<(), GraphError> {
        let parsed = Url::parse(url).map_err(|e| GraphError::InvalidRequest(format!("bad url: {e}")))?;
        if parsed.origin().ascii_serialization() != self.origin {
            return Err(GraphError::InvalidRequest("link points outside the Graph origin".into()));
        }
        Ok(())
    }

    /// Sends with retries.
    pub async fn send(&self, call: &Call) -> Result<Reply, GraphError> {
        self.check_origin(&call.url)?;
        let mut attempt = 0u32;
        let mut refreshed = false;
        loop {
            attempt += 1;
            let err = match self.attempt(call).await {
                Ok(reply) => return Ok(reply),
                Err(err) => err,
            };
            if matches!(err, GraphError::Api { status: 401, .. }) && !refreshed {
                // A revoked or expired token: fetch a new one once, without spending an attempt.
                refreshed = true;
                attempt -= 1;
                self.tokens.invalidate().await;
                continue;
            }
            let class = err.classify();
            if !class.is_retryable() || attempt >= self.config.max_attempts.max(1) {
                return Err(err);
            }
            if !call.idempotent && err.may_have_been_applied() {
                tracing::debug!(error = %err, client_request_id = %call.client_request_id,
                    "a non-idempotent request may have been applied: not sent again blindly");
                return Err(err);
            }
            let hint = match class {
                crate::ErrorClass::Transient { retry_after } | crate::ErrorClass::Throttled { retry_after } => {
                    retry_after
                }
                _ => None,
            };
            let wait = wait_before_retry(attempt, hint, self.config.base_backoff, self.config.max_backoff);
            ::metrics::counter!(crate::metrics::RETRIES, "reason" => crate::metrics::retry_reason(&class)).increment(1);
            tracing::debug!(attempt, wait_ms = wait.as_millis() as u64, error = %err,
                client_request_id = %call.client_request_id, "retrying graph request");
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(&self, call: &Call) -> Result<Reply, GraphError> {
        // Several mailboxes are locked in one order (by key), so two calls never wait for each other's permits.
        let mut wanted: Vec<(String, usize)> =
            call.mailbox.iter().map(|m| (m.to_ascii_lowercase(), call.permits)).collect();
        wanted.extend(call.more_mailboxes.iter().map(|(m, n)| (m.to_ascii_lowercase(), *n)));
        wanted.sort();
        wanted.dedup_by(|a, b| a.0 == b.0);
        let mut _permits = Vec::with_capacity(wanted.len());
        for (mailbox, n) in &wanted {
            _permits.push(self.limiter.acquire(mailbox, *n).await?);
        }
        let token = self.tokens.token().await?;
        let mut prefer = vec!["IdType=\"ImmutableId\"".to_string()];
        prefer.extend(call.prefer.iter().cloned());
        let mut request = self
            .http
            .request(call.method.clone(), &call.url)
            .bearer_auth(token)
            .header("Prefer", prefer.join(", "))
            .header("client-request-id", &call.client_request_id);
        if let Some(tag) = &call.if_match {
            request = request.header("If-Match", tag);
        }
        if let Some(body) = &call.body {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.clone());
        }
        let method = call.method.as_str().to_owned();
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => {
                ::metrics::counter!(crate::metrics::REQUESTS, "method" => method, "status" => "network").increment(1);
                return Err(GraphError::Network(err));
            }
        };
        let status = response.status().as_u16();
        ::metrics::counter!(crate::metrics::REQUESTS, "method" => method, "status" => status.to_string()).increment(1);
        if status == 429 {
            ::metrics::counter!(crate::metrics::THROTTLED).increment(1);
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
        let body = response.bytes().await.map_err(GraphError::Network)?;
        if (200..300).contains(&status) {
            Ok(Reply { body })
        } else {
            Err(GraphError::from_response(status, retry_after, &body))
        }
    }
}

/// GET, PUT, PATCH (roomsync sends full content) and DELETE can be sent twice; POST creates.
fn method_is_idempotent(method: &Method) -> bool {
    *method != Method::POST
}

/// A new `client-request-id`: a random (version 4) GUID.
pub(crate) fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_off_the_graph_origin_are_refused_so_the_token_never_leaves() {
        let config = ClientConfig::new("t", "c", crate::Secret::new("s"))
            .with_base_urls("http://login.test", "https://graph.test/v1.0");
        let transport = Transport::new(config).expect("transport");
        assert!(transport.check_origin("https://graph.test/v1.0/users/x/events?$skip=10").is_ok());
        for bad in [
            "https://evil.test/v1.0/users",
            "http://graph.test/v1.0/users",
            "https://graph.test:8443/v1.0",
            "not a url",
        ] {
            assert!(transport.check_origin(bad).is_err(), "{bad}");
        }
    }
}
