//! Change-notification subscriptions: create (with the validation handshake), renew, delete, and delivery of
//! notifications and lifecycle events.
//!
//! Invariants: a subscription exists only after its notification URL (and lifecycle URL, if any) echoed the
//! validation token; expiry never exceeds [`MAX_LIFETIME_MINUTES`]; delivery is fire-and-forget on a spawned task,
//! so a slow webhook never delays the write that triggered it (as with Graph); each delivery task ends on its own
//! after its last retry (each attempt times out after 10 s), so nothing outlives the emulator for long.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::event::opaque;
use crate::state::{lock, Emulator};
use crate::time::format_instant;

/// Outlook event subscriptions live at most this long.
pub const MAX_LIFETIME_MINUTES: i64 = 10_080;

/// A change kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    /// Event created.
    Created,
    /// Event updated.
    Updated,
    /// Event deleted.
    Deleted,
}

impl ChangeType {
    fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
        }
    }
}

/// One subscription.
#[derive(Debug, Clone)]
pub struct Subscription {
    id: String,
    mailbox: String,
    resource: String,
    change_type: String,
    notification_url: String,
    lifecycle_url: Option<String>,
    client_state: Option<String>,
    expiration: DateTime<Utc>,
}

impl Subscription {
    fn render(&self) -> Value {
        json!({
            "id": self.id,
            "resource": self.resource,
            "changeType": self.change_type,
            "notificationUrl": self.notification_url,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "clientState": self.client_state,
            "expirationDateTime": format_instant(self.expiration),
        })
    }
}

/// Outlook allows this many subscriptions per mailbox (across apps).
pub const MAX_PER_MAILBOX: usize = 1_000;

/// All subscriptions by id, plus notifications held back for out-of-order delivery.
#[derive(Debug, Default)]
pub struct SubscriptionStore {
    by_id: HashMap<String, Subscription>,
    held: Vec<(String, Value)>,
}

fn bad(msg: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "InvalidRequest", msg.to_string())
}

fn expiration(body: &Value) -> Result<DateTime<Utc>, ApiError> {
    let text =
        body.get("expirationDateTime").and_then(Value::as_str).ok_or_else(|| bad("expirationDateTime is required."))?;
    let at =
        DateTime::parse_from_rfc3339(text).map_err(|_| bad("expirationDateTime is malformed."))?.with_timezone(&Utc);
    let now = Utc::now();
    if at <= now || at > now + chrono::Duration::minutes(MAX_LIFETIME_MINUTES) {
        return Err(bad("Subscription expiration can only be 10080 minutes in the future."));
    }
    Ok(at)
}

async fn validate_url(url: &str) -> Result<(), ApiError> {
    let token = opaque("Validation: Testing client application reachability for subscription Request-Id: ");
    let failed = || {
        bad("Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.")
    };
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().map_err(|_| failed())?;
    let response = client
        .post(url)
        .query(&[("validationToken", token.as_str())])
        .header("content-type", "text/plain")
        .send()
        .await
        .map_err(|_| failed())?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(failed());
    }
    let echoed = response.text().await.map_err(|_| failed())?;
    (echoed == token).then_some(()).ok_or_else(failed)
}

/// POST /v1.0/subscriptions
pub async fn create(State(emu): State<Emulator>, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let body: Value = serde_json::from_slice(&body).map_err(|_| bad("Malformed JSON body."))?;
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    let resource = text("resource").ok_or_else(|| bad("resource is required."))?;
    let change_type = text("changeType").ok_or_else(|| bad("changeType is required."))?;
    let notification_url = text("notificationUrl").ok_or_else(|| bad("notificationUrl is required."))?;
    let client_state = text("clientState");
    if client_state.as_ref().is_some_and(|c| c.len() > 128) {
        return Err(bad("clientState must be at most 128 characters."));
    }
    let expiration = expiration(&body)?;
    let parts: Vec<&str> = resource.trim_start_matches('/').split('/').collect();
    let mailbox = match parts.as_slice() {
        [users, key, rest @ ..] if users.eq_ignore_ascii_case("users") && !rest.is_empty() => {
            // The resource names the mailbox as a request path does, percent-encoded or not.
            let key = crate::gate::percent_decode(key).ok_or_else(|| bad("Unsupported resource."))?;
            let tenant = lock(&emu.shared.tenant);
            tenant.find(&key).map(|m| m.id.clone()).ok_or_else(ApiError::user_not_found)?
        }
        _ => return Err(bad("Unsupported resource.")),
    };
    let count = lock(&emu.shared.subscriptions).by_id.values().filter(|s| s.mailbox == mailbox).count();
    if count >= MAX_PER_MAILBOX {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "ExtensionError",
            "The number of subscriptions for this mailbox has reached its limit.",
        ));
    }
    validate_url(&notification_url).await?;
    let lifecycle_url = text("lifecycleNotificationUrl");
    if let Some(url) = &lifecycle_url {
        validate_url(url).await?;
    }
    let sub = Subscription {
        id: uuid::Uuid::new_v4().to_string(),
        mailbox,
        resource,
        change_type,
        notification_url,
        lifecycle_url,
        client_state,
        expiration,
    };
    let rendered = sub.render();
    lock(&emu.shared.subscriptions).by_id.insert(sub.id.clone(), sub);
    Ok((StatusCode::CREATED, Json(rendered)).into_response())
}

fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "ResourceNotFound", "The object was not found.")
}

