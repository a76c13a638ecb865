//! The admin HTTP API: health and readiness, status, room mappings, conflicts, Prometheus metrics, and the
//! OpenAPI document describing it (`/openapi.json`).
//!
//! ```text
//!  /health/live, /health/ready, /metrics, /openapi.json   open (probes and scrapers)
//!  /api/...                                               bearer token (constant-time compare)
//! ```
//!
//! The API refuses to start without a token unless `[admin] auth_disabled = true` (local use). The webhook
//! receiver of the Graph source is a separate listener and needs no admin token.

mod auth;
mod probe;
mod routes;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_postgres::Client;

use crate::secret::Secret;

/// What the handlers need.
pub struct AdminState {
    /// The booking database.
    pub database: Client,
    /// The CDC slot name, for status.
    pub slot: String,
    /// Renders the metrics registry, when one is installed.
    pub metrics: Option<PrometheusHandle>,
    /// The Graph client, for room discovery.
    pub graph: Option<graph_client::GraphClient>,
    /// Kafka, for the readiness probe (not probed when `None`).
    pub kafka: Option<streams::KafkaSettings>,
    /// The schema registry's base URL, for the readiness probe (not probed when `None`).
    pub registry_url: Option<String>,
    /// Reconciliation settings, for `POST /api/reconcile` (503 when `None`).
    pub reconcile: Option<reconcile::Config>,
    /// The tables the CDC reader captures (what a backfill may name).
    pub captured_tables: Vec<String>,
    /// The schema of the captured tables, which holds the signal table backfills are requested in.
    pub captured_schema: String,
}

/// The API's router; `token` `None` means auth is disabled.
pub fn router(state: AdminState, token: Option<Secret>) -> Router {
    routes::router(Arc::new(state), token.map(Arc::new))
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: AdminState,
    token: Option<Secret>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state, token)).with_graceful_shutdown(shutdown).await
}
