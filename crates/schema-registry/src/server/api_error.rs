//! Errors as the registry's clients expect them: an HTTP status and `{"error_code": int, "message": str}`, with
//! Confluent's error codes, so Confluent serialisers, Kafka UI and [`RegistryClient`](crate::RegistryClient) can
//! tell "schema not found" from "subject not found" from "invalid schema".

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::json::Reply;
use super::store::StoreError;

/// An error answer of the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Confluent's error code (e.g. 40403).
    pub code: u32,
    /// A human-readable message.
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into() }
    }

    /// 404 / 40401.
    pub fn subject_not_found(subject: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, 40401, format!("Subject '{subject}' not found."))
    }

    /// 404 / 40402.
    pub fn version_not_found(version: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, 40402, format!("Version {version} not found."))
    }

    /// 404 / 40403, for an id.
    pub fn schema_id_not_found(id: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, 40403, format!("Schema {id} not found"))
    }

    /// 404 / 40403, for a lookup by content.
    pub fn schema_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, 40403, "Schema not found")
    }

    /// 404 / 40404: a soft delete of a subject already soft-deleted.
    pub fn subject_soft_deleted(subject: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40404,
            format!("Subject '{subject}' was soft deleted. Set permanent=true to delete permanently"),
        )
    }

    /// 404 / 40405: a permanent delete of a live subject.
    pub fn subject_not_soft_deleted(subject: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40405,
            format!("Subject '{subject}' was not deleted first before being permanently deleted"),
        )
    }

    /// 404 / 40406: a soft delete of a version already soft-deleted.
    pub fn version_soft_deleted(subject: &str, version: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40406,
            format!("Subject '{subject}' Version {version} was soft deleted. Set permanent=true to delete permanently"),
        )
    }

    /// 404 / 40407: a permanent delete of a live version.
    pub fn version_not_soft_deleted(subject: &str, version: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40407,
            format!("Subject '{subject}' Version {version} was not deleted first before being permanently deleted"),
        )
    }

    /// 404 / 40408.
    pub fn subject_config_not_found(subject: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            40408,
            format!("Subject '{subject}' does not have subject-level compatibility configured"),
        )
    }

    /// 409 / 409: the compatibility level rejects the schema.
    pub fn incompatible(subject: &str, problems: &[String]) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            409,
            format!(
                "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]",
                problems.join("; ")
            ),
        )
    }

    /// 422 / 42201.
    pub fn invalid_schema(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, 42201, message)
    }

    /// 422 / 42202.
    pub fn invalid_version(version: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            42202,
            format!(
                "The specified version '{version}' is not a valid version id. \
                 Allowed values are between [1, 2^31-1] and the string \"latest\""
            ),
        )
    }

    /// 422 / 42203.
    pub fn invalid_level(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, 42203, message)
    }

    /// 400 / 400: a body that is not the JSON the endpoint takes.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, 400, message)
    }

    /// 404 / 404: no such endpoint.
    pub fn no_route() -> Self {
        Self::new(StatusCode::NOT_FOUND, 404, "HTTP 404 Not Found")
    }

    /// 405 / 405: the endpoint does not take this method.
    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, 405, "HTTP 405 Method Not Allowed")
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        // The detail goes to the operator's log, not to the client.
        tracing::error!(error = %err, "registry store failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, 50001, "Error in the backend data store")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error_code": self.code, "message": self.message });
        (self.status, Reply(body)).into_response()
    }
}
