//! A client for the subset of the Confluent Schema Registry REST API that producers and consumers use:
//! register a schema under a subject (idempotent: the same schema gets the same id) and fetch a schema by id.
//! Works against Confluent's registry, Karapace, Apicurio's ccompat API and our own server.

use serde::Deserialize;
use serde_json::json;
use thiserror::Error;

/// The registry's media type, sent as Accept and Content-Type.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// What went wrong talking to the registry.
#[derive(Debug, Error)]
pub enum RegistryError {
    /// The registry could not be reached or the connection broke: worth retrying.
    #[error("schema registry at {url} is unreachable: {source}")]
    Unreachable {
        /// The URL requested.
        url: String,
        /// The transport error.
        source: reqwest::Error,
    },
    /// The registry answered with an error.
    #[error("schema registry answered {status} (error_code {error_code}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Confluent error code, e.g. 40403 schema not found, 42201 invalid schema.
        error_code: i64,
        /// The registry's message.
        message: String,
    },
    /// The registry's answer was not what the API promises.
    #[error("schema registry gave an unreadable answer: {0}")]
    BadResponse(String),
}

impl RegistryError {
    /// Whether retrying the same request later may succeed (transport errors and 5xx answers).
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Unreachable { .. } => true,
            RegistryError::Api { status, .. } => *status >= 500,
            RegistryError::BadResponse(_) => false,
        }
    }
}

/// A schema-registry client; cheap to clone.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    base: String,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct IdReply {
    id: u32,
}

#[derive(Deserialize)]
struct SchemaReply {
    schema: String,
}

#[derive(Deserialize)]
struct ErrorReply {
    error_code: i64,
    message: String,
}

impl RegistryClient {
    /// A client for the registry at `base_url` (e.g. `http://127.0.0.1:8081`).
    pub fn new(base_url: &str) -> Self {
        RegistryClient { base: base_url.trim_end_matches('/').to_owned(), http: reqwest::Client::new() }
    }

    /// The registry's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Registers `schema` (Avro JSON) under `subject`; returns its global id. Registering a schema the subject
    /// already has returns the existing id.
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let url = format!("{}/subjects/{}/versions", self.base, encode_segment(subject));
        let body = json!({ "schema": schema, "schemaType": "AVRO" });
        let request = self.http.post(&url).header("content-type", CONTENT_TYPE).json(&body);
        let reply: IdReply = self.send(&url, request).await?;
        Ok(reply.id)
    }

    /// The schema (Avro JSON) with global id `id`.
    pub async fn schema_by_id(&self, id: u32) -> Result<String, RegistryError> {
        let url = format!("{}/schemas/ids/{id}", self.base);
        let reply: SchemaReply = self.send(&url, self.http.get(&url)).await?;
        Ok(reply.schema)
    }

    async fn send<T: for<'de> Deserialize<'de>>(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, RegistryError> {
        let unreachable = |source| RegistryError::Unreachable { url: url.to_owned(), source };
        let response = request.header("accept", CONTENT_TYPE).send().await.map_err(unreachable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unreachable)?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|err| RegistryError::BadResponse(err.to_string()));
        }
        let (error_code, message) = match serde_json::from_slice::<ErrorReply>(&bytes) {
            Ok(reply) => (reply.error_code, reply.message),
            Err(_) => (i64::from(status.as_u16()), String::from_utf8_lossy(&bytes).into_owned()),
        };
        Err(RegistryError::Api { status: status.as_u16(), error_code, message })
    }
}

/// Percent-encodes a path segment (subjects are topic names, but a registry accepts any string).
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_percent_encoded_in_paths() {
        assert_eq!(encode_segment("roomsync.graph.events-value"), "roomsync.graph.events-value");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn only_transport_and_server_errors_are_transient() {
        let api = |status| RegistryError::Api { status, error_code: 0, message: String::new() };
        assert!(api(503).is_transient());
        assert!(!api(422).is_transient());
        assert!(!RegistryError::BadResponse("x".into()).is_transient());
    }
}
