//! Places: rooms and room lists, paged 100 at a time with `$top`/`$skip`.
//!
//! Invariant: the listing order is stable (config order), so `$skip` pages never overlap or miss a room.

use std::collections::{BTreeSet, HashMap};

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::links::base_url;
use crate::state::{lock, Emulator};

fn room_json(emu: &Emulator, list: Option<&str>) -> Vec<Value> {
    let tenant = lock(&emu.shared.tenant);
    tenant
        .mailboxes()
        .iter()
        .filter_map(|m| m.room.as_ref())
        .filter(|r| list.is_none_or(|l| r.room_list.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(l))))
        .map(|r| {
            json!({
                "@odata.type": "#microsoft.graph.room",
                "id": r.id,
                "emailAddress": r.email,
                "displayName": r.display_name,
                "capacity": r.capacity,
                "building": r.building,
                "floorNumber": r.floor_number,
                "bookingType": "standard",
            })
        })
        .collect()
}

fn paged(
    items: Vec<Value>,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    path: &str,
) -> Result<Response, ApiError> {
    let number = |k: &str, default: usize| -> Result<usize, ApiError> {
        query
            .get(k)
            .map(|v| v.parse::<usize>().map_err(|_| ApiError::bad_request(format!("{k} must be a number"))))
            .transpose()
            .map(|v| v.unwrap_or(default))
    };
    let top = number("$top", 100)?.clamp(1, 100);
    let skip = number("$skip", 0)?;
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(skip).take(top).collect();
    let mut body = json!({"value": page});
    if let Some(m) = body.as_object_mut() {
        if query.get("$count").is_some_and(|c| c == "true") {
            m.insert("@odata.count".into(), json!(total));
        }
        if skip + top < total {
            let next = format!("{}{path}?$top={top}&$skip={}", base_url(headers), skip + top);
            m.insert("@odata.nextLink".into(), json!(next));
        }
    }
    Ok(Json(body).into_response())
}

/// GET /places/microsoft.graph.room
pub async fn rooms(
    State(emu): State<Emulator>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    paged(room_json(&emu, None), &query, &headers, "/v1.0/places/microsoft.graph.room")
}

/// GET /places/microsoft.graph.roomlist
pub async fn room_lists(
    State(emu): State<Emulator>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lists: BTreeSet<String> = {
        let tenant = lock(&emu.shared.tenant);
        tenant.mailboxes().iter().filter_map(|m| m.room.as_ref()?.room_list.clone()).collect()
    };
    let items = lists
        .into_iter()
        .map(|l| json!({"@odata.type": "#microsoft.graph.roomList", "id": l, "emailAddress": l, "displayName": l}))
        .collect();
    paged(items, &query, &headers, "/v1.0/places/microsoft.graph.roomlist")
}

/// GET /places/{roomListEmail}/microsoft.graph.roomlist/rooms
pub async fn rooms_in_list(
    State(emu): State<Emulator>,
    Path(list): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let path = format!("/v1.0/places/{list}/microsoft.graph.roomlist/rooms");
    paged(room_json(&emu, Some(&list)), &query, &headers, &path)
}
