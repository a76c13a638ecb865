//! Meeting responses of a mailbox owner (here: a room): `POST .../events/{id}/accept`, `/tentativelyAccept` and
//! `/decline`, answered 202 with no body, as Exchange does for an attendee's copy of a meeting.
//!
//! ```text
//! accept / tentativelyAccept -> responseStatus {response, time} set, change key bumped (delta: updated)
//! decline                    -> event removed from the calendar (delta: @removed; an occurrence id cancels that date)
//! every response             -> recorded in the mailbox's response log (`GET /_emulator/mailboxes/{id}/responses`),
//!                               standing in for the reply the organizer gets when sendResponse is true
//! ```
//! Invariants: a body with anything besides `comment` (string) and `sendResponse` (boolean) changes nothing and
//! answers 400; an unknown event changes nothing and answers 404 `ErrorItemNotFound`; a response is recorded only
//! when its effect was applied.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::exceptions::patch_occurrence;
use crate::prefer::Prefer;
use crate::state::{lock, Emulator};
use crate::subscriptions::{notify, ChangeType};
use crate::tenant::Mailbox;
use crate::time::format_instant;
use crate::view::{occurrence_on, parse_occurrence_id};

/// Which response the mailbox owner sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ResponseKind {
    /// `POST .../accept`
    Accepted,
    /// `POST .../tentativelyAccept`
    TentativelyAccepted,
    /// `POST .../decline`
    Declined,
}

impl ResponseKind {
    /// The `responseStatus.response` value Graph uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::TentativelyAccepted => "tentativelyAccepted",
            Self::Declined => "declined",
        }
    }
}

/// One response as recorded for `GET /_emulator/mailboxes/{id}/responses`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseRecord {
    /// The event id the client addressed.
    pub event_id: String,
    /// The event's iCalUId (the organizer's copy is matched by it in Exchange).
    #[serde(rename = "iCalUId")]
    pub ical_uid: String,
    /// accepted, tentativelyAccepted or declined.
    pub response: ResponseKind,
    /// The comment sent, if any.
    pub comment: Option<String>,
    /// Whether a response was sent to the organizer (Graph's default: true).
    pub send_response: bool,
    /// When the response was made (RFC 3339, UTC, 7 fraction digits).
    pub time: String,
}

/// The accepted request body.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ResponseBody {
    comment: Option<String>,
    send_response: bool,
}

fn parse_body(bytes: &[u8]) -> Result<ResponseBody, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(ResponseBody { comment: None, send_response: true });
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("Malformed JSON body: {e}")))?;
    let object = value.as_object().ok_or_else(|| ApiError::bad_request("The body must be a JSON object."))?;
    let mut body = ResponseBody { comment: None, send_response: true };
    for (key, v) in object {
        match (key.as_str(), v) {
            ("comment", Value::String(s)) => body.comment = Some(s.clone()),
            ("comment", Value::Null) => {}
            ("sendResponse", Value::Bool(b)) => body.send_response = *b,
            ("comment" | "sendResponse", _) => {
                return Err(ApiError::bad_request(format!("Invalid value for parameter '{key}'.")));
            }
            (other, _) => {
                return Err(ApiError::bad_request(format!(
                    "The parameter '{other}' in the request payload is not a valid parameter."
                )));
            }
        }
    }
    Ok(body)
}

/// POST /users/{id}/events/{eventId}/accept
pub async fn accept(
    State(emu): State<Emulator>,
    Path((user, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    respond(&emu, &user, &id, ResponseKind::Accepted, &body)
}

/// POST /users/{id}/events/{eventId}/tentativelyAccept
pub async fn tentatively_accept(
    State(emu): State<Emulator>,
    Path((user, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    respond(&emu, &user, &id, ResponseKind::TentativelyAccepted, &body)
}

/// POST /users/{id}/events/{eventId}/decline
pub async fn decline(
    State(emu): State<Emulator>,
    Path((user, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    respond(&emu, &user, &id, ResponseKind::Declined, &body)
}

fn respond(emu: &Emulator, user: &str, id: &str, kind: ResponseKind, bytes: &[u8]) -> Result<Response, ApiError> {
    let body = parse_body(bytes)?;
    let now = Utc::now();
    let (mailbox_id, change) = {
        let mut tenant = lock(&emu.shared.tenant);
        let mbx = tenant.find_mut(user).ok_or_else(ApiError::user_not_found)?;
        let (ical_uid, change) = apply(mbx, id, kind, now)?;
        mbx.responses.push(ResponseRecord {
            event_id: id.to_string(),
            ical_uid,
            response: kind,
            comment: body.comment,
            send_response: body.send_response,
            time: format_instant(now),
        });
        (mbx.id.clone(), change)
    };
    notify(emu, &mailbox_id, id, change);
    Ok(StatusCode::ACCEPTED.into_response())
}

fn response_status(kind: ResponseKind, now: DateTime<Utc>) -> Value {
    json!({"response": kind.as_str(), "time": format_instant(now)})
}

/// Applies the response to the stored event (or occurrence); returns its iCalUId and the change to notify.
fn apply(
    mbx: &mut Mailbox,
    id: &str,
    kind: ResponseKind,
    now: DateTime<Utc>,
) -> Result<(String, ChangeType), ApiError> {
    if let Some(pos) = mbx.position(id) {
        let event = mbx.events.get_mut(pos).ok_or_else(ApiError::item_not_found)?;
        let ical_uid = event.ical_uid.clone();
        if kind == ResponseKind::Declined {
            mbx.events.remove(pos);
            return Ok((ical_uid, ChangeType::Deleted));
        }
        event.fields.insert("responseStatus".into(), response_status(kind, now));
        event.touch(now);
        return Ok((ical_uid, ChangeType::Updated));
    }
    let (master, date) = parse_occurrence_id(id).ok_or_else(ApiError::item_not_found)?;
    let event = mbx.events.iter_mut().find(|e| e.id == master).ok_or_else(ApiError::item_not_found)?;
    occurrence_on(event, date).ok_or_else(ApiError::item_not_found)?;
    let ical_uid = event.ical_uid.clone();
    if kind == ResponseKind::Declined {
        event.exceptions.remove(&date);
        event.cancelled_dates.push(date);
        event.touch(now);
        return Ok((ical_uid, ChangeType::Deleted));
    }
    // An occurrence that gets its own response becomes an exception, as any edit of one does.
    patch_occurrence(event, date, &json!({}), &axum::http::HeaderMap::new(), &Prefer::default())?;
    if let Some(exception) = event.exceptions.get_mut(&date) {
        exception.fields.insert("responseStatus".into(), response_status(kind, now));
    }
    Ok((ical_uid, ChangeType::Updated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_comment_and_send_response_are_accepted_in_the_body() {
        let ok = parse_body(br#"{"comment":"busy","sendResponse":false}"#).expect("valid");
        assert_eq!(ok, ResponseBody { comment: Some("busy".into()), send_response: false });
        assert_eq!(parse_body(b"").expect("empty"), ResponseBody { comment: None, send_response: true });
        assert!(parse_body(b"{}").expect("empty object").send_response);
        for bad in [
            &br#"{"comment":1}"#[..],
            br#"{"sendResponse":"yes"}"#,
            br#"{"proposedNewTime":{}}"#,
            br#"[]"#,
            b"{",
            b"\xff",
        ] {
            assert!(parse_body(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
