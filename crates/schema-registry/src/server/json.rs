//! The registry's JSON in and out: request bodies are read as JSON whatever their Content-Type (Confluent's
//! clients send `application/vnd.schemaregistry.v1+json`, curl users often send none or a form type), replies
//! carry the registry media type. Extractors here never answer with anything but the registry's error JSON.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header::CONTENT_TYPE as CONTENT_TYPE_HEADER;
use axum::http::request::Parts;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::api_error::ApiError;
use crate::client::CONTENT_TYPE;

/// A JSON reply in the registry media type.
#[derive(Debug)]
pub struct Reply<T>(pub T);

impl<T: Serialize> IntoResponse for Reply<T> {
    fn into_response(self) -> Response {
        let mut response = axum::Json(self.0).into_response();
        response.headers_mut().insert(CONTENT_TYPE_HEADER, HeaderValue::from_static(CONTENT_TYPE));
        response
    }
}

/// A JSON request body, whatever its Content-Type.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|err| ApiError::bad_request(format!("Cannot read the request body: {err}")))?;
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|err| ApiError::bad_request(format!("The request body is not the JSON expected: {err}")))
    }
}

/// Path parameters, percent-decoded; a path that does not decode is a 404 in the registry's JSON.
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state).await.map(|Path(value)| Params(value)).map_err(|err| {
            tracing::debug!(error = %err, "undecodable path");
            ApiError::no_route()
        })
    }
}

/// The query string: boolean flags (`deleted`, `permanent`, `defaultToGlobal`, `verbose`) and `subjectPrefix`;
/// anything else in it (`normalize`, `fetchMaxId`, `subject`...) is accepted and ignored.
#[derive(Debug, Default)]
pub struct Flags(HashMap<String, String>);

impl Flags {
    /// The value of `name`, if given.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Whether `name=true` was given.
    pub fn get(&self, name: &str) -> bool {
        self.0.get(name).is_some_and(|value| value.eq_ignore_ascii_case("true"))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Flags {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|Query(map)| Flags(map))
            .map_err(|err| ApiError::bad_request(format!("Cannot read the query string: {err}")))
    }
}
