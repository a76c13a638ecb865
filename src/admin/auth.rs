//! Bearer-token check for `/api/...`: the presented token is compared in constant time, so response timing
//! tells an attacker nothing about how much of a guess was right.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use subtle::ConstantTimeEq;

use crate::secret::Secret;

/// Lets the request through when it carries `Authorization: Bearer <token>` (or when auth is disabled).
pub async fn require_token(State(token): State<Option<Arc<Secret>>>, request: Request, next: Next) -> Response {
    let Some(token) = token else { return next.run(request).await };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match presented {
        Some(presented) if bool::from(presented.as_bytes().ct_eq(token.expose().as_bytes())) => next.run(request).await,
        Some(_) => unauthorized("the bearer token is not valid"),
        None => unauthorized("this endpoint needs an Authorization: Bearer <token> header"),
    }
}

fn unauthorized(message: &str) -> Response {
    let body = Json(serde_json::json!({ "error": "unauthorized", "message": message }));
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], body).into_response()
}
