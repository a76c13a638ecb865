//! `/_emulator/...`: run-time control and inspection for tests and demos (no bearer token needed).
//!
//! Invariant: admin endpoints never pass the gate, so they are neither throttled nor logged and cannot disturb
//! what a test measures through `/_emulator/requests`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde_json::{json, Value};

use crate::config::FaultConfig;
use crate::error::ApiError;
use crate::event::StoredEvent;
use crate::state::{lock, Emulator};
use crate::subscriptions::{lifecycle, notify, ChangeType};
use crate::time::OutputZone;
use crate::view::view;

/// GET /_emulator/requests
pub async fn requests(State(emu): State<Emulator>) -> Response {
    Json(emu.requests()).into_response()
}

/// DELETE /_emulator/requests
pub async fn reset_requests(State(emu): State<Emulator>) -> StatusCode {
    emu.reset_requests();
    StatusCode::NO_CONTENT
}

/// GET /_emulator/faults
pub async fn get_faults(State(emu): State<Emulator>) -> Response {
    Json(emu.faults()).into_response()
}

/// PUT /_emulator/faults (missing fields take their defaults)
pub async fn put_faults(State(emu): State<Emulator>, Json(faults): Json<FaultConfig>) -> Response {
    emu.set_faults(faults);
    Json(emu.faults()).into_response()
}

/// PATCH /_emulator/faults: only the given fields change.
pub async fn patch_faults(State(emu): State<Emulator>, Json(patch): Json<Value>) -> Result<Response, ApiError> {
    let mut current = serde_json::to_value(emu.faults()).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (Some(target), Some(changes)) = (current.as_object_mut(), patch.as_object()) else {
        return Err(ApiError::bad_request("Expected a JSON object."));
    };
    for (k, v) in changes {
        target.insert(k.clone(), v.clone());
    }
    let faults: FaultConfig = serde_json::from_value(current).map_err(|e| ApiError::bad_request(e.to_string()))?;
    emu.set_faults(faults);
    Ok(Json(emu.faults()).into_response())
}

/// POST /_emulator/delta/expire
pub async fn expire_delta(State(emu): State<Emulator>) -> StatusCode {
    emu.expire_delta_tokens();
    StatusCode::NO_CONTENT
}

/// POST /_emulator/tokens/revoke
pub async fn revoke_tokens(State(emu): State<Emulator>) -> StatusCode {
    emu.revoke_tokens();
    StatusCode::NO_CONTENT
}

/// GET /_emulator/mailboxes/{id}/events
pub async fn mailbox_events(State(emu): State<Emulator>, Path(mailbox): Path<String>) -> Result<Response, ApiError> {
    let events = emu.mailbox_events(&mailbox).ok_or_else(ApiError::user_not_found)?;
    Ok(Json(json!({"value": events})).into_response())
}

/// GET /_emulator/mailboxes/{id}/responses: accept / tentativelyAccept / decline responses the owner sent.
pub async fn mailbox_responses(State(emu): State<Emulator>, Path(mailbox): Path<String>) -> Result<Response, ApiError> {
    let responses = emu.mailbox_responses(&mailbox).ok_or_else(ApiError::user_not_found)?;
    Ok(Json(json!({"value": responses})).into_response())
}

fn strip_tags(body: &Value) -> Value {
    let mut body = body.clone();
    if let Some(m) = body.as_object_mut() {
        m.remove("singleValueExtendedProperties");
        m.remove("transactionId");
    }
    body
}

fn store(emu: &Emulator, mailbox: &str, event: StoredEvent) -> Result<Value, ApiError> {
    let (rendered, mailbox_id, id) = {
        let mut tenant = lock(&emu.shared.tenant);
        let mbx = tenant.find_mut(mailbox).ok_or_else(ApiError::user_not_found)?;
        let rendered = event.render(&OutputZone::default(), None);
        let id = event.id.clone();
        mbx.events.push(event);
        (rendered, mbx.id.clone(), id)
    };
    notify(emu, &mailbox_id, &id, ChangeType::Created);
    Ok(rendered)
}

