//! Editing one occurrence of a series: it becomes an exception with its own times, fields and change key.
//!
//! Invariant: an exception never moves onto or past the date of a neighbouring occurrence (Outlook answers 400
//! ErrorOccurrenceCrossingBoundary), so a series' members stay in pattern order.

use axum::http::{HeaderMap, StatusCode};
use chrono::{Duration, NaiveDate, Utc};
use serde_json::Value;

use crate::error::ApiError;
use crate::event::{opaque, StoredEvent};
use crate::events::check_if_match;
use crate::prefer::Prefer;
use crate::time::{self, ZonedTime};
use crate::view::{occurrence_on, ViewItem};

/// Applies `body` to the occurrence of `master` on `date` and returns the exception's JSON.
pub fn patch_occurrence(
    master: &mut StoredEvent,
    date: NaiveDate,
    body: &Value,
    headers: &HeaderMap,
    prefer: &Prefer,
) -> Result<Value, ApiError> {
    let occurrence = occurrence_on(master, date).ok_or_else(ApiError::item_not_found)?;
    let now = Utc::now();
    let mut exception = match master.exceptions.get(&date) {
        Some(existing) => existing.clone(),
        None => {
            let mut e = master.clone();
            e.id = opaque("AAMkAD");
            e.recurrence = None;
            e.exceptions.clear();
            e.cancelled_dates.clear();
            e.transaction_id = None;
            e.start = ZonedTime {
                local: occurrence.start_local,
                zone_name: master.start.zone_name.clone(),
                utc: occurrence.start,
            };
            e.end =
                ZonedTime { local: occurrence.end_local, zone_name: master.end.zone_name.clone(), utc: occurrence.end };
            e
        }
    };
    check_if_match(headers, if master.exceptions.contains_key(&date) { &exception } else { master })?;
    if body.get("recurrence").is_some_and(|r| !r.is_null()) {
        return Err(ApiError::bad_request("An occurrence cannot carry a recurrence."));
    }
    exception.patch(body, now)?;
    check_boundaries(master, date, &exception)?;
    master.exceptions.insert(date, exception);
    let item = ViewItem::member(master, date).ok_or_else(ApiError::item_not_found)?;
    Ok(item.render(&prefer.output_zone, None))
}

fn check_boundaries(master: &StoredEvent, date: NaiveDate, exception: &StoredEvent) -> Result<(), ApiError> {
    let Some(rec) = &master.recurrence else {
        return Ok(());
    };
    let zone = rec.time_zone.as_deref().unwrap_or(&master.start.zone_name);
    let tz = time::zone(zone).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let new_date = exception.start.utc.with_timezone(&tz).date_naive();
    let dates = rec.dates(date + Duration::days(800));
    let position = dates.iter().position(|d| *d == date);
    let previous = position.and_then(|p| p.checked_sub(1)).and_then(|p| dates.get(p));
    let next = position.and_then(|p| dates.get(p + 1));
    let crosses = previous.is_some_and(|p| new_date <= *p) || next.is_some_and(|n| new_date >= *n);
    if crosses {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "ErrorOccurrenceCrossingBoundary",
            "An occurrence cannot be moved to or beyond the date of an adjacent occurrence.",
        ));
    }
    Ok(())
}
