//! A Confluent-compatible schema registry (Avro only) persisted in PostgreSQL, for the local stack and the tests.
//! Production uses Confluent's registry; this one keeps to its REST API, JSON shapes and error codes so that
//! [`RegistryClient`](crate::RegistryClient), Confluent's serialisers and Kafka UI work against either.
//!
//! ```text
//!  HTTP --axum router--> routes::{subjects, schemas, config, compatibility} --> Store --> PostgreSQL
//!                              |                                                 (schema_registry.*)
//!                              +-- avro (parse, identity), compatibility (levels, schema resolution)
//! ```
//!
//! Invariant: every answer is either the documented JSON or `{"error_code", "message"}` with Confluent's code;
//! all state lives in the database, so servers can restart or run side by side on one database.

mod api_error;
mod avro;
mod compatibility;
mod json;
mod routes;
mod store;

use std::future::Future;

use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

pub use api_error::ApiError;
pub use avro::{InvalidSchema, ParsedSchema};
pub use compatibility::Level;
pub use store::{Deletion, Registration, Store, StoreConfig, StoreError, SubjectVersion, VersionSpec};

use json::Reply;
use routes::{compatibility as compat, config, schemas, subjects};

/// Why the server stopped other than by shutdown.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Accepting connections failed.
    #[error("schema registry server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves the registry on `listener` until `shutdown` resolves, then finishes the requests in flight.
pub async fn serve(
    listener: TcpListener,
    store: Store,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "schema registry listening");
    }
    axum::serve(listener, router(store)).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

/// The registry's routes over `store`.
pub fn router(store: Store) -> Router {
    Router::new()
        .route("/", get(|| async { Reply(serde_json::json!({})) }))
        .route("/schemas/types", get(schemas::types))
        .route("/schemas/ids/{id}", get(schemas::by_id))
        .route("/schemas/ids/{id}/schema", get(schemas::raw_by_id))
        .route("/schemas/ids/{id}/subjects", get(schemas::subjects_of_id))
        .route("/schemas/ids/{id}/versions", get(schemas::versions_of_id))
        .route("/subjects", get(subjects::list))
        .route("/subjects/{subject}", post(subjects::lookup).delete(subjects::delete_subject))
        .route("/subjects/{subject}/versions", get(subjects::versions).post(subjects::register))
        .route("/subjects/{subject}/versions/{version}", get(subjects::version).delete(subjects::delete_version))
        .route("/subjects/{subject}/versions/{version}/schema", get(subjects::version_schema))
        .route("/subjects/{subject}/versions/{version}/referencedby", get(subjects::referenced_by))
        .route("/config", get(config::get_global).put(config::put_global).delete(config::delete_global))
        .route("/config/{subject}", get(config::get_subject).put(config::put_subject).delete(config::delete_subject))
        .route("/mode", get(config::mode))
        .route("/mode/{subject}", get(config::mode))
        .route("/compatibility/subjects/{subject}/versions", post(compat::against_subject))
        .route("/compatibility/subjects/{subject}/versions/{version}", post(compat::against_version))
        .fallback(|| async { ApiError::no_route() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .with_state(store)
}
