//! The Avro records of the pipeline's own topics, as Rust types.
//!
//! The `.avsc` files in the repository's `schemas/` folder are the contract (analytics consumers read them);
//! this module compiles them in, so the Rust types and the published schemas cannot drift apart: a field the
//! types have and the schema lacks fails the round-trip tests below, and so does the reverse.
//!
//! Times: instants are `i64` microseconds (or milliseconds where the field says so) since the Unix epoch, UTC;
//! booking-system wall-clock times are `i64` microseconds of Europe/Oslo local time (`local-timestamp-micros`).

use std::sync::OnceLock;

use apache_avro::types::Value;
use apache_avro::Schema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::ReservationKind;

/// A value that does not fit its schema, or an Avro value that is not the record expected.
#[derive(Debug, Error)]
#[error("{record}: {message}")]
pub struct RecordError {
    /// The record type.
    pub record: &'static str,
    /// What went wrong.
    pub message: String,
}

/// A record with a schema from `schemas/`.
pub trait AvroRecord: Serialize + DeserializeOwned {
    /// The record's name, for messages.
    const NAME: &'static str;
    /// The schema, parsed once.
    fn schema() -> &'static Schema;

    /// This record as an Avro value resolved against its schema (ready for encoding).
    fn to_avro(&self) -> Result<Value, RecordError> {
        let error = |message: String| RecordError { record: Self::NAME, message };
        let value = apache_avro::to_value(self).map_err(|err| error(err.to_string()))?;
        value.resolve(Self::schema()).map_err(|err| error(err.to_string()))
    }

    /// The record from a decoded Avro value.
    fn from_avro(value: Value) -> Result<Self, RecordError> {
        apache_avro::from_value(&value).map_err(|err| RecordError { record: Self::NAME, message: err.to_string() })
    }
}

macro_rules! avro_record {
    ($type:ty, $file:literal) => {
        impl AvroRecord for $type {
            const NAME: &'static str = stringify!($type);
            fn schema() -> &'static Schema {
                static SCHEMA: OnceLock<Schema> = OnceLock::new();
                SCHEMA.get_or_init(|| {
                    // The file is part of this build and checked by the tests: it always parses.
                    #[allow(clippy::expect_used)]
                    Schema::parse_str(include_str!(concat!("../../../schemas/", $file))).expect(concat!(
                        "schemas/",
                        $file,
                        " is valid Avro"
                    ))
                })
            }
        }
    };
}

/// The schema files of the pipeline's own topics, by file name (the CDC envelopes are generated per table).
pub const SCHEMA_FILES: &[(&str, &str)] = &[
    ("graph_event.avsc", include_str!("../../../schemas/graph_event.avsc")),
    ("reservation.avsc", include_str!("../../../schemas/reservation.avsc")),
    ("desired_item.avsc", include_str!("../../../schemas/desired_item.avsc")),
    ("import_record.avsc", include_str!("../../../schemas/import_record.avsc")),
    ("dead_letter.avsc", include_str!("../../../schemas/dead_letter.avsc")),
];

/// Whether a keyed record says "this exists as given" or "this is gone".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpsertOrDelete {
    /// The item exists with the content given.
    Upsert,
    /// The item is gone.
    Delete,
}

/// `roomsync.graph.events`: an Outlook room-calendar event as the Graph source saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphEvent {
    /// Upsert or delete.
    pub op: UpsertOrDelete,
    /// The room mailbox.
    pub mailbox: String,
    /// Graph event id (immutable id).
    pub event_id: String,
    /// When roomsync read it, ms since the epoch.
    pub observed_at: i64,
    /// The event; `None` for deletes.
    pub event: Option<GraphEventBody>,
}
avro_record!(GraphEvent, "graph_event.avsc");

/// The normalised fields of an Outlook event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphEventBody {
    /// Graph changeKey.
    pub change_key: Option<String>,
    /// iCalendar UID.
    pub ical_uid: Option<String>,
    /// Subject.
    pub subject: Option<String>,
    /// Start instant, µs since the epoch (UTC).
    pub start: i64,
    /// End instant, µs since the epoch (UTC).
    pub end: i64,
    /// The organizer's time zone.
    pub time_zone: Option<String>,
    /// All-day event.
    pub is_all_day: bool,
    /// Cancelled meeting.
    pub is_cancelled: bool,
    /// free, tentative, busy, oof, workingElsewhere, unknown.
    pub show_as: String,
    /// normal, personal, private, confidential.
    pub sensitivity: String,
    /// singleInstance, occurrence, exception, seriesMaster.
    pub event_type: String,
    /// The series master of an occurrence or exception.
    pub series_master_id: Option<String>,
    /// The organizer.
    pub organizer: Option<EmailAddress>,
    /// The attendees.
    pub attendees: Vec<Attendee>,
    /// Outlook categories.
    pub categories: Vec<String>,
    /// createdDateTime, ms since the epoch.
    pub created: Option<i64>,
    /// lastModifiedDateTime, ms since the epoch.
    pub last_modified: Option<i64>,
    /// transactionId, when the creator set one.
    pub transaction_id: Option<String>,
    /// roomsync's extended properties.
    pub tags: RoomsyncTags,
}

