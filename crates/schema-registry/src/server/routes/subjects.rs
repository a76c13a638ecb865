//! `/subjects`: registering schemas under subjects, reading versions back, looking schemas up, deleting.

use axum::extract::State;
use axum::response::Response;
use serde_json::json;

use super::{parse_version, SchemaRequest};
use crate::server::api_error::ApiError;
use crate::server::json::{Body, Flags, Params, Reply};
use crate::server::routes::schemas::raw_schema;
use crate::server::store::{Deletion, Registration, Store, SubjectVersion, VersionSpec};

/// `GET /subjects` -> the subjects with a live version (`?deleted=true`: with any version; `?subjectPrefix=p`:
/// only those starting with `p`, as Kafka UI asks).
pub async fn list(State(store): State<Store>, flags: Flags) -> Result<Reply<Vec<String>>, ApiError> {
    let mut subjects = store.subjects(flags.get("deleted")).await?;
    if let Some(prefix) = flags.value("subjectPrefix") {
        subjects.retain(|subject| subject.starts_with(prefix));
    }
    Ok(Reply(subjects))
}

/// `GET /subjects/{subject}/versions` -> `[1, 2, ...]`.
pub async fn versions(
    State(store): State<Store>,
    Params(subject): Params<String>,
    flags: Flags,
) -> Result<Reply<Vec<i32>>, ApiError> {
    let versions = store.versions(&subject, flags.get("deleted")).await?;
    if versions.is_empty() {
        return Err(ApiError::subject_not_found(&subject));
    }
    Ok(Reply(versions))
}

/// `POST /subjects/{subject}/versions` `{schema, schemaType?, references?}` -> `{"id"}`.
pub async fn register(
    State(store): State<Store>,
    Params(subject): Params<String>,
    Body(request): Body<SchemaRequest>,
) -> Result<Reply<serde_json::Value>, ApiError> {
    let (parsed, text) = request.parse()?;
    match store.register(&subject, &parsed, text).await? {
        Registration::Registered(id) => {
            tracing::info!(subject = %subject, id, "schema registered");
            Ok(Reply(json!({ "id": id })))
        }
        Registration::Incompatible(problems) => Err(ApiError::incompatible(&subject, &problems)),
    }
}

/// `POST /subjects/{subject}` `{schema}` -> the version of the subject with that schema.
pub async fn lookup(
    State(store): State<Store>,
    Params(subject): Params<String>,
    flags: Flags,
    Body(request): Body<SchemaRequest>,
) -> Result<Reply<SubjectVersion>, ApiError> {
    let (parsed, _) = request.parse()?;
    let deleted = flags.get("deleted");
    match store.lookup(&subject, &parsed, deleted).await? {
        Some(found) => Ok(Reply(found)),
        None if store.versions(&subject, deleted).await?.is_empty() => Err(ApiError::subject_not_found(&subject)),
        None => Err(ApiError::schema_not_found()),
    }
}

/// `GET /subjects/{subject}/versions/{version}` -> `{subject, id, version, schema}`.
pub async fn version(
    State(store): State<Store>,
    Params((subject, version)): Params<(String, String)>,
    flags: Flags,
) -> Result<Reply<SubjectVersion>, ApiError> {
    Ok(Reply(find_version(&store, &subject, &version, flags.get("deleted")).await?))
}

/// `GET /subjects/{subject}/versions/{version}/schema` -> the schema itself.
pub async fn version_schema(
    State(store): State<Store>,
    Params((subject, version)): Params<(String, String)>,
    flags: Flags,
) -> Result<Response, ApiError> {
    let found = find_version(&store, &subject, &version, flags.get("deleted")).await?;
    Ok(raw_schema(found.schema))
}

/// `GET /subjects/{subject}/versions/{version}/referencedby` -> `[]`: references are not supported, so nothing
/// refers to anything.
pub async fn referenced_by(
    State(store): State<Store>,
    Params((subject, version)): Params<(String, String)>,
) -> Result<Reply<Vec<i32>>, ApiError> {
    find_version(&store, &subject, &version, false).await?;
    Ok(Reply(Vec::new()))
}

/// `DELETE /subjects/{subject}` (`?permanent=true` after a soft delete) -> the versions deleted.
pub async fn delete_subject(
    State(store): State<Store>,
    Params(subject): Params<String>,
    flags: Flags,
) -> Result<Reply<Vec<i32>>, ApiError> {
    match store.delete_subject(&subject, flags.get("permanent")).await? {
        Deletion::Deleted(versions) => {
            tracing::info!(subject = %subject, ?versions, permanent = flags.get("permanent"), "subject deleted");
            Ok(Reply(versions))
        }
        Deletion::NotFound => Err(ApiError::subject_not_found(&subject)),
        Deletion::AlreadySoftDeleted => Err(ApiError::subject_soft_deleted(&subject)),
        Deletion::NotSoftDeletedFirst => Err(ApiError::subject_not_soft_deleted(&subject)),
    }
}

/// `DELETE /subjects/{subject}/versions/{version}` (`?permanent=true` after a soft delete) -> the version.
pub async fn delete_version(
    State(store): State<Store>,
    Params((subject, version)): Params<(String, String)>,
    flags: Flags,
) -> Result<Reply<i32>, ApiError> {
    let spec = parse_version(&version)?;
    match store.delete_version(&subject, spec, flags.get("permanent")).await? {
        Deletion::Deleted(versions) => match versions.first() {
            Some(number) => Ok(Reply(*number)),
            None => Err(ApiError::version_not_found(&version)),
        },
        Deletion::NotFound => Err(missing(&store, &subject, &version).await),
        Deletion::AlreadySoftDeleted => Err(ApiError::version_soft_deleted(&subject, &version)),
        Deletion::NotSoftDeletedFirst => Err(ApiError::version_not_soft_deleted(&subject, &version)),
    }
}

async fn find_version(store: &Store, subject: &str, version: &str, deleted: bool) -> Result<SubjectVersion, ApiError> {
    let spec: VersionSpec = parse_version(version)?;
    match store.version(subject, spec, deleted).await? {
        Some(found) => Ok(found),
        None => Err(missing(store, subject, version).await),
    }
}

/// 40401 if the subject has no live version at all, else 40402.
async fn missing(store: &Store, subject: &str, version: &str) -> ApiError {
    match store.versions(subject, false).await {
        Ok(versions) if versions.is_empty() => ApiError::subject_not_found(subject),
        Ok(_) => ApiError::version_not_found(version),
        Err(err) => err.into(),
    }
}
