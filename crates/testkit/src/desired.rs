//! Desired-state records and Graph event JSON helpers for the tests of the stages that consume
//! `<prefix>.sync.desired` (the graph sink, the reconciler).

use serde_json::Value;
use vocabulary::records::{DesiredContent, DesiredItem, UpsertOrDelete};
use vocabulary::ReservationKind;

/// Microseconds of an RFC 3339 instant.
///
/// # Panics
///
/// On a malformed instant: the input is a literal written in a test, so a typo there must fail the test loudly
/// (naming the literal) rather than feed it a made-up time.
pub fn micros(at: &str) -> i64 {
    match chrono::DateTime::parse_from_rfc3339(at) {
        Ok(instant) => instant.timestamp_micros(),
        Err(err) => panic!("test instant {at:?} is not RFC 3339: {err}"),
    }
}

/// An upsert of reservation `id` in `mailbox`, 2030-01-`day` from `hour`:00Z to `hour+1`:30Z; its content hash
/// is derived from the subject and the time, so equal inputs give equal hashes.
pub fn upsert(mailbox: &str, kind: ReservationKind, id: i32, subject: &str, day: u32, hour: u32) -> DesiredItem {
    DesiredItem {
        op: UpsertOrDelete::Upsert,
        mailbox: mailbox.into(),
        resource_id: 1,
        item_key: format!("{}:{id}", kind.as_str()),
        kind,
        reservation_id: id,
        priority: i32::from(kind.priority()),
        content_hash: format!("{subject}-{day}-{hour}"),
        content: Some(DesiredContent {
            subject: subject.into(),
            body: Some(format!("about {subject}")),
            start: micros(&format!("2030-01-{day:02}T{hour:02}:00:00Z")),
            end: micros(&format!("2030-01-{day:02}T{:02}:30:00Z", hour + 1)),
            time_zone: "Europe/Oslo".into(),
            is_all_day: false,
            show_as: "busy".into(),
            sensitivity: "normal".into(),
            location: Some("Hall".into()),
            categories: vec!["Booking".into()],
        }),
        commit_lsn: 1,
        source_committed_at: None,
        rewrite: false,
    }
}

/// The delete of an item.
pub fn delete(item: &DesiredItem) -> DesiredItem {
    DesiredItem { op: UpsertOrDelete::Delete, content: None, content_hash: "deleted".into(), ..item.clone() }
}

/// The value of an extended property (by id, case-insensitively) in Graph's JSON of an event.
pub fn tag<'a>(event: &'a Value, id: &str) -> Option<&'a str> {
    event["singleValueExtendedProperties"]
        .as_array()?
        .iter()
        .find(|p| p["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(id)))?["value"]
        .as_str()
}
