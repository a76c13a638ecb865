//! Graph's event JSON (as typed by graph-client) to the `GraphEvent` record of `<prefix>.graph.events`.
//!
//! Invariants: instants are UTC microseconds (Graph answers in UTC because we never ask for another zone),
//! except that an all-day event's start and end are floating dates (Graph gives the wall-clock midnights
//! whatever zone it answers in), read as midnights in [`ALL_DAY_ZONE`], the zone roomsync writes them in;
//! the organizer's zone is kept separately; an item whose times cannot be read is refused with a reason instead
//! of being published with invented times; enum values Graph may add later pass through as `unknown`.

use chrono::{DateTime, Utc};
use graph_client::properties::{BOOKING_SYSTEM_ID, BOOKING_SYSTEM_TYPE, ROOMSYNC_CONTENT_HASH, ROOMSYNC_ITEM_KEY};
use graph_client::Event;
use vocabulary::records::{Attendee, EmailAddress, GraphEvent, GraphEventBody, RoomsyncTags, UpsertOrDelete};

/// Why an item could not be normalised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event cannot be normalised: {0}")]
pub struct Unreadable(pub String);

/// The record saying `event_id` is gone from `mailbox`.
pub fn delete_record(mailbox: &str, event_id: &str, observed_at: DateTime<Utc>) -> GraphEvent {
    GraphEvent {
        op: UpsertOrDelete::Delete,
        mailbox: mailbox.to_string(),
        event_id: event_id.to_string(),
        observed_at: observed_at.timestamp_millis(),
        event: None,
    }
}

/// The record saying `event` (the item `event_id`, as delta named it) exists in `mailbox` as given.
pub fn upsert_record(
    mailbox: &str,
    event_id: &str,
    event: &Event,
    observed_at: DateTime<Utc>,
) -> Result<GraphEvent, Unreadable> {
    if event_id.is_empty() {
        return Err(Unreadable("no id".into()));
    }
    Ok(GraphEvent {
        op: UpsertOrDelete::Upsert,
        mailbox: mailbox.to_string(),
        event_id: event_id.to_string(),
        observed_at: observed_at.timestamp_millis(),
        event: Some(body(event)?),
    })
}

/// The zone the dates of all-day events are read in: the booking system's (Europe/Oslo), in which roomsync also
/// writes its all-day events, so its own all-day writes read back as the instants it wrote.
pub const ALL_DAY_ZONE: chrono_tz::Tz = chrono_tz::Europe::Oslo;

fn millis(value: Option<&str>) -> Option<i64> {
    DateTime::parse_from_rfc3339(value?.trim()).ok().map(|t| t.timestamp_millis())
}

/// The serde name of an enum value (`busy`, `seriesMaster`, ...).
fn enum_name<T: serde::Serialize>(value: Option<T>, default: &str) -> String {
    value
        .and_then(|v| serde_json::to_value(v).ok())
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| default.to_string())
}

fn address(from: &graph_client::EmailAddress) -> EmailAddress {
    EmailAddress { name: from.name.clone(), address: from.address.clone() }
}

/// The change key: Graph's `changeKey`, or the one inside `@odata.etag` (`W/"<changeKey>"`) when only that came.
fn change_key(event: &Event) -> Option<String> {
    event.change_key.clone().or_else(|| {
        let etag = event.etag.as_deref()?;
        Some(etag.trim_start_matches("W/").trim_matches('"').to_string())
    })
}