/// POST /_emulator/mailboxes/{id}/bookings: a person books the room straight in Outlook (no roomsync tags).
pub async fn user_booking(
    State(emu): State<Emulator>,
    Path(mailbox): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let owner = {
        let tenant = lock(&emu.shared.tenant);
        tenant.find(&mailbox).ok_or_else(ApiError::user_not_found)?.as_recipient()
    };
    let event = StoredEvent::create(&strip_tags(&body), owner, Utc::now())?;
    Ok((StatusCode::CREATED, Json(store(&emu, &mailbox, event)?)).into_response())
}

/// POST /_emulator/mailboxes/{id}/meeting-requests: a meeting request processed by the resource booking
/// assistant (AutoAccept; AllowConflicts false declines when the slot is busy).
pub async fn meeting_request(
    State(emu): State<Emulator>,
    Path(mailbox): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let body = strip_tags(&body);
    let (owner, decision) = {
        let tenant = lock(&emu.shared.tenant);
        let mbx = tenant.find(&mailbox).ok_or_else(ApiError::user_not_found)?;
        let room = mbx.room.clone().ok_or_else(|| ApiError::bad_request("Not a room mailbox."))?;
        let probe = StoredEvent::create(&body, mbx.as_recipient(), Utc::now())?;
        let busy = view(&mbx.events, probe.start.utc, probe.end.utc).iter().any(|i| {
            let f = &i.event.fields;
            f.get("isCancelled").and_then(Value::as_bool) != Some(true)
                && f.get("showAs").and_then(Value::as_str) != Some("free")
        });
        let decision = match (room.auto_accept, busy && !room.allow_conflicts) {
            (false, _) => "tentativelyAccepted",
            (true, true) => "declined",
            (true, false) => "accepted",
        };
        (mbx.as_recipient(), decision)
    };
    if decision == "declined" {
        return Ok(Json(json!({"response": decision})).into_response());
    }
    let mut event = StoredEvent::create(&body, body.get("organizer").cloned().unwrap_or(owner.clone()), Utc::now())?;
    let mut attendees = event.fields.get("attendees").and_then(Value::as_array).cloned().unwrap_or_default();
    attendees.push(json!({
        "type": "resource",
        "emailAddress": owner["emailAddress"],
        "status": {"response": decision, "time": crate::time::format_instant(Utc::now())},
    }));
    event.fields.insert("attendees".into(), Value::Array(attendees));
    if decision == "tentativelyAccepted" {
        event.fields.insert("showAs".into(), json!("tentative"));
    }
    // The room's copy of someone else's meeting: the assistant answered it on the room's behalf.
    let organizer_address = event.fields.get("organizer").and_then(|o| o.get("emailAddress"));
    event.fields.insert("isOrganizer".into(), json!(owner.get("emailAddress") == organizer_address));
    let answered = crate::time::format_instant(Utc::now());
    event.fields.insert("responseStatus".into(), json!({"response": decision, "time": answered}));
    let rendered = store(&emu, &mailbox, event)?;
    Ok(Json(json!({"response": decision, "event": rendered})).into_response())
}

/// POST /_emulator/notifications/flush: delivers held notifications newest first.
pub async fn flush_notifications(State(emu): State<Emulator>) -> Response {
    Json(json!({"delivered": crate::subscriptions::flush_held(&emu)})).into_response()
}

/// POST /_emulator/subscriptions/{id}/lifecycle/{event}
pub async fn lifecycle_event(
    State(emu): State<Emulator>,
    Path((id, event)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    if !["reauthorizationRequired", "subscriptionRemoved", "missed"].contains(&event.as_str()) {
        return Err(ApiError::bad_request("Unknown lifecycle event."));
    }
    lifecycle(&emu, &id, &event)?;
    Ok(StatusCode::ACCEPTED)
}
