//! Event endpoints: create, read, update, delete, list, calendarView and instances.
//!
//! Invariants: a create that repeats a `transactionId` already used in the mailbox answers 201 with the existing
//! event and creates nothing (this is what makes client retries exactly-once); a stale `If-Match` never modifies
//! anything (412); every successful modification bumps the change key.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::event::StoredEvent;
use crate::exceptions::patch_occurrence;
use crate::filter::{parse_any_filter, parse_expand, AnyFilter};
use crate::links::base_url;
use crate::prefer::{Paging, Prefer};
use crate::state::{lock, Emulator};
use crate::subscriptions::{notify, ChangeType};
use crate::time::query_instant;
use crate::view::{occurrence_on, parse_occurrence_id, view, ViewItem};

type Params = HashMap<String, String>;

fn expand_ids(query: &Params) -> Result<Option<Vec<String>>, ApiError> {
    query.get("$expand").map(|e| parse_expand(e).map_err(|err| ApiError::bad_request(err.to_string()))).transpose()
}

fn any_filter(query: &Params) -> Result<Option<AnyFilter>, ApiError> {
    query.get("$filter").map(|f| parse_any_filter(f).map_err(|err| ApiError::bad_request(err.to_string()))).transpose()
}

fn matches(event: &StoredEvent, filter: &Option<AnyFilter>) -> bool {
    let Some(f) = filter else { return true };
    match (event.extended_value(&f.id), &f.value) {
        // Graph compares a string property's value without case ("Get singleValueLegacyExtendedProperty").
        (Some(v), Some(want)) => v.to_lowercase() == want.to_lowercase(),
        (Some(_), None) => true,
        (None, _) => false,
    }
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("Malformed JSON body: {e}")))
}

pub(crate) fn check_if_match(headers: &HeaderMap, event: &StoredEvent) -> Result<(), ApiError> {
    let Some(want) = headers.get("if-match").and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let current = format!("W/\"{}\"", event.change_key);
    if want.trim() == "*" || want.trim() == current || want.trim() == event.change_key {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        "ErrorIrresolvableConflict",
        "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item.",
    ))
}

/// POST /users/{id}/events (and the /calendar/events aliases).
pub async fn create(
    State(emu): State<Emulator>,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let user = params.get("user").cloned().unwrap_or_default();
    let body = parse_body(&body)?;
    let prefer = Prefer::from_headers(&headers);
    let window_ms = emu.faults().transaction_id_window_ms;
    let (rendered, mailbox_id, id) = {
        let mut tenant = lock(&emu.shared.tenant);
        let mbx = tenant.find_mut(&user).ok_or_else(ApiError::user_not_found)?;
        let tx = body.get("transactionId").and_then(Value::as_str);
        let window = chrono::Duration::milliseconds(i64::try_from(window_ms).unwrap_or(i64::MAX));
        let now = Utc::now();
        let repeated = |e: &&StoredEvent| e.transaction_id.as_deref() == tx && now - e.created < window;
        if let Some(existing) = tx.and_then(|_| mbx.events.iter().find(repeated)) {
            let rendered = existing.render(&prefer.output_zone, None);
            return Ok(created(&headers, &prefer, (&mbx.id, &existing.id), rendered));
        }
        let event = StoredEvent::create(&body, mbx.as_recipient(), now)?;
        let rendered = event.render(&prefer.output_zone, None);
        let id = event.id.clone();
        mbx.events.push(event);
        (rendered, mbx.id.clone(), id)
    };
    notify(&emu, &mailbox_id, &id, ChangeType::Created);
    Ok(created(&headers, &prefer, (&mailbox_id, &id), rendered))
}

/// 201 with the event, its `Location` (an absolute URL that reads it back, as OData asks of a create) and the
/// preferences honoured.
fn created(headers: &HeaderMap, prefer: &Prefer, (mailbox, id): (&str, &str), rendered: Value) -> Response {
    let mut response = (StatusCode::CREATED, Json(rendered)).into_response();
    let location = format!("{}/v1.0/users/{mailbox}/events/{id}", base_url(headers));
    if let Ok(value) = axum::http::HeaderValue::from_str(&location) {
        response.headers_mut().insert("location", value);
    }
    prefer.stamp(&mut response, Paging::NotSized);
    response
}