/// PATCH /v1.0/subscriptions/{id}: renew.
pub async fn renew(
    State(emu): State<Emulator>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let body: Value = serde_json::from_slice(&body).map_err(|_| bad("Malformed JSON body."))?;
    let at = expiration(&body)?;
    let mut store = lock(&emu.shared.subscriptions);
    let sub = store.by_id.get_mut(&id).ok_or_else(not_found)?;
    sub.expiration = at;
    Ok(Json(sub.render()).into_response())
}

/// GET /v1.0/subscriptions/{id}
pub async fn get(State(emu): State<Emulator>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let store = lock(&emu.shared.subscriptions);
    Ok(Json(store.by_id.get(&id).ok_or_else(not_found)?.render()).into_response())
}

/// POST /v1.0/subscriptions/{id}/reauthorize
pub async fn reauthorize(State(emu): State<Emulator>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let store = lock(&emu.shared.subscriptions);
    store.by_id.get(&id).ok_or_else(not_found)?;
    Ok(StatusCode::NO_CONTENT)
}

/// DELETE /v1.0/subscriptions/{id}
pub async fn delete(State(emu): State<Emulator>, Path(id): Path<String>) -> Result<Response, ApiError> {
    lock(&emu.shared.subscriptions).by_id.remove(&id).ok_or_else(not_found)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// How often a failed delivery is tried again, and how long to wait before the first retry (doubling).
#[derive(Debug, Clone, Copy)]
struct Redelivery {
    retries: u32,
    first_delay: Duration,
}

fn redelivery(emu: &Emulator) -> Redelivery {
    let faults = emu.faults();
    Redelivery {
        retries: faults.notification_retries,
        first_delay: Duration::from_millis(faults.notification_retry_delay_ms),
    }
}

/// POSTs `payload`; like Graph, a non-2xx answer or an error is retried later with growing delays.
fn deliver(emu: &Emulator, url: String, payload: Value) {
    let plan = redelivery(emu);
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut delay = plan.first_delay;
        for attempt in 0..=plan.retries {
            let sent = client.post(&url).json(&payload).timeout(Duration::from_secs(10)).send().await;
            match sent {
                Ok(r) if r.status().is_success() => return,
                Ok(r) => tracing::debug!(status = r.status().as_u16(), attempt, "notification refused"),
                Err(err) => tracing::debug!(error = %err, attempt, "notification delivery failed"),
            }
            if attempt < plan.retries {
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
            }
        }
    });
}

/// Sends change notifications for `event_id` in `mailbox` to every matching subscription.
pub fn notify(emu: &Emulator, mailbox: &str, event_id: &str, change: ChangeType) {
    let etag = {
        let tenant = lock(&emu.shared.tenant);
        tenant
            .find(mailbox)
            .and_then(|m| m.events.iter().find(|e| e.id == event_id))
            .map(|e| format!("W/\"{}\"", e.change_key))
    };
    let subs: Vec<Subscription> = lock(&emu.shared.subscriptions)
        .by_id
        .values()
        .filter(|s| s.mailbox == mailbox && s.change_type.split(',').any(|c| c.trim() == change.as_str()))
        .cloned()
        .collect();
    for sub in subs {
        let resource = format!("Users/{mailbox}/Events/{event_id}");
        let payload = json!({"value": [{
            "subscriptionId": sub.id,
            "subscriptionExpirationDateTime": format_instant(sub.expiration),
            "clientState": sub.client_state,
            "changeType": change.as_str(),
            "resource": resource,
            "tenantId": emu.shared.config.tenant_id,
            "resourceData": {
                "@odata.type": "#Microsoft.Graph.Event",
                "@odata.id": resource,
                "@odata.etag": etag,
                "id": event_id,
            }
        }]});
        send_change(emu, sub.notification_url, payload);
    }
}

/// Delivers (or holds, per the fault knobs) one change notification.
fn send_change(emu: &Emulator, url: String, payload: Value) {
    let faults = emu.faults();
    if faults.notification_hold {
        lock(&emu.shared.subscriptions).held.push((url, payload));
        return;
    }
    if faults.notification_duplicates {
        deliver(emu, url.clone(), payload.clone());
    }
    deliver(emu, url, payload);
}

/// Delivers every held notification, newest first; returns how many.
pub fn flush_held(emu: &Emulator) -> usize {
    let held = std::mem::take(&mut lock(&emu.shared.subscriptions).held);
    let duplicates = emu.faults().notification_duplicates;
    let n = held.len();
    for (url, payload) in held.into_iter().rev() {
        if duplicates {
            deliver(emu, url.clone(), payload.clone());
        }
        deliver(emu, url, payload);
    }
    n
}

/// Sends a lifecycle event (`reauthorizationRequired`, `subscriptionRemoved`, `missed`); removal deletes it.
pub fn lifecycle(emu: &Emulator, id: &str, event: &str) -> Result<(), ApiError> {
    let sub = {
        let mut store = lock(&emu.shared.subscriptions);
        let sub = store.by_id.get(id).cloned().ok_or_else(not_found)?;
        if event == "subscriptionRemoved" {
            store.by_id.remove(id);
        }
        sub
    };
    let url = sub.lifecycle_url.clone().ok_or_else(|| bad("The subscription has no lifecycleNotificationUrl."))?;
    deliver(
        emu,
        url,
        json!({"value": [{
            "subscriptionId": sub.id,
            "subscriptionExpirationDateTime": format_instant(sub.expiration),
            "tenantId": emu.shared.config.tenant_id,
            "clientState": sub.client_state,
            "lifecycleEvent": event,
        }]}),
    );
    Ok(())
}
