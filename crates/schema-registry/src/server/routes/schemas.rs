//! `/schemas`: schemas by global id, and the schema types served.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::server::api_error::ApiError;
use crate::server::json::{Flags, Params, Reply};
use crate::server::store::Store;

/// `GET /schemas/types`.
pub async fn types() -> Reply<[&'static str; 1]> {
    Reply(["AVRO"])
}

/// `GET /schemas/ids/{id}` -> `{"schema": ...}`.
pub async fn by_id(State(store): State<Store>, Params(id): Params<String>) -> Result<Response, ApiError> {
    let text = schema_text(&store, &id).await?;
    Ok(Reply(json!({ "schema": text })).into_response())
}

/// `GET /schemas/ids/{id}/schema` -> the schema itself.
pub async fn raw_by_id(State(store): State<Store>, Params(id): Params<String>) -> Result<Response, ApiError> {
    let text = schema_text(&store, &id).await?;
    Ok(raw_schema(text))
}

/// `GET /schemas/ids/{id}/subjects` -> the subjects using the schema.
pub async fn subjects_of_id(
    State(store): State<Store>,
    Params(id): Params<String>,
    flags: Flags,
) -> Result<Reply<Vec<String>>, ApiError> {
    let number = existing_id(&store, &id).await?;
    let mut subjects: Vec<String> =
        store.usages_of_id(number, flags.get("deleted")).await?.into_iter().map(|(subject, _)| subject).collect();
    subjects.dedup();
    Ok(Reply(subjects))
}

/// `GET /schemas/ids/{id}/versions` -> `[{"subject", "version"}]` using the schema.
pub async fn versions_of_id(
    State(store): State<Store>,
    Params(id): Params<String>,
    flags: Flags,
) -> Result<Reply<Vec<serde_json::Value>>, ApiError> {
    let number = existing_id(&store, &id).await?;
    let usages = store.usages_of_id(number, flags.get("deleted")).await?;
    Ok(Reply(usages.into_iter().map(|(subject, version)| json!({ "subject": subject, "version": version })).collect()))
}

/// The schema text as the raw-schema endpoints send it: the JSON text itself, in the registry media type.
pub fn raw_schema(text: String) -> Response {
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static(crate::client::CONTENT_TYPE));
    response
}

async fn schema_text(store: &Store, id: &str) -> Result<String, ApiError> {
    let number = id.parse::<i32>().map_err(|_| ApiError::schema_id_not_found(id))?;
    store.schema_by_id(number).await?.ok_or_else(|| ApiError::schema_id_not_found(id))
}

async fn existing_id(store: &Store, id: &str) -> Result<i32, ApiError> {
    let number = id.parse::<i32>().map_err(|_| ApiError::schema_id_not_found(id))?;
    match store.schema_by_id(number).await? {
        Some(_) => Ok(number),
        None => Err(ApiError::schema_id_not_found(id)),
    }
}
