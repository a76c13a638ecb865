//! The admin API's routes. Handlers are thin: the queries live in [`crate::ops`], shared with the CLI.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{middleware, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{auth, AdminState};
use crate::ops::backfill::{Backfill, BackfillError};
use crate::ops::room_mappings::MappingError;
use crate::ops::{backfill, conflicts, room_mappings, status};
use crate::secret::Secret;

type Shared = Arc<AdminState>;

/// The OpenAPI document of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

pub fn router(state: Shared, token: Option<Arc<Secret>>) -> Router {
    let api = Router::new()
        .route("/api/status", get(get_status))
        .route("/api/mappings", get(list_items))
        .route("/api/resource-mappings", get(list_room_mappings))
        .route("/api/resource-mappings/{resource_id}", put(put_room_mapping).delete(disable_room_mapping))
        .route("/api/conflicts", get(list_conflicts))
        .route("/api/conflicts/{id}/resolve", post(resolve_conflict))
        .route("/api/rooms", get(discover_rooms))
        .route("/api/reconcile", post(run_reconcile))
        .route("/api/mappings/retry", post(retry_parked))
        .route("/api/backfill", post(request_backfill))
        .route("/api/backfill/{id}", get(get_backfill))
        .route_layer(middleware::from_fn_with_state(token, auth::require_token));
    Router::new()
        .route("/health/live", get(|| async { Json(json!({ "status": "live" })) }))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }))
        .merge(api)
        .with_state(state)
}

/// An API error as JSON.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.0.canonical_reason().unwrap_or("error").to_lowercase().replace(' ', "_");
        (self.0, Json(json!({ "error": code, "message": self.1 }))).into_response()
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(err: tokio_postgres::Error) -> Self {
        tracing::warn!(error = %err, "admin api database error");
        ApiError(StatusCode::SERVICE_UNAVAILABLE, format!("database: {err}"))
    }
}