fn body(event: &Event) -> Result<GraphEventBody, Unreadable> {
    let (start, end) = event.span(ALL_DAY_ZONE).map_err(|e| Unreadable(e.to_string()))?;
    let (start, end) = (start.timestamp_micros(), end.timestamp_micros());
    // Only the zone the organizer really used; the zone of `start` is always UTC here and says nothing.
    let time_zone = event.original_start_time_zone.clone();
    Ok(GraphEventBody {
        change_key: change_key(event),
        ical_uid: event.ical_uid.clone(),
        subject: event.subject.clone(),
        start,
        end,
        time_zone,
        is_all_day: event.is_all_day.unwrap_or(false),
        is_cancelled: event.is_cancelled.unwrap_or(false),
        show_as: enum_name(event.show_as, "unknown"),
        sensitivity: enum_name(event.sensitivity, "normal"),
        event_type: enum_name(event.event_type, "singleInstance"),
        series_master_id: event.series_master_id.clone(),
        organizer: event.organizer.as_ref().map(|o| address(&o.email_address)),
        attendees: event
            .attendees
            .iter()
            .flatten()
            .map(|a| Attendee {
                email: address(&a.email_address),
                attendee_type: a.kind.clone(),
                response: a.status.as_ref().map(|s| s.response.clone()),
            })
            .collect(),
        categories: event.categories.clone().unwrap_or_default(),
        created: millis(event.created_date_time.as_deref()),
        last_modified: millis(event.last_modified_date_time.as_deref()),
        transaction_id: event.transaction_id.clone(),
        tags: RoomsyncTags {
            booking_system_type: event.extended(BOOKING_SYSTEM_TYPE).map(str::to_string),
            booking_system_id: event.extended(BOOKING_SYSTEM_ID).map(str::to_string),
            item_key: event.extended(ROOMSYNC_ITEM_KEY).map(str::to_string),
            content_hash: event.extended(ROOMSYNC_CONTENT_HASH).map(str::to_string),
        },
    })
}