/// A name and address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailAddress {
    /// Display name.
    pub name: Option<String>,
    /// SMTP address.
    pub address: Option<String>,
}

/// An attendee of an Outlook event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attendee {
    /// Who.
    pub email: EmailAddress,
    /// required, optional, resource.
    pub attendee_type: String,
    /// Their response, e.g. accepted.
    pub response: Option<String>,
}

/// The single-value extended properties roomsync writes on its events; all `None` on Outlook-origin events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomsyncTags {
    /// BookingSystemType (the earlier PHP integration's property): event, booking, allocation.
    pub booking_system_type: Option<String>,
    /// BookingSystemId (the earlier PHP integration's property): the reservation id.
    pub booking_system_id: Option<String>,
    /// roomsync's item key.
    pub item_key: Option<String>,
    /// Hash of the content roomsync wrote.
    pub content_hash: Option<String>,
}

/// `roomsync.reservations`: one booking-system reservation in one resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reservation {
    /// Upsert or delete.
    pub op: UpsertOrDelete,
    /// Event, booking or allocation.
    pub kind: ReservationKind,
    /// The reservation's id in its table.
    pub reservation_id: i32,
    /// The resource (room) it occupies.
    pub resource_id: i32,
    /// Start, Europe/Oslo wall clock, µs since 1970-01-01T00:00 local.
    pub start_local: i64,
    /// End, Europe/Oslo wall clock, µs since 1970-01-01T00:00 local.
    pub end_local: i64,
    /// The title the booking system shows.
    pub title: String,
    /// Description; `None` for private events.
    pub description: Option<String>,
    /// Organizer; `None` for private events.
    pub organizer: Option<String>,
    /// Contact name; `None` for private events.
    pub contact_name: Option<String>,
    /// Contact e-mail; `None` for private events.
    pub contact_email: Option<String>,
    /// Contact phone; `None` for private events.
    pub contact_phone: Option<String>,
    /// Public (is_public = 1).
    pub is_public: bool,
    /// Building name as copied into the reservation.
    pub building_name: Option<String>,
    /// Resource name.
    pub resource_name: Option<String>,
    /// Season of bookings and allocations.
    pub season_id: Option<i32>,
    /// The application it came from.
    pub application_id: Option<i32>,
    /// Commit LSN of the source transaction.
    pub commit_lsn: i64,
    /// Commit time of the source transaction, ms since the epoch.
    pub commit_ts_ms: i64,
}
avro_record!(Reservation, "reservation.avsc");

/// `roomsync.sync.desired`: what one room calendar must hold for one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredItem {
    /// Upsert or delete.
    pub op: UpsertOrDelete,
    /// The room mailbox.
    pub mailbox: String,
    /// The resource.
    pub resource_id: i32,
    /// roomsync's key of the item within the room.
    pub item_key: String,
    /// Event, booking or allocation.
    pub kind: ReservationKind,
    /// The reservation's id.
    pub reservation_id: i32,
    /// 1 event, 2 booking, 3 allocation.
    pub priority: i32,
    /// Hash of the content.
    pub content_hash: String,
    /// The content; `None` for deletes.
    pub content: Option<DesiredContent>,
    /// Highest source commit LSN behind this state.
    pub commit_lsn: i64,
    /// Commit time (Unix ms) of the booking-system transaction that caused this record, for the end-to-end
    /// latency; `None` when time passing, an Outlook edit or a repair caused it.
    #[serde(default)]
    pub source_committed_at: Option<i64>,
    /// Write the content even where the mapping table says it is in place: the resolver reverts an Outlook
    /// edit (the content is unchanged, so its hash is too). Carried in the record itself, so it cannot race
    /// with a write of the item the sink has in flight.
    #[serde(default)]
    pub rewrite: bool,
}
avro_record!(DesiredItem, "desired_item.avsc");