/// A single event's JSON answer with the preferences honoured.
fn entity(prefer: &Prefer, rendered: Value) -> Response {
    let mut response = Json(rendered).into_response();
    prefer.stamp(&mut response, Paging::NotSized);
    response
}

/// GET /users/{id}/events/{eventId}
pub async fn get(
    State(emu): State<Emulator>,
    Path((user, id)): Path<(String, String)>,
    Query(query): Query<Params>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let expand = expand_ids(&query)?;
    let prefer = Prefer::from_headers(&headers);
    let tenant = lock(&emu.shared.tenant);
    let mbx = tenant.find(&user).ok_or_else(ApiError::user_not_found)?;
    if let Some(pos) = mbx.position(&id) {
        let event = mbx.events.get(pos).ok_or_else(ApiError::item_not_found)?;
        return Ok(entity(&prefer, event.render(&prefer.output_zone, expand.as_deref())));
    }
    let (master, date) = parse_occurrence_id(&id).ok_or_else(ApiError::item_not_found)?;
    let event = mbx.events.iter().find(|e| e.id == master).ok_or_else(ApiError::item_not_found)?;
    let item = ViewItem::member(event, date).ok_or_else(ApiError::item_not_found)?;
    Ok(entity(&prefer, item.render(&prefer.output_zone, expand.as_deref())))
}