/// Milliseconds of `now`, for `observed_at` in tests.
#[cfg(test)]
fn now() -> DateTime<Utc> {
    Utc::now()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vocabulary::records::AvroRecord;

    fn graph_json() -> serde_json::Value {
        serde_json::json!({
            "id": "AAMk1", "@odata.etag": "W/\"ck1\"", "changeKey": "ck1", "iCalUId": "uid1",
            "subject": "Board meeting", "type": "singleInstance", "showAs": "busy", "sensitivity": "private",
            "isAllDay": false, "isCancelled": false,
            "start": {"dateTime": "2030-01-07T09:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2030-01-07T10:30:00.0000000", "timeZone": "UTC"},
            "originalStartTimeZone": "W. Europe Standard Time",
            "organizer": {"emailAddress": {"name": "Kari", "address": "kari@example.org"}},
            "attendees": [{"type": "resource", "emailAddress": {"address": "room@example.org"},
                           "status": {"response": "accepted"}}],
            "categories": ["Blue"],
            "createdDateTime": "2030-01-01T08:00:00.123Z", "lastModifiedDateTime": "2030-01-02T08:00:00Z",
            "singleValueExtendedProperties": [
                {"id": BOOKING_SYSTEM_TYPE.to_lowercase(), "value": "event"},
                {"id": BOOKING_SYSTEM_ID, "value": "17"},
                {"id": ROOMSYNC_ITEM_KEY, "value": "event:17"},
                {"id": ROOMSYNC_CONTENT_HASH, "value": "abc"}
            ]
        })
    }

    #[test]
    fn an_all_day_events_floating_dates_are_oslo_midnights_in_winter_and_summer() {
        for (date, next, offset_hours) in [("2027-02-02", "2027-02-03", 1), ("2027-07-02", "2027-07-03", 2)] {
            let mut json = graph_json();
            json["isAllDay"] = serde_json::json!(true);
            // Graph answers the midnights as they are, whatever zone it answers in.
            json["start"] = serde_json::json!({"dateTime": format!("{date}T00:00:00.0000000"), "timeZone": "UTC"});
            json["end"] = serde_json::json!({"dateTime": format!("{next}T00:00:00.0000000"), "timeZone": "UTC"});
            let event: Event = serde_json::from_value(json).expect("event");
            let body = upsert_record("room@example.org", "AAMk1", &event, now()).expect("normalised").event;
            let body = body.expect("body");
            let midnight = |d: &str| {
                let utc = DateTime::parse_from_rfc3339(&format!("{d}T00:00:00Z")).expect("date").timestamp_micros();
                utc - offset_hours * 3_600_000_000
            };
            assert_eq!((body.start, body.end), (midnight(date), midnight(next)), "{date}");
            assert!(body.is_all_day);
        }
    }

    #[test]
    fn a_full_graph_event_becomes_a_record_that_fits_the_schema() {
        let event: Event = serde_json::from_value(graph_json()).expect("event");
        let record = upsert_record("room@example.org", "AAMk1", &event, now()).expect("normalised");
        let body = record.event.clone().expect("body");
        assert_eq!(body.start, 1_894_006_800_000_000);
        assert_eq!(body.end - body.start, 90 * 60 * 1_000_000);
        assert_eq!(body.time_zone.as_deref(), Some("W. Europe Standard Time"));
        assert_eq!((body.show_as.as_str(), body.sensitivity.as_str()), ("busy", "private"));
        assert_eq!(body.event_type, "singleInstance");
        assert_eq!(body.created, Some(1_893_484_800_123));
        assert_eq!(body.tags.booking_system_type.as_deref(), Some("event"));
        assert_eq!(body.tags.item_key.as_deref(), Some("event:17"));
        assert_eq!(body.attendees[0].response.as_deref(), Some("accepted"));
        assert!(record.to_avro().is_ok());
    }

    #[test]
    fn an_occurrence_stub_keeps_its_series_and_takes_the_change_key_from_the_etag() {
        let event: Event = serde_json::from_value(serde_json::json!({
            "id": "occ1", "@odata.etag": "W/\"ck9\"", "seriesMasterId": "master", "type": "occurrence",
            "start": {"dateTime": "2030-01-07T09:00:00.0000000", "timeZone": "UTC"},
            "end": {"dateTime": "2030-01-07T10:00:00.0000000", "timeZone": "UTC"}
        }))
        .expect("stub");
        let body = upsert_record("r", "x", &event, now()).expect("normalised").event.expect("body");
        assert_eq!(body.change_key.as_deref(), Some("ck9"));
        assert_eq!(body.series_master_id.as_deref(), Some("master"));
        assert_eq!(body.event_type, "occurrence");
        assert_eq!(body.tags, RoomsyncTags::default());
    }

    #[test]
    fn items_without_readable_times_or_id_are_refused_not_invented() {
        let mut json = graph_json();
        json["start"] = serde_json::json!({"dateTime": "garbage", "timeZone": "UTC"});
        let event: Event = serde_json::from_value(json).expect("event");
        assert!(upsert_record("r", "x", &event, now()).is_err());
        let mut json = graph_json();
        json["end"] = serde_json::json!({"dateTime": "2030-01-07T10:30:00", "timeZone": "Mars/Olympus"});
        assert!(upsert_record("r", "x", &serde_json::from_value(json).expect("event"), now()).is_err());
        // A zone Graph was not asked for but named by its IANA name is read in that zone, not refused.
        let mut json = graph_json();
        json["end"] = serde_json::json!({"dateTime": "2030-01-07T11:30:00", "timeZone": "Europe/Oslo"});
        let record = upsert_record("r", "x", &serde_json::from_value(json).expect("event"), now()).expect("record");
        let end = record.event.map(|b| b.end);
        assert_eq!(
            end,
            Some(chrono::DateTime::parse_from_rfc3339("2030-01-07T10:30:00Z").expect("t").timestamp_micros())
        );
        assert!(upsert_record("r", "x", &Event::default(), now()).is_err());
        assert!(upsert_record("r", "", &serde_json::from_value(graph_json()).expect("event"), now()).is_err());
    }

    #[test]
    fn a_delete_record_has_no_body() {
        let record = delete_record("r", "x", now());
        assert_eq!(record.op, UpsertOrDelete::Delete);
        assert!(record.event.is_none());
        assert!(record.to_avro().is_ok());
    }
}