/// The content of a room-calendar event roomsync writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredContent {
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub body: Option<String>,
    /// Start instant, µs since the epoch (UTC).
    pub start: i64,
    /// End instant, µs since the epoch (UTC).
    pub end: i64,
    /// IANA time zone to write it in.
    pub time_zone: String,
    /// All-day event.
    pub is_all_day: bool,
    /// showAs.
    pub show_as: String,
    /// sensitivity.
    pub sensitivity: String,
    /// Location display name.
    pub location: Option<String>,
    /// Outlook categories.
    pub categories: Vec<String>,
}

impl DesiredContent {
    /// Whether a calendar event with these observable fields shows this content: the same subject, instants
    /// (µs) and all-day flag, and not cancelled. Body, location, categories and Graph's own rewriting of them
    /// are not compared. The one rule for "the calendar holds what roomsync wrote", used by the resolver (an
    /// echo or an edit?) and the graph sink (an event found or answered, edited since it was written?).
    pub fn is_shown_by(
        &self,
        subject: Option<&str>,
        start: i64,
        end: i64,
        is_all_day: bool,
        is_cancelled: bool,
    ) -> bool {
        subject.unwrap_or_default() == self.subject
            && start == self.start
            && end == self.end
            && is_all_day == self.is_all_day
            && !is_cancelled
    }
}

/// Upsert or cancel of an imported Outlook booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImportOp {
    /// Import or update.
    Upsert,
    /// The Outlook booking is gone: cancel the imported reservation.
    Cancel,
}

/// `roomsync.sync.imports`: an Outlook-origin booking to import into the booking system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportRecord {
    /// Upsert or cancel.
    pub op: ImportOp,
    /// The room mailbox.
    pub mailbox: String,
    /// The resource the mailbox maps to.
    pub resource_id: i32,
    /// Graph event id.
    pub event_id: String,
    /// Graph changeKey.
    pub change_key: Option<String>,
    /// iCalendar UID.
    pub ical_uid: Option<String>,
    /// Subject.
    pub subject: Option<String>,
    /// Start instant, µs since the epoch (UTC).
    pub start: i64,
    /// End instant, µs since the epoch (UTC).
    pub end: i64,
    /// All-day event.
    pub is_all_day: bool,
    /// Organizer's name.
    pub organizer_name: Option<String>,
    /// Organizer's address.
    pub organizer_address: Option<String>,
}
avro_record!(ImportRecord, "import_record.avsc");

/// `roomsync.deadletter`: something a stage could not process, with the reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The stage that gave up.
    pub stage: String,
    /// Machine-readable class.
    pub error_kind: String,
    /// What went wrong, for an operator.
    pub reason: String,
    /// Topic of the input record, if any.
    pub source_topic: Option<String>,
    /// Partition of the input record.
    pub source_partition: Option<i32>,
    /// Offset of the input record.
    pub source_offset: Option<i64>,
    /// Key of the input record.
    #[serde(with = "optional_bytes")]
    pub source_key: Option<Vec<u8>>,
    /// Value of the input record.
    #[serde(with = "optional_bytes")]
    pub source_value: Option<Vec<u8>>,
    /// Where it happened: table, lsn, mailbox, item key, ...
    pub context: std::collections::BTreeMap<String, String>,
    /// When, ms since the epoch.
    pub occurred_at: i64,
}
avro_record!(DeadLetter, "dead_letter.avsc");

/// Avro `bytes` through serde: apache-avro maps `serde_bytes`-style byte buffers to Avro bytes.
mod optional_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Vec<u8>>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(bytes) => serializer.serialize_some(&Bytes(bytes)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<ByteBuf>::deserialize(deserializer).map(|bytes| bytes.map(|b| b.0))
    }

    struct Bytes<'a>(&'a [u8]);

    impl serde::Serialize for Bytes<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.serialize_bytes(self.0)
        }
    }

    struct ByteBuf(Vec<u8>);

    impl<'de> Deserialize<'de> for ByteBuf {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Visitor;
            impl<'de> serde::de::Visitor<'de> for Visitor {
                type Value = ByteBuf;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<ByteBuf, E> {
                    Ok(ByteBuf(v.to_vec()))
                }
                fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
                    Ok(ByteBuf(v))
                }
                fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<ByteBuf, A::Error> {
                    let mut out = Vec::new();
                    while let Some(b) = seq.next_element::<u8>()? {
                        out.push(b);
                    }
                    Ok(ByteBuf(out))
                }
            }
            deserializer.deserialize_bytes(Visitor)
        }
    }
}

#[cfg(test)]
mod tests;
