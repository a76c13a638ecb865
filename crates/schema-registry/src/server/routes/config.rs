//! `/config` and `/mode`: the global and per-subject compatibility levels; the mode is always READWRITE.

use axum::extract::State;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::server::api_error::ApiError;
use crate::server::compatibility::Level;
use crate::server::json::{Body, Flags, Params, Reply};
use crate::server::store::Store;

/// The body of `PUT /config`.
#[derive(Debug, Deserialize)]
pub struct ConfigRequest {
    compatibility: Option<String>,
}

impl ConfigRequest {
    fn level(&self) -> Result<Level, ApiError> {
        let name = self.compatibility.as_deref().unwrap_or_default();
        name.parse().map_err(|err: crate::server::compatibility::UnknownLevel| ApiError::invalid_level(err.to_string()))
    }
}

/// `GET /config` -> `{"compatibilityLevel"}`.
pub async fn get_global(State(store): State<Store>) -> Result<Reply<Value>, ApiError> {
    let level = store.config(None).await?.unwrap_or_default();
    Ok(Reply(json!({ "compatibilityLevel": level.to_string() })))
}

/// `PUT /config` `{"compatibility"}` -> `{"compatibility"}`.
pub async fn put_global(
    State(store): State<Store>,
    Body(request): Body<ConfigRequest>,
) -> Result<Reply<Value>, ApiError> {
    let level = request.level()?;
    store.set_config(None, level).await?;
    tracing::info!(level = %level, "global compatibility set");
    Ok(Reply(json!({ "compatibility": level.to_string() })))
}

/// `DELETE /config` -> the level it was; the global level falls back to BACKWARD.
pub async fn delete_global(State(store): State<Store>) -> Result<Reply<Value>, ApiError> {
    let level = store.delete_config(None).await?.unwrap_or_default();
    Ok(Reply(json!({ "compatibilityLevel": level.to_string() })))
}

/// `GET /config/{subject}` (`?defaultToGlobal=true` falls back to the global level) -> `{"compatibilityLevel"}`.
pub async fn get_subject(
    State(store): State<Store>,
    Params(subject): Params<String>,
    flags: Flags,
) -> Result<Reply<Value>, ApiError> {
    let level = match store.config(Some(&subject)).await? {
        Some(level) => level,
        None if flags.get("defaultToGlobal") => store.effective_level(&subject).await?,
        None => return Err(ApiError::subject_config_not_found(&subject)),
    };
    Ok(Reply(json!({ "compatibilityLevel": level.to_string() })))
}

/// `PUT /config/{subject}` `{"compatibility"}` -> `{"compatibility"}`.
pub async fn put_subject(
    State(store): State<Store>,
    Params(subject): Params<String>,
    Body(request): Body<ConfigRequest>,
) -> Result<Reply<Value>, ApiError> {
    let level = request.level()?;
    store.set_config(Some(&subject), level).await?;
    tracing::info!(subject = %subject, level = %level, "subject compatibility set");
    Ok(Reply(json!({ "compatibility": level.to_string() })))
}

/// `DELETE /config/{subject}` -> the level it was.
pub async fn delete_subject(
    State(store): State<Store>,
    Params(subject): Params<String>,
) -> Result<Reply<Value>, ApiError> {
    match store.delete_config(Some(&subject)).await? {
        Some(level) => Ok(Reply(json!({ "compatibilityLevel": level.to_string() }))),
        None => Err(ApiError::subject_config_not_found(&subject)),
    }
}

/// `GET /mode` and `GET /mode/{subject}` -> `{"mode": "READWRITE"}`: this registry has no other mode.
pub async fn mode() -> Reply<Value> {
    Reply(json!({ "mode": "READWRITE" }))
}
