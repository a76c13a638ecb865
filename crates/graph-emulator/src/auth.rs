//! Client-credentials tokens: the token endpoint and the bearer check on `/v1.0`.
//!
//! Invariant: only tokens this instance issued, and not yet expired or revoked, pass the bearer check; the token
//! endpoint never echoes the secret and answers Entra ID's error shape for bad credentials.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde_json::json;

use crate::state::{lock, Emulator};

/// POST /{tenant}/oauth2/v2.0/token
pub async fn token(
    State(emu): State<Emulator>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let config = &emu.shared.config;
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let oauth_error = |status: StatusCode, error: &str, description: &str| {
        (status, Json(json!({"error": error, "error_description": description}))).into_response()
    };
    if tenant != config.tenant_id {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_tenant", "AADSTS90002: Tenant not found.");
    }
    if field("grant_type") != "client_credentials" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "AADSTS70003: grant_type not supported.",
        );
    }
    if field("scope") != "https://graph.microsoft.com/.default" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "AADSTS1002012: The provided value for scope is not valid.",
        );
    }
    if field("client_id") != config.client_id || field("client_secret") != config.client_secret {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided.",
        );
    }
    let token = format!("eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.{}", uuid::Uuid::new_v4().simple());
    let lifetime = config.token_lifetime_secs;
    emu.shared.tokens_issued.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    lock(&emu.shared.tokens).insert(token.clone(), Instant::now() + Duration::from_secs(lifetime));
    Json(json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": token,
    }))
    .into_response()
}

/// Whether the request carries a live bearer token issued here.
pub fn is_authorized(emu: &Emulator, headers: &HeaderMap) -> bool {
    let Some(token) =
        headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    lock(&emu.shared.tokens).get(token.trim()).is_some_and(|expiry| *expiry > Instant::now())
}
