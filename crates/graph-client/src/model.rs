//! Typed Graph resources: events, times, recipients, extended properties, rooms, subscriptions.
//!
//! Invariants: read-only properties (id, changeKey, etag, type, ...) are deserialized but never serialized, so
//! sending a fetched event back cannot try to overwrite them; every optional property is omitted when `None`, so
//! a PATCH touches only what the caller set; unknown enum values deserialize to `Unknown` instead of failing.

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::error::GraphError;

/// Graph's `dateTimeTimeZone`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DateTimeTimeZone {
    /// Wall clock without offset, e.g. `2017-04-15T11:00:00.0000000`.
    pub date_time: String,
    /// Windows or IANA zone name.
    pub time_zone: String,
}

impl DateTimeTimeZone {
    /// An instant expressed in UTC, the form Graph answers in.
    pub fn utc(instant: DateTime<Utc>) -> Self {
        Self::local(instant.naive_utc(), "UTC")
    }

    /// Wall clock in a named zone (no offset inside `date_time`, as Graph requires).
    pub fn local(local: NaiveDateTime, zone: &str) -> Self {
        let ticks = local.and_utc().timestamp_subsec_nanos() / 100;
        Self { date_time: format!("{}.{ticks:07}", local.format("%Y-%m-%dT%H:%M:%S")), time_zone: zone.into() }
    }

    /// The wall clock, parsed (0-9 fraction digits; an offset is an error).
    pub fn naive(&self) -> Result<NaiveDateTime, GraphError> {
        NaiveDateTime::parse_from_str(self.date_time.trim(), "%Y-%m-%dT%H:%M:%S%.f")
            .map_err(|_| GraphError::Decode(format!("bad dateTime {:?}", self.date_time)))
    }

    /// The instant, when the zone is UTC (as in answers without `Prefer: outlook.timezone`).
    pub fn to_utc(&self) -> Result<DateTime<Utc>, GraphError> {
        let zone = self.time_zone.trim();
        if !(zone.eq_ignore_ascii_case("UTC") || zone.eq_ignore_ascii_case("Etc/UTC")) {
            return Err(GraphError::Decode(format!("zone {zone:?} is not UTC")));
        }
        Ok(self.naive()?.and_utc())
    }

    /// The instant, in UTC or in a zone chrono-tz knows by its IANA name (Graph echoes the zone of a create's
    /// request in its answer); a wall clock the zone skips or repeats takes its earliest reading. Windows zone
    /// names are an error: roomsync never writes them and never asks Graph for them.
    pub fn instant(&self) -> Result<DateTime<Utc>, GraphError> {
        use chrono::TimeZone;
        if let Ok(utc) = self.to_utc() {
            return Ok(utc);
        }
        let zone: Tz = self
            .time_zone
            .trim()
            .parse()
            .map_err(|_| GraphError::Decode(format!("unknown zone {:?}", self.time_zone)))?;
        let local = self.naive()?;
        zone.from_local_datetime(&local)
            .earliest()
            .or_else(|| zone.from_local_datetime(&(local + chrono::TimeDelta::hours(1))).earliest())
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| GraphError::Decode(format!("{local} does not exist in {zone}")))
    }

    /// An all-day event's start or end: Graph gives its wall-clock midnight whatever zone it answers in (a
    /// floating date), read here as that midnight in `zone`, the zone the event was written in.
    pub fn floating_midnight(&self, zone: Tz) -> Result<DateTime<Utc>, GraphError> {
        use chrono::TimeZone;
        let local = self.naive()?;
        // Midnight exists in Oslo (its DST changes happen at 02:00 and 03:00); earliest() covers any zone.
        zone.from_local_datetime(&local)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| GraphError::Decode(format!("{local} does not exist in {zone}")))
    }
}

/// `itemBody`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemBody {
    /// `text` or `html`.
    pub content_type: String,
    /// The content.
    pub content: String,
}

