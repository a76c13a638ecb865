//! The stored event and its JSON wire form.
//!
//! Invariants: `change_key` is replaced on every modification and `@odata.etag` is always `W/"<changeKey>"`;
//! `transaction_id` is set once at creation and never changes; start/end are kept as instants (plus the wall clock
//! and zone name as sent, for all-day events, which float); extended properties are stored but rendered only when
//! the caller asks for them by id with `$expand`.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::recurrence::Recurrence;
use crate::time::{self, OutputZone, ZonedTime};

/// Plain properties copied through as sent (subject to light validation).
const PASSTHROUGH: &[&str] = &[
    "subject",
    "showAs",
    "categories",
    "sensitivity",
    "organizer",
    "attendees",
    "isCancelled",
    "importance",
    "isReminderOn",
    "reminderMinutesBeforeStart",
    "responseRequested",
    "allowNewTimeProposals",
    "isOnlineMeeting",
    "onlineMeetingProvider",
    "hideAttendees",
];

/// Read-only properties a client may echo back; they are ignored.
const READ_ONLY: &[&str] = &[
    "id",
    "changeKey",
    "createdDateTime",
    "lastModifiedDateTime",
    "iCalUId",
    "type",
    "seriesMasterId",
    "bodyPreview",
    "webLink",
    "originalStart",
    "originalStartTimeZone",
    "originalEndTimeZone",
    "responseStatus",
    "isOrganizer",
    "hasAttachments",
    "isDraft",
    "onlineMeeting",
    "onlineMeetingUrl",
];

/// `responseStatus.time` when no response was ever made (Graph's "no date").
const NO_TIME: &str = "0001-01-01T00:00:00Z";

/// The `webLink` Graph gives an event: Outlook on the web with the URL-encoded id.
pub fn web_link(id: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
    format!("https://outlook.office365.com/owa/?itemid={encoded}&exvsurl=1&path=/calendar/item")
}

/// One event as the emulator stores it.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// Opaque, immutable id.
    pub id: String,
    /// Changes on every modification.
    pub change_key: String,
    /// Stable iCalendar UID.
    pub ical_uid: String,
    /// Creation instant.
    pub created: DateTime<Utc>,
    /// Last modification instant.
    pub modified: DateTime<Utc>,
    /// Start as sent.
    pub start: ZonedTime,
    /// End as sent.
    pub end: ZonedTime,
    /// All-day flag.
    pub is_all_day: bool,
    /// Client-chosen de-duplication key.
    pub transaction_id: Option<String>,
    /// Series definition for masters.
    pub recurrence: Option<Recurrence>,
    /// Occurrence dates of a series that were deleted.
    pub cancelled_dates: Vec<NaiveDate>,
    /// Edited occurrences of a series, by their original date.
    pub exceptions: BTreeMap<NaiveDate, StoredEvent>,
    /// Single-value extended properties as (id, value), ids compared case-insensitively.
    pub extended: Vec<(String, String)>,
    /// Passthrough properties plus body/location(s).
    pub fields: Map<String, Value>,
}

/// The lower-cased SMTP address of a recipient (`{"emailAddress":{"address":...}}`).
fn address_of(recipient: &Value) -> Option<String> {
    recipient.get("emailAddress")?.get("address")?.as_str().map(str::to_ascii_lowercase)
}

/// A fresh opaque token (ids, change keys).
pub fn opaque(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::bad_request(msg)
}

fn zoned(body: &Value, key: &str) -> Result<Option<ZonedTime>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => time::parse_zoned(v).map(Some).map_err(|e| bad(format!("{key}: {e}"))),
    }
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Strips tags for bodyPreview; good enough for previews, never used for content.
fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.trim().chars().take(255).collect()
}