impl From<BackfillError> for ApiError {
    fn from(err: BackfillError) -> Self {
        let status = match err {
            BackfillError::NotCaptured { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            BackfillError::UnknownResource(_) | BackfillError::Unknown(_) => StatusCode::NOT_FOUND,
            BackfillError::Database(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError(status, err.to_string())
    }
}

impl From<MappingError> for ApiError {
    fn from(err: MappingError) -> Self {
        let status = match err {
            MappingError::UnknownResource(_) | MappingError::NotMapped(_) => StatusCode::NOT_FOUND,
            MappingError::BadMailbox(_) => StatusCode::UNPROCESSABLE_ENTITY,
            MappingError::Database(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError(status, err.to_string())
    }
}

async fn ready(State(state): State<Shared>) -> Response {
    let mut checks = serde_json::Map::new();
    let database = match state.database.query_one("select 1", &[]).await {
        Ok(_) => "ok".to_owned(),
        Err(err) => format!("error: {err}"),
    };
    checks.insert("database".into(), database.into());
    if let Some(url) = &state.registry_url {
        checks.insert("schema_registry".into(), super::probe::registry(url).await.into());
    }
    if let Some(kafka) = &state.kafka {
        checks.insert("kafka".into(), super::probe::kafka(kafka).await.into());
    }
    // What the stage instances say of their own progress: a stalled one makes the pipeline not ready, a
    // degraded one (a transaction applied incomplete a moment ago) is reported without failing the probe.
    let mut ready = checks.values().all(|v| v == "ok");
    let mut degraded = false;
    let stages = status::stage_health(&state.database).await.unwrap_or_default();
    for stage in stages.iter().filter(|s| !s.gone) {
        let detail = stage.detail.as_deref().unwrap_or_default();
        let check = match stage.state.as_str() {
            "stalled" => {
                ready = false;
                format!("stalled: {detail}")
            }
            "degraded" => {
                degraded = true;
                format!("degraded: {detail}")
            }
            _ => "ok".to_owned(),
        };
        checks.insert(format!("{} {}", stage.stage, stage.instance), check.into());
    }
    let code = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let word = match (ready, degraded) {
        (false, _) => "not_ready",
        (true, true) => "degraded",
        (true, false) => "ready",
    };
    let body = json!({ "status": word, "checks": checks });
    (code, Json(body)).into_response()
}

async fn metrics(State(state): State<Shared>) -> Response {
    let body = state.metrics.as_ref().map(|handle| handle.render()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

async fn get_status(State(state): State<Shared>) -> Result<Json<status::Status>, ApiError> {
    Ok(Json(status::read(&state.database, &state.slot).await?))
}

#[derive(Deserialize)]
struct ItemFilter {
    status: Option<String>,
    limit: Option<i64>,
}

#[derive(Serialize)]
struct Item {
    mailbox: String,
    item_key: String,
    reservation_type: String,
    reservation_id: i32,
    outlook_event_id: Option<String>,
    sync_status: String,
    error_message: Option<String>,
    last_sync_at: Option<chrono::DateTime<chrono::Utc>>,
}

async fn list_items(
    State(state): State<Shared>,
    Query(filter): Query<ItemFilter>,
) -> Result<Json<Vec<Item>>, ApiError> {
    let limit = filter.limit.unwrap_or(100).clamp(1, 1000);
    let rows = state
        .database
        .query(
            "select outlook_item_id, item_key, reservation_type, reservation_id, outlook_event_id, sync_status,
                    error_message, last_sync_at
             from outlook_calendar_mapping where $1::text is null or sync_status = $1
             order by updated_at desc limit $2",
            &[&filter.status, &limit],
        )
        .await?;
    Ok(Json(
        rows.iter()
            .map(|row| Item {
                mailbox: row.get(0),
                item_key: row.get(1),
                reservation_type: row.get(2),
                reservation_id: row.get(3),
                outlook_event_id: row.get(4),
                sync_status: row.get(5),
                error_message: row.get(6),
                last_sync_at: row.get(7),
            })
            .collect(),
    ))
}

async fn list_room_mappings(State(state): State<Shared>) -> Result<Json<Vec<room_mappings::RoomMapping>>, ApiError> {
    Ok(Json(room_mappings::list(&state.database).await?))
}

#[derive(Deserialize)]
struct MappingBody {
    mailbox: String,
    name: Option<String>,
}

async fn put_room_mapping(
    State(state): State<Shared>,
    Path(resource_id): Path<i32>,
    Json(body): Json<MappingBody>,
) -> Result<Json<room_mappings::RoomMapping>, ApiError> {
    Ok(Json(room_mappings::upsert(&state.database, resource_id, &body.mailbox, body.name.as_deref()).await?))
}

async fn disable_room_mapping(
    State(state): State<Shared>,
    Path(resource_id): Path<i32>,
) -> Result<Json<room_mappings::RoomMapping>, ApiError> {
    Ok(Json(room_mappings::set_active(&state.database, resource_id, false).await?))
}

#[derive(Deserialize)]
struct ConflictFilter {
    #[serde(default)]
    all: bool,
}

async fn list_conflicts(
    State(state): State<Shared>,
    Query(filter): Query<ConflictFilter>,
) -> Result<Json<Vec<conflicts::Conflict>>, ApiError> {
    Ok(Json(conflicts::list(&state.database, filter.all).await?))
}

#[derive(Deserialize)]
struct ResolveBody {
    note: String,
}

async fn resolve_conflict(
    State(state): State<Shared>,
    Path(id): Path<i64>,
    Json(body): Json<ResolveBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if conflicts::resolve(&state.database, id, &body.note).await? {
        Ok(Json(json!({ "id": id, "status": "resolved" })))
    } else {
        Err(ApiError(StatusCode::NOT_FOUND, format!("no unresolved conflict {id}")))
    }
}

async fn discover_rooms(State(state): State<Shared>) -> Result<Json<Vec<graph_client::Room>>, ApiError> {
    let Some(graph) = &state.graph else {
        return Err(ApiError(StatusCode::SERVICE_UNAVAILABLE, "no Graph client configured".into()));
    };
    graph.list_rooms().await.map(Json).map_err(|err| ApiError(StatusCode::BAD_GATEWAY, format!("graph: {err}")))
}

#[derive(Deserialize, Default)]
struct ReconcileBody {
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    rooms: Vec<String>,
}

#[derive(Deserialize, Default)]
struct BackfillBody {
    #[serde(default)]
    tables: Vec<String>,
    #[serde(default)]
    resources: Vec<i32>,
}

async fn request_backfill(
    State(state): State<Shared>,
    body: Option<Json<BackfillBody>>,
) -> Result<(StatusCode, Json<Backfill>), ApiError> {
    let Json(body) = body.unwrap_or_default();
    let request = backfill::request(
        &state.database,
        &state.captured_schema,
        &state.captured_tables,
        &body.tables,
        &body.resources,
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(request)))
}

async fn get_backfill(State(state): State<Shared>, Path(id): Path<i64>) -> Result<Json<Backfill>, ApiError> {
    Ok(Json(backfill::get(&state.database, id).await?))
}

#[derive(Deserialize, Default)]
struct RetryBody {
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    rooms: Vec<String>,
    #[serde(default)]
    items: Vec<String>,
}

async fn retry_parked(
    State(state): State<Shared>,
    body: Option<Json<RetryBody>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Some(settings) = &state.reconcile else {
        return Err(ApiError(StatusCode::SERVICE_UNAVAILABLE, "reconciliation is not configured".into()));
    };
    let Json(body) = body.unwrap_or_default();
    let options = reconcile::RetryOptions { rooms: body.rooms, items: body.items, dry_run: body.dry_run };
    let report = reconcile::retry_parked(settings, &options)
        .await
        .map_err(|err| ApiError(StatusCode::BAD_GATEWAY, format!("retry: {err}")))?;
    let items: Vec<serde_json::Value> = report
        .items
        .iter()
        .map(|i| {
            json!({
                "mailbox": i.mailbox,
                "item_key": i.item_key,
                "status": i.status,
                "error": i.error,
                "outcome": i.outcome.as_ref().map(ToString::to_string),
            })
        })
        .collect();
    Ok(Json(json!({ "dry_run": report.dry_run, "retried": report.retried(), "items": items })))
}

async fn run_reconcile(
    State(state): State<Shared>,
    body: Option<Json<ReconcileBody>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Some(settings) = &state.reconcile else {
        return Err(ApiError(StatusCode::SERVICE_UNAVAILABLE, "reconciliation is not configured".into()));
    };
    let Json(body) = body.unwrap_or_default();
    let options = reconcile::Options { dry_run: body.dry_run, rooms: body.rooms };
    let report = reconcile::reconcile(settings, &options)
        .await
        .map_err(|err| ApiError(StatusCode::BAD_GATEWAY, format!("reconcile: {err}")))?;
    Ok(Json(json!({
        "dry_run": report.dry_run,
        "clean": report.is_clean(),
        "drift": report.drift.len(),
        "repairs": report.repairs.len(),
        "failed_rooms": report.failed_rooms.len(),
        "report": report.to_string(),
    })))
}