/// `emailAddress`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct EmailAddress {
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// SMTP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// `recipient`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recipient {
    /// Address.
    pub email_address: EmailAddress,
}

/// `responseStatus`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseStatus {
    /// `none`, `accepted`, `declined`, ...
    pub response: String,
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

/// `attendee`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attendee {
    /// `required`, `optional` or `resource`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Address.
    pub email_address: EmailAddress,
    /// Response, read-only.
    #[serde(default, skip_serializing)]
    pub status: Option<ResponseStatus>,
}

/// `location`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    /// Shown name.
    #[serde(default)]
    pub display_name: String,
    /// Email of a room location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_email_address: Option<String>,
}

/// `showAs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ShowAs {
    /// Free.
    Free,
    /// Tentative.
    Tentative,
    /// Busy.
    Busy,
    /// Out of office.
    Oof,
    /// Working elsewhere.
    WorkingElsewhere,
    /// Unknown or a value added after this client was written.
    #[serde(other)]
    Unknown,
}

/// `sensitivity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Sensitivity {
    /// Normal.
    Normal,
    /// Personal.
    Personal,
    /// Private.
    Private,
    /// Confidential.
    Confidential,
    /// A value added after this client was written.
    #[serde(other)]
    Unknown,
}

/// Event `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EventType {
    /// A one-off event.
    SingleInstance,
    /// An unmodified member of a series.
    Occurrence,
    /// A modified member of a series.
    Exception,
    /// The series itself.
    SeriesMaster,
    /// A value added after this client was written.
    #[serde(other)]
    Unknown,
}

/// A single-value extended property `{id, value}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtendedProperty {
    /// E.g. `String {66f5a359-4659-4830-9070-00047ec6ac6e} Name BookingSystemId`.
    pub id: String,
    /// The value (strings only here).
    pub value: String,
}

/// `@removed` marker in delta answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    /// `deleted` (also used for items that left the window).
    pub reason: String,
}

/// A Graph event. Read-only fields come back from Graph and are never sent.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Opaque immutable id.
    #[serde(default, skip_serializing)]
    pub id: Option<String>,
    /// `W/"<changeKey>"`.
    #[serde(rename = "@odata.etag", default, skip_serializing)]
    pub etag: Option<String>,
    /// Changes on every modification.
    #[serde(default, skip_serializing)]
    pub change_key: Option<String>,
    /// iCalendar UID.
    #[serde(rename = "iCalUId", default, skip_serializing)]
    pub ical_uid: Option<String>,
    /// Creation time (UTC, ISO 8601).
    #[serde(default, skip_serializing)]
    pub created_date_time: Option<String>,
    /// Last modification (UTC, ISO 8601).
    #[serde(default, skip_serializing)]
    pub last_modified_date_time: Option<String>,
    /// Kind of event.
    #[serde(rename = "type", default, skip_serializing)]
    pub event_type: Option<EventType>,
    /// Master of an occurrence or exception.
    #[serde(default, skip_serializing)]
    pub series_master_id: Option<String>,
    /// Original start of an occurrence.
    #[serde(default, skip_serializing)]
    pub original_start: Option<String>,
    /// The time zone the organizer created the start in (read-only), e.g. `W. Europe Standard Time`.
    #[serde(default, skip_serializing)]
    pub original_start_time_zone: Option<String>,
    /// Whether the organizer cancelled it (read-only).
    #[serde(default, skip_serializing)]
    pub is_cancelled: Option<bool>,
    /// Plain-text preview of the body.
    #[serde(default, skip_serializing)]
    pub body_preview: Option<String>,
    /// Delta deletion marker.
    #[serde(rename = "@removed", default, skip_serializing)]
    pub removed: Option<Removed>,
    /// Subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<ItemBody>,
    /// Start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<DateTimeTimeZone>,
    /// End.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTimeTimeZone>,
    /// All-day flag (start and end must then be midnights in one zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_all_day: Option<bool>,
    /// Free/busy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show_as: Option<ShowAs>,
    /// Sensitivity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitivity: Option<Sensitivity>,
    /// Categories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    /// Organizer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organizer: Option<Recipient>,
    /// Attendees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attendees: Option<Vec<Attendee>>,
    /// Location (writing it replaces `locations`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Locations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locations: Option<Vec<Location>>,
    /// Series definition, kept as JSON (`{pattern, range}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrence: Option<serde_json::Value>,
    /// De-duplication key for creates; immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// Extended properties (only present when asked for with `$expand`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub single_value_extended_properties: Option<Vec<ExtendedProperty>>,
}

