//! `/compatibility`: would a schema pass the subject's compatibility level against a version (or, without a
//! version, against what a registration would check)?

use axum::extract::State;
use serde_json::{json, Value};

use super::{parse_version, SchemaRequest};
use crate::server::api_error::ApiError;
use crate::server::json::{Body, Flags, Params, Reply};
use crate::server::store::{Store, VersionSpec};

/// `POST /compatibility/subjects/{subject}/versions/{version}` -> `{"is_compatible"}` (`?verbose=true` adds
/// `messages`).
pub async fn against_version(
    State(store): State<Store>,
    Params((subject, version)): Params<(String, String)>,
    flags: Flags,
    Body(request): Body<SchemaRequest>,
) -> Result<Reply<Value>, ApiError> {
    let spec = parse_version(&version)?;
    check(&store, &subject, Some((spec, &version)), &flags, &request).await
}

/// `POST /compatibility/subjects/{subject}/versions` -> `{"is_compatible"}`, against what registration checks.
pub async fn against_subject(
    State(store): State<Store>,
    Params(subject): Params<String>,
    flags: Flags,
    Body(request): Body<SchemaRequest>,
) -> Result<Reply<Value>, ApiError> {
    check(&store, &subject, None, &flags, &request).await
}

async fn check(
    store: &Store,
    subject: &str,
    version: Option<(VersionSpec, &str)>,
    flags: &Flags,
    request: &SchemaRequest,
) -> Result<Reply<Value>, ApiError> {
    let (parsed, _) = request.parse()?;
    let (level, targets) = store.compatibility_targets(subject, version.map(|(spec, _)| spec)).await?;
    if targets.is_empty() {
        if let Some((_, segment)) = version {
            return Err(if store.versions(subject, false).await?.is_empty() {
                ApiError::subject_not_found(subject)
            } else {
                ApiError::version_not_found(segment)
            });
        }
    }
    let problems = level.problems(&parsed.schema, &targets);
    let mut reply = json!({ "is_compatible": problems.is_empty() });
    if flags.get("verbose") {
        reply["messages"] = json!(problems);
    }
    Ok(Reply(reply))
}