impl StoredEvent {
    /// Builds an event from a POST body; `owner` is the organizer when none is given.
    pub fn create(body: &Value, owner: Value, now: DateTime<Utc>) -> Result<Self, ApiError> {
        let start = zoned(body, "start")?.ok_or_else(|| bad("start is required"))?;
        let end = zoned(body, "end")?.ok_or_else(|| bad("end is required"))?;
        let transaction_id = match body.get("transactionId") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(bad("transactionId must be a string")),
        };
        let owner_address = address_of(&owner);
        let mut event = Self {
            id: opaque("AAMkAD"),
            change_key: opaque("CQAAAB"),
            ical_uid: format!("040000008200E00074C5B7101A82E008{}", uuid::Uuid::new_v4().simple()),
            created: now,
            modified: now,
            start,
            end,
            is_all_day: false,
            transaction_id,
            recurrence: None,
            cancelled_dates: Vec::new(),
            exceptions: BTreeMap::new(),
            extended: Vec::new(),
            fields: Map::new(),
        };
        event.fields.insert("organizer".into(), owner);
        event.apply(body)?;
        // The mailbox owner organises what is written into its calendar, unless the body names someone else
        // (a meeting the owner was invited to): then it is an attendee that has not answered yet.
        if address_of(event.fields.get("organizer").unwrap_or(&Value::Null)) != owner_address {
            event.fields.insert("isOrganizer".into(), json!(false));
            event.fields.insert("responseStatus".into(), json!({"response": "notResponded", "time": NO_TIME}));
        }
        Ok(event)
    }

    /// Applies a PATCH body; bumps the change key.
    pub fn patch(&mut self, body: &Value, now: DateTime<Utc>) -> Result<(), ApiError> {
        if let Some(t) = body.get("transactionId").and_then(Value::as_str) {
            if self.transaction_id.as_deref() != Some(t) {
                return Err(bad("transactionId is immutable"));
            }
        }
        let mut next = self.clone();
        next.apply(body)?;
        next.change_key = opaque("CQAAAB");
        next.modified = now;
        *self = next;
        Ok(())
    }

    /// Marks a modification that did not come through `patch` (e.g. an occurrence deleted).
    pub fn touch(&mut self, now: DateTime<Utc>) {
        self.change_key = opaque("CQAAAB");
        self.modified = now;
    }

    fn apply(&mut self, body: &Value) -> Result<(), ApiError> {
        let object = body.as_object().ok_or_else(|| bad("body must be a JSON object"))?;
        for (key, value) in object {
            match key.as_str() {
                k if k.starts_with('@') || READ_ONLY.contains(&k) => {}
                "start" | "end" | "transactionId" => {}
                "isAllDay" => self.is_all_day = value.as_bool().ok_or_else(|| bad("isAllDay must be a boolean"))?,
                "body" => self.set_body(value)?,
                "location" => {
                    self.fields.insert("location".into(), value.clone());
                    self.fields.insert("locations".into(), json!([value]));
                }
                "locations" => {
                    let first = value.as_array().and_then(|a| a.first()).cloned();
                    self.fields.insert("locations".into(), value.clone());
                    self.fields.insert("location".into(), first.unwrap_or_else(|| json!({"displayName": ""})));
                }
                "recurrence" => {
                    self.recurrence = match value {
                        Value::Null => None,
                        v => Some(Recurrence::parse(v)?),
                    }
                }
                "singleValueExtendedProperties" => self.set_extended(value)?,
                k if PASSTHROUGH.contains(&k) => {
                    self.fields.insert(k.to_string(), value.clone());
                }
                other => {
                    return Err(ApiError::bad_request(format!(
                        "Property '{other}' does not exist on type 'microsoft.graph.event'"
                    )))
                }
            }
        }
        if let Some(start) = zoned(body, "start")? {
            self.start = start;
        }
        if let Some(end) = zoned(body, "end")? {
            self.end = end;
        }
        self.validate_times()
    }

    fn validate_times(&self) -> Result<(), ApiError> {
        if self.end.utc < self.start.utc {
            return Err(bad("The end time must be after the start time."));
        }
        if self.is_all_day {
            let midnight = |t: &NaiveDateTime| t.time() == chrono::NaiveTime::MIN;
            let same_zone = time::zone(&self.start.zone_name).ok() == time::zone(&self.end.zone_name).ok();
            if !midnight(&self.start.local)
                || !midnight(&self.end.local)
                || !same_zone
                || self.end.local <= self.start.local
            {
                return Err(ApiError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    "ErrorPropertyValidationFailure",
                    "An all-day event must start and end at midnight in the same time zone.",
                ));
            }
        }
        Ok(())
    }

    fn set_body(&mut self, value: &Value) -> Result<(), ApiError> {
        let content = value.get("content").and_then(Value::as_str).unwrap_or("");
        let kind = value.get("contentType").and_then(Value::as_str).unwrap_or("text");
        let html = match kind.to_ascii_lowercase().as_str() {
            "html" => content.to_string(),
            "text" => format!(
                "<html>\r\n<head>\r\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">\r\n</head>\r\n<body>\r\n{}\r\n</body>\r\n</html>\r\n",
                html_escape(content)
            ),
            other => return Err(bad(format!("unknown contentType {other}"))),
        };
        self.fields.insert("bodyPreview".into(), json!(strip_tags(&html)));
        self.fields.insert("body".into(), json!({"contentType": "html", "content": html}));
        Ok(())
    }

    fn set_extended(&mut self, value: &Value) -> Result<(), ApiError> {
        let items = value.as_array().ok_or_else(|| bad("singleValueExtendedProperties must be an array"))?;
        for item in items {
            let id = item.get("id").and_then(Value::as_str).ok_or_else(|| bad("extended property id required"))?;
            let val = item
                .get("value")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("extended property value must be a string"))?;
            match self.extended.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(id)) {
                Some(slot) => slot.1 = val.to_string(),
                None => self.extended.push((id.to_string(), val.to_string())),
            }
        }
        Ok(())
    }

    /// The value of an extended property, by case-insensitive id.
    pub fn extended_value(&self, id: &str) -> Option<&str> {
        self.extended.iter().find(|(k, _)| k.eq_ignore_ascii_case(id)).map(|(_, v)| v.as_str())
    }

    /// The `type` of this stored event.
    pub fn kind(&self) -> &'static str {
        if self.recurrence.is_some() {
            "seriesMaster"
        } else {
            "singleInstance"
        }
    }

    fn render_time(&self, t: &ZonedTime, out: &OutputZone) -> Value {
        if self.is_all_day {
            out.render_floating(t.local)
        } else {
            out.render(t.utc)
        }
    }

    /// The full JSON form; `expand` lists the extended property ids asked for with `$expand`.
    pub fn render(&self, out: &OutputZone, expand: Option<&[String]>) -> Value {
        let mut m = self.fields.clone();
        m.insert("@odata.etag".into(), json!(format!("W/\"{}\"", self.change_key)));
        m.insert("id".into(), json!(self.id));
        m.insert("changeKey".into(), json!(self.change_key));
        m.insert("iCalUId".into(), json!(self.ical_uid));
        m.insert("createdDateTime".into(), json!(time::format_instant(self.created)));
        m.insert("lastModifiedDateTime".into(), json!(time::format_instant(self.modified)));
        m.insert("type".into(), json!(self.kind()));
        m.insert("isAllDay".into(), json!(self.is_all_day));
        m.insert("start".into(), self.render_time(&self.start, out));
        m.insert("end".into(), self.render_time(&self.end, out));
        m.entry("subject").or_insert(json!(""));
        m.entry("isCancelled").or_insert(json!(false));
        m.entry("showAs").or_insert(json!("busy"));
        m.entry("sensitivity").or_insert(json!("normal"));
        m.entry("categories").or_insert(json!([]));
        m.entry("attendees").or_insert(json!([]));
        m.entry("bodyPreview").or_insert(json!(""));
        m.entry("body").or_insert(json!({"contentType": "html", "content": ""}));
        m.entry("location").or_insert(json!({"displayName": ""}));
        m.entry("locations").or_insert(json!([]));
        m.insert("recurrence".into(), self.recurrence.as_ref().map(|r| r.raw.clone()).unwrap_or(Value::Null));
        // Graph's defaults for the rest of the event type (see the create-event response in its docs); the
        // owner of the calendar organises the event unless `create` recorded otherwise.
        m.insert("originalStartTimeZone".into(), json!(self.start.zone_name));
        m.insert("originalEndTimeZone".into(), json!(self.end.zone_name));
        m.entry("responseStatus").or_insert(json!({"response": "organizer", "time": NO_TIME}));
        m.entry("isOrganizer").or_insert(json!(true));
        m.entry("importance").or_insert(json!("normal"));
        m.entry("isReminderOn").or_insert(json!(true));
        m.entry("reminderMinutesBeforeStart").or_insert(json!(15));
        m.entry("responseRequested").or_insert(json!(true));
        m.entry("allowNewTimeProposals").or_insert(json!(true));
        m.entry("hideAttendees").or_insert(json!(false));
        m.entry("isOnlineMeeting").or_insert(json!(false));
        m.entry("onlineMeetingProvider").or_insert(json!("unknown"));
        m.insert("hasAttachments".into(), json!(false));
        m.insert("isDraft".into(), json!(false));
        m.insert("onlineMeeting".into(), Value::Null);
        m.insert("onlineMeetingUrl".into(), Value::Null);
        m.insert("seriesMasterId".into(), Value::Null);
        m.insert("webLink".into(), json!(web_link(&self.id)));
        // Null when the client set none (Graph's event-delta example shows `"transactionId": null`).
        m.insert("transactionId".into(), self.transaction_id.as_ref().map_or(Value::Null, |t| json!(t)));
        if let Some(ids) = expand {
            let props: Vec<Value> = ids
                .iter()
                .filter_map(|id| {
                    self.extended
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(id))
                        .map(|(k, v)| json!({"id": k, "value": v}))
                })
                .collect();
            if !props.is_empty() {
                m.insert("singleValueExtendedProperties".into(), json!(props));
            }
        }
        Value::Object(m)
    }
}