impl Event {
    /// The value of an expanded extended property, by case-insensitive id.
    pub fn extended(&self, id: &str) -> Option<&str> {
        self.single_value_extended_properties
            .as_ref()?
            .iter()
            .find(|p| p.id.eq_ignore_ascii_case(id))
            .map(|p| p.value.as_str())
    }

    /// Sets (or replaces) an extended property to be written with this event.
    pub fn set_extended(&mut self, id: &str, value: &str) {
        let props = self.single_value_extended_properties.get_or_insert_with(Vec::new);
        match props.iter_mut().find(|p| p.id.eq_ignore_ascii_case(id)) {
            Some(p) => p.value = value.to_string(),
            None => props.push(ExtendedProperty { id: id.to_string(), value: value.to_string() }),
        }
    }

    /// The event's start and end instants (see [`DateTimeTimeZone::instant`]); an all-day event's floating
    /// dates are read as midnights in `all_day_zone`. Missing or unreadable times are
    /// an error naming which one.
    pub fn span(&self, all_day_zone: Tz) -> Result<(DateTime<Utc>, DateTime<Utc>), GraphError> {
        let all_day = self.is_all_day.unwrap_or(false);
        let read = |value: Option<&DateTimeTimeZone>, what: &str| {
            let value = value.ok_or_else(|| GraphError::Decode(format!("no {what}")))?;
            let instant = if all_day { value.floating_midnight(all_day_zone) } else { value.instant() };
            instant.map_err(|e| match e {
                GraphError::Decode(reason) => GraphError::Decode(format!("{what}: {reason}")),
                other => other,
            })
        };
        Ok((read(self.start.as_ref(), "start")?, read(self.end.as_ref(), "end")?))
    }

    /// Whether this is a delta deletion (or left-the-window) marker.
    pub fn is_removed(&self) -> bool {
        self.removed.is_some()
    }
}

/// A room from `/places/microsoft.graph.room`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Room {
    /// Place id.
    pub id: String,
    /// Mailbox address.
    pub email_address: String,
    /// Name.
    pub display_name: String,
    /// Seats.
    #[serde(default)]
    pub capacity: Option<u32>,
    /// Building.
    #[serde(default)]
    pub building: Option<String>,
    /// Floor.
    #[serde(default)]
    pub floor_number: Option<i32>,
}