/// PATCH /users/{id}/events/{eventId}
pub async fn update(
    State(emu): State<Emulator>,
    Path((user, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let body = parse_body(&body)?;
    let prefer = Prefer::from_headers(&headers);
    let (rendered, mailbox_id) = {
        let mut tenant = lock(&emu.shared.tenant);
        let mbx = tenant.find_mut(&user).ok_or_else(ApiError::user_not_found)?;
        let mailbox_id = mbx.id.clone();
        let Some(event) = mbx.events.iter_mut().find(|e| e.id == id) else {
            let (master, date) = parse_occurrence_id(&id).ok_or_else(ApiError::item_not_found)?;
            let event = mbx.events.iter_mut().find(|e| e.id == master).ok_or_else(ApiError::item_not_found)?;
            let rendered = patch_occurrence(event, date, &body, &headers, &prefer)?;
            drop(tenant);
            notify(&emu, &mailbox_id, &id, ChangeType::Updated);
            return Ok(entity(&prefer, rendered));
        };
        check_if_match(&headers, event)?;
        event.patch(&body, Utc::now())?;
        (event.render(&prefer.output_zone, None), mailbox_id)
    };
    notify(&emu, &mailbox_id, &id, ChangeType::Updated);
    Ok(entity(&prefer, rendered))
}

/// DELETE /users/{id}/events/{eventId}; deleting an occurrence cancels that date of the series.
pub async fn delete(
    State(emu): State<Emulator>,
    Path((user, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mailbox_id = {
        let mut tenant = lock(&emu.shared.tenant);
        let mbx = tenant.find_mut(&user).ok_or_else(ApiError::user_not_found)?;
        let mailbox_id = mbx.id.clone();
        if let Some(pos) = mbx.position(&id) {
            if let Some(event) = mbx.events.get(pos) {
                check_if_match(&headers, event)?;
            }
            mbx.events.remove(pos);
        } else {
            let (master, date) = parse_occurrence_id(&id).ok_or_else(ApiError::item_not_found)?;
            let event = mbx.events.iter_mut().find(|e| e.id == master).ok_or_else(ApiError::item_not_found)?;
            occurrence_on(event, date).ok_or_else(ApiError::item_not_found)?;
            if let Some(exception) = event.exceptions.get(&date) {
                check_if_match(&headers, exception)?;
            }
            event.exceptions.remove(&date);
            event.cancelled_dates.push(date);
            event.touch(Utc::now());
        }
        mailbox_id
    };
    notify(&emu, &mailbox_id, &id, ChangeType::Deleted);
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn page(items: Vec<Value>, query: &Params, headers: &HeaderMap, path: &str) -> Result<Response, ApiError> {
    let number = |k: &str| -> Result<Option<usize>, ApiError> {
        query
            .get(k)
            .map(|v| v.parse::<usize>().map_err(|_| ApiError::bad_request(format!("{k} must be a number"))))
            .transpose()
    };
    let prefer = Prefer::from_headers(headers);
    let top_asked = number("$top")?;
    let paging = if top_asked.is_none() { Paging::Sized } else { Paging::NotSized };
    let top = top_asked.or(prefer.max_page_size).unwrap_or(10).clamp(1, 1000);
    let skip = number("$skip")?.unwrap_or(0);
    let total = items.len();
    let value: Vec<Value> = items.into_iter().skip(skip).take(top).collect();
    let mut body = json!({ "value": value });
    if skip + top < total {
        let mut url = url::Url::parse(&format!("{}{}", base_url(headers), path))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query.iter().filter(|(k, _)| *k != "$skip" && *k != "$top") {
                pairs.append_pair(k, v);
            }
            pairs.append_pair("$top", &top.to_string());
            pairs.append_pair("$skip", &(skip + top).to_string());
        }
        if let Some(m) = body.as_object_mut() {
            m.insert("@odata.nextLink".into(), json!(url.to_string()));
        }
    }
    let mut response = Json(body).into_response();
    prefer.stamp(&mut response, paging);
    Ok(response)
}

/// GET /users/{id}/events: single instances and series masters.
pub async fn list(
    State(emu): State<Emulator>,
    Path(user): Path<String>,
    Query(query): Query<Params>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let filter = any_filter(&query)?;
    let expand = expand_ids(&query)?;
    let prefer = Prefer::from_headers(&headers);
    let items: Vec<Value> = {
        let tenant = lock(&emu.shared.tenant);
        let mbx = tenant.find(&user).ok_or_else(ApiError::user_not_found)?;
        mbx.events
            .iter()
            .filter(|e| matches(e, &filter))
            .map(|e| e.render(&prefer.output_zone, expand.as_deref()))
            .collect()
    };
    page(items, &query, &headers, &format!("/v1.0/users/{user}/events"))
}

fn window(query: &Params) -> Result<(chrono::DateTime<Utc>, chrono::DateTime<Utc>), ApiError> {
    let param = |k: &str| {
        query_instant(query, k)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "ErrorInvalidParameter",
                    format!("This request requires a time window specified by the query string parameters StartDateTime and EndDateTime ({k})."),
                )
            })
    };
    Ok((param("startDateTime")?, param("endDateTime")?))
}

/// GET /users/{id}/calendarView: occurrences, exceptions and single instances in the window.
pub async fn calendar_view(
    State(emu): State<Emulator>,
    Path(user): Path<String>,
    Query(query): Query<Params>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (from, to) = window(&query)?;
    let filter = any_filter(&query)?;
    let expand = expand_ids(&query)?;
    let prefer = Prefer::from_headers(&headers);
    let items: Vec<Value> = {
        let tenant = lock(&emu.shared.tenant);
        let mbx = tenant.find(&user).ok_or_else(ApiError::user_not_found)?;
        view(&mbx.events, from, to)
            .into_iter()
            .filter(|i| matches(i.event, &filter))
            .map(|i| i.render(&prefer.output_zone, expand.as_deref()))
            .collect()
    };
    page(items, &query, &headers, &format!("/v1.0/users/{user}/calendarView"))
}

/// GET /users/{id}/events/{masterId}/instances
pub async fn instances(
    State(emu): State<Emulator>,
    Path((user, id)): Path<(String, String)>,
    Query(query): Query<Params>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (from, to) = window(&query)?;
    let prefer = Prefer::from_headers(&headers);
    let items: Vec<Value> = {
        let tenant = lock(&emu.shared.tenant);
        let mbx = tenant.find(&user).ok_or_else(ApiError::user_not_found)?;
        let event = mbx.events.iter().find(|e| e.id == id).ok_or_else(ApiError::item_not_found)?;
        view(std::slice::from_ref(event), from, to).into_iter().map(|i| i.render(&prefer.output_zone, None)).collect()
    };
    page(items, &query, &headers, &format!("/v1.0/users/{user}/events/{id}/instances"))
}
