//! `calendarView/delta`: paging with skip tokens and change tracking with delta tokens.
//!
//! ```text
//! initial GET ?startDateTime&endDateTime --> Round{items, snapshot} --page--> nextLink($skiptoken) ... --> deltaLink($deltatoken)
//! GET deltaLink --> compare view now with the token's snapshot --> Round{changed + @removed, new snapshot} --> pages ...
//! ```
//! Invariants: a round's snapshot (id -> changeKey of everything visible in the window) is only published as a
//! delta token on the LAST page, so a client that stops mid-round cannot skip changes; anything in the old
//! snapshot but no longer visible (deleted or moved out of the window) comes back as `@removed`; unknown or expired
//! tokens answer 410 SyncStateNotFound.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::event::opaque;
use crate::links::base_url;
use crate::prefer::{Paging, Prefer};
use crate::state::{lock, Emulator};
use crate::time::query_instant;
use crate::view::view;

/// The persistent part of a sync: what the client has seen.
#[derive(Debug, Clone)]
struct SyncState {
    mailbox: String,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    snapshot: BTreeMap<String, String>,
}

/// A round being paged through.
#[derive(Debug, Clone)]
struct Round {
    state: SyncState,
    items: Vec<Value>,
    offset: usize,
    empty_page_pending: bool,
}

/// All live tokens.
#[derive(Debug, Default)]
pub struct DeltaStore {
    delta_tokens: HashMap<String, SyncState>,
    skip_tokens: HashMap<String, Round>,
}

impl DeltaStore {
    /// Forgets every token.
    pub fn clear(&mut self) {
        self.delta_tokens.clear();
        self.skip_tokens.clear();
    }
}

fn sync_state_gone() -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "SyncStateNotFound",
        "The sync state generation is not found. Start a new full sync.",
    )
}

const UNSUPPORTED: &[&str] = &["$select", "$expand", "$filter", "$orderby", "$search", "$top", "$skip"];

/// GET /users/{id}/calendarView/delta
pub async fn delta(
    State(emu): State<Emulator>,
    Path(user): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(bad) = UNSUPPORTED.iter().find(|k| query.contains_key(**k)) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidUrlQuery",
            format!(
                "The query parameter '{bad}' is not supported with change tracking over the 'CalendarView' resource."
            ),
        ));
    }
    let prefer = Prefer::from_headers(&headers);
    let page_size = prefer.max_page_size.unwrap_or_else(|| emu.faults().delta_default_page_size.max(1));
    let empty_first = emu.faults().delta_empty_first_page;
    let shared = &emu.shared;

    let round = if let Some(token) = query.get("$skiptoken") {
        lock(&shared.delta).skip_tokens.get(token).cloned().ok_or_else(sync_state_gone)?
    } else if let Some(token) = query.get("$deltatoken") {
        let state = lock(&shared.delta).delta_tokens.get(token).cloned().ok_or_else(sync_state_gone)?;
        let (items, snapshot) = changes_since(&emu, &state, &prefer)?;
        Round { state: SyncState { snapshot, ..state }, items, offset: 0, empty_page_pending: empty_first }
    } else {
        let param = |k: &str| {
            query_instant(&query, k).ok_or_else(|| {
                ApiError::bad_request(format!("The '{k}' parameter is required and must be a date-time."))
            })
        };
        let mailbox = {
            let tenant = lock(&shared.tenant);
            tenant.find(&user).ok_or_else(ApiError::user_not_found)?.id.clone()
        };
        let state =
            SyncState { mailbox, from: param("startDateTime")?, to: param("endDateTime")?, snapshot: BTreeMap::new() };
        let (items, snapshot) = changes_since(&emu, &state, &prefer)?;
        Round { state: SyncState { snapshot, ..state }, items, offset: 0, empty_page_pending: empty_first }
    };

    let base = format!("{}/v1.0/users/{}/calendarView/delta", base_url(&headers), round.state.mailbox);
    let (page, link) = {
        let mut store = lock(&shared.delta);
        if round.empty_page_pending {
            let token = opaque("");
            store.skip_tokens.insert(token.clone(), Round { empty_page_pending: false, ..round });
            (Vec::new(), ("@odata.nextLink", format!("{base}?$skiptoken={token}")))
        } else {
            let end = (round.offset + page_size).min(round.items.len());
            let page = round.items.get(round.offset..end).map(<[Value]>::to_vec).unwrap_or_default();
            let token = opaque("");
            if end < round.items.len() {
                store.skip_tokens.insert(token.clone(), Round { offset: end, ..round });
                (page, ("@odata.nextLink", format!("{base}?$skiptoken={token}")))
            } else {
                store.delta_tokens.insert(token.clone(), round.state);
                (page, ("@odata.deltaLink", format!("{base}?$deltatoken={token}")))
            }
        }
    };
    let mut body = json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(event)",
        "value": page,
    });
    if let Some(m) = body.as_object_mut() {
        m.insert(link.0.into(), json!(link.1));
    }
    let mut response = (StatusCode::OK, Json(body)).into_response();
    prefer.stamp(&mut response, Paging::Sized);
    Ok(response)
}

/// Items changed since `state.snapshot` (all items when it is empty) and the snapshot of now.
fn changes_since(
    emu: &Emulator,
    state: &SyncState,
    prefer: &Prefer,
) -> Result<(Vec<Value>, BTreeMap<String, String>), ApiError> {
    let tenant = lock(&emu.shared.tenant);
    let mbx = tenant.find(&state.mailbox).ok_or_else(ApiError::user_not_found)?;
    let mut items = Vec::new();
    let mut snapshot = BTreeMap::new();
    for item in view(&mbx.events, state.from, state.to) {
        let id = item.id();
        if state.snapshot.get(&id).map(String::as_str) != Some(item.change_key()) {
            items.push(item.render_delta(&prefer.output_zone));
        }
        snapshot.insert(id, item.change_key().to_string());
    }
    for id in state.snapshot.keys().filter(|id| !snapshot.contains_key(*id)) {
        items.push(json!({
            "@odata.type": "#microsoft.graph.event",
            "id": id,
            "@removed": {"reason": "deleted"},
        }));
    }
    if emu.faults().delta_duplicates {
        if let Some(first) = items.first().cloned() {
            items.push(first);
        }
    }
    Ok((items, snapshot))
}