/// A change-notification subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// Id (absent when creating).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// E.g. `/users/{id}/events`, from [`crate::paths::events_resource`].
    pub resource: String,
    /// E.g. `created,updated,deleted`.
    pub change_type: String,
    /// Webhook (https in production).
    pub notification_url: String,
    /// Lifecycle webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_notification_url: Option<String>,
    /// Secret echoed in notifications (<= 128 chars).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_state: Option<String>,
    /// Expiry (at most 10,080 minutes ahead for events), RFC 3339.
    pub expiration_date_time: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_round_trip_with_seven_fraction_digits() {
        let t = DateTime::parse_from_rfc3339("2025-05-01T10:30:00.25Z").expect("t").with_timezone(&Utc);
        let dt = DateTimeTimeZone::utc(t);
        assert_eq!(dt.date_time, "2025-05-01T10:30:00.2500000");
        assert_eq!(dt.to_utc().ok(), Some(t));
    }

    #[test]
    fn malformed_or_non_utc_times_are_errors_not_panics() {
        for (dt, tz) in
            [("", "UTC"), ("2025-01-01T10:00:00Z", "UTC"), ("garbage", "UTC"), ("2025-01-01T10:00:00", "Europe/Oslo")]
        {
            let v = DateTimeTimeZone { date_time: dt.into(), time_zone: tz.into() };
            assert!(v.to_utc().is_err(), "{dt} {tz}");
        }
    }

    #[test]
    fn instants_are_read_in_utc_or_in_the_named_iana_zone() {
        let at = |dt: &str, tz: &str| DateTimeTimeZone { date_time: dt.into(), time_zone: tz.into() }.instant();
        let utc = |s: &str| DateTime::parse_from_rfc3339(s).expect("t").with_timezone(&Utc);
        assert_eq!(at("2026-03-29T12:00:00.0000000", "UTC").ok(), Some(utc("2026-03-29T12:00:00Z")));
        // Summer and winter time in Oslo; 02:30 on the spring change does not exist and reads as 03:30.
        assert_eq!(at("2026-03-29T12:00:00.0000000", "Europe/Oslo").ok(), Some(utc("2026-03-29T10:00:00Z")));
        assert_eq!(at("2026-01-10T12:00:00", "Europe/Oslo").ok(), Some(utc("2026-01-10T11:00:00Z")));
        assert_eq!(at("2026-03-29T02:30:00", "Europe/Oslo").ok(), Some(utc("2026-03-29T01:30:00Z")));
        for (dt, tz) in [("2026-01-10T12:00:00", "W. Europe Standard Time"), ("garbage", "Europe/Oslo")] {
            assert!(at(dt, tz).is_err(), "{dt} {tz}");
        }
    }

    #[test]
    fn an_all_day_span_is_read_as_midnights_of_the_given_zone() {
        let utc = |s: &str| DateTime::parse_from_rfc3339(s).expect("t").with_timezone(&Utc);
        let day = |dt: &str| Some(DateTimeTimeZone { date_time: dt.into(), time_zone: "UTC".into() });
        let mut e = Event {
            start: day("2026-07-01T00:00:00.0000000"),
            end: day("2026-07-02T00:00:00.0000000"),
            is_all_day: Some(true),
            ..Event::default()
        };
        let oslo = chrono_tz::Europe::Oslo;
        assert_eq!(e.span(oslo).ok(), Some((utc("2026-06-30T22:00:00Z"), utc("2026-07-01T22:00:00Z"))));
        e.is_all_day = Some(false);
        assert_eq!(e.span(oslo).ok(), Some((utc("2026-07-01T00:00:00Z"), utc("2026-07-02T00:00:00Z"))));
        e.end = None;
        assert!(matches!(e.span(oslo), Err(GraphError::Decode(reason)) if reason == "no end"));
    }

    #[test]
    fn setting_an_extended_property_twice_keeps_one_entry() {
        let mut e = Event::default();
        e.set_extended("String {x} Name A", "1");
        e.set_extended("string {X} name a", "2");
        assert_eq!(e.extended("String {x} Name A"), Some("2"));
        assert_eq!(e.single_value_extended_properties.map(|p| p.len()), Some(1));
    }

    #[test]
    fn read_only_fields_are_not_serialized_and_unknown_enums_decode() {
        let e: Event = serde_json::from_str(r#"{"id":"x","@odata.etag":"W/\"k\"","changeKey":"k","showAs":"somethingNew","type":"occurrence","subject":"s"}"#)
            .expect("decodes");
        assert_eq!(e.show_as, Some(ShowAs::Unknown));
        let out = serde_json::to_value(&e).expect("encodes");
        assert_eq!(out, serde_json::json!({"subject":"s","showAs":"unknown"}));
    }
}
