//! What an Outlook room-calendar event means for the sync: roomsync's own write coming back (echo), an edit of
//! a roomsync event in Outlook, or an Outlook-origin booking to import or to record as a conflict.
//!
//! ```text
//!  GraphEvent --ours? (tags or mapping row)--> desired content equal or changeKey stored -> Echo
//!      |                                      \-> otherwise -> Edited (policy: revert = re-emit desired)
//!      +--imported before (mapping row `outlook`)--> Import (update, or cancel unless it ended before the window)
//!      +--Outlook-origin--> overlaps a reservation of the room? -> Conflict : Import
//! ```
//! Invariants: roomsync never imports its own events (recognised by its extended properties, its mapping rows
//! and its stored changeKey), so nothing loops; the booking system is the authority, so an overlapping
//! Outlook-origin booking never takes a slot from a reservation; cancelled and free events occupy nothing; an
//! import whose booking ended before the window keeps its state for good: the Graph source reports an event
//! that left the window like a deleted one, so only a deletion of a booking not yet over cancels its import.

use vocabulary::records::{GraphEvent, GraphEventBody, ImportOp, ImportRecord, UpsertOrDelete};
use vocabulary::ReservationKind;

use crate::stage2::timeline::Item;
use crate::stage2::window::Window;

/// roomsync's mapping row of one Outlook event (outlook_calendar_mapping, as far as the resolver needs it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingRow {
    /// `event`, `booking`, `allocation` or `outlook` (an import).
    pub reservation_type: String,
    /// The reservation id (for imports: the bb_event created from the Outlook booking).
    pub reservation_id: i32,
    /// The item key in the room.
    pub item_key: String,
    /// The changeKey Graph returned after roomsync's last write.
    pub change_key: Option<String>,
    /// For an import: when the Outlook booking ends (µs UTC, `ends_at`); unknown for rows written before
    /// roomsync kept it.
    pub ends_at: Option<i64>,
}

/// A reservation an Outlook-origin booking overlaps.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConflictHit {
    /// Its kind.
    pub kind: ReservationKind,
    /// Its id.
    pub reservation_id: i32,
    /// Start of the overlap, µs since the epoch.
    pub start: i64,
    /// End of the overlap, µs since the epoch.
    pub end: i64,
}

/// The decision about one Outlook event.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Nothing to do (reason for the logs).
    Ignore(&'static str),
    /// roomsync's own write coming back.
    Echo,
    /// A roomsync event edited or deleted in Outlook.
    Edited {
        /// Its item key.
        item_key: String,
    },
    /// An import record to emit (upsert or cancel).
    Import(ImportRecord),
    /// An Outlook-origin booking that overlaps reservations of the room.
    Conflict(Vec<ConflictHit>),
}

/// What the classification needs to know about the room.
#[derive(Debug, Clone, Copy)]
pub struct RoomView<'a> {
    /// The resource mapped to the mailbox; `None` when the mailbox is not (or no longer) mapped.
    pub resource_id: Option<i32>,
    /// The room's reservations as timeline items (imports excluded).
    pub reservations: Reservations<'a>,
    /// The sync window.
    pub window: Window,
}

/// A room's reservations as timeline items: given, or worked out when a classification first needs them (only a
/// booking made in Outlook is compared with them; roomsync's own events, most of what the Graph source reports,
/// never are).
#[derive(Clone, Copy)]
pub enum Reservations<'a> {
    /// Known already.
    Items(&'a [Item]),
    /// Worked out on demand.
    Lazy(&'a dyn Fn() -> &'a [Item]),
}

impl<'a> Reservations<'a> {
    fn get(self) -> &'a [Item] {
        match self {
            Reservations::Items(items) => items,
            Reservations::Lazy(items) => items(),
        }
    }
}

impl std::fmt::Debug for Reservations<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reservations::Items(items) => f.debug_tuple("Items").field(items).finish(),
            Reservations::Lazy(_) => f.write_str("Lazy"),
        }
    }
}

/// The observable content of an event, to compare with what roomsync wants there.
pub fn matches_desired(body: &GraphEventBody, desired: &vocabulary::records::DesiredContent) -> bool {
    desired.is_shown_by(body.subject.as_deref(), body.start, body.end, body.is_all_day, body.is_cancelled)
}

fn import_record(op: ImportOp, event: &GraphEvent, resource_id: i32, body: &GraphEventBody) -> ImportRecord {
    ImportRecord {
        op,
        mailbox: event.mailbox.clone(),
        resource_id,
        event_id: event.event_id.clone(),
        change_key: body.change_key.clone(),
        ical_uid: body.ical_uid.clone(),
        subject: body.subject.clone(),
        start: body.start,
        end: body.end,
        is_all_day: body.is_all_day,
        organizer_name: body.organizer.as_ref().and_then(|o| o.name.clone()),
        organizer_address: body.organizer.as_ref().and_then(|o| o.address.clone()),
    }
}

/// The cancellation of an imported booking known only by its id (the cancel needs nothing else).
fn cancel_without_body(event: &GraphEvent, resource_id: i32) -> ImportRecord {
    ImportRecord {
        op: ImportOp::Cancel,
        mailbox: event.mailbox.clone(),
        resource_id,
        event_id: event.event_id.clone(),
        change_key: None,
        ical_uid: None,
        subject: None,
        start: 0,
        end: 0,
        is_all_day: false,
        organizer_name: None,
        organizer_address: None,
    }
}

/// Events of the earlier PHP integration carry only BookingSystemType/Id: their key is `<type>:<id>`.
fn legacy_key(body: &GraphEventBody) -> Option<String> {
    match (&body.tags.booking_system_type, &body.tags.booking_system_id) {
        (Some(kind), Some(id)) => Some(format!("{}:{}", kind.trim().to_lowercase(), id.trim())),
        _ => None,
    }
}

/// The item key roomsync's tags on the event name (its own key, or the PHP integration's).
fn tagged_key(body: &GraphEventBody) -> Option<String> {
    body.tags.item_key.clone().or_else(|| legacy_key(body))
}

fn is_ours(body: &GraphEventBody) -> bool {
    body.tags.item_key.is_some() || body.tags.booking_system_id.is_some() || body.tags.booking_system_type.is_some()
}

/// Classifies one Outlook event. `mapping` is the mapping row of its event id, `desired` the content roomsync
/// last emitted for the item it maps to, `previous` the last body seen (for deletes).
pub fn classify(
    event: &GraphEvent,
    previous: Option<&GraphEventBody>,
    mapping: Option<&MappingRow>,
    desired: impl Fn(&str) -> Option<vocabulary::records::DesiredContent>,
    room: RoomView<'_>,
) -> Verdict {
    let Some(resource_id) = room.resource_id else { return Verdict::Ignore("mailbox not mapped") };
    let imported = mapping.filter(|m| m.reservation_type == "outlook");
    let ours_by_mapping = mapping.filter(|m| m.reservation_type != "outlook");
    let body = match (event.op, &event.event) {
        (UpsertOrDelete::Upsert, Some(body)) => body,
        _ => {
            // Deleted in Outlook.
            if let Some(row) = ours_by_mapping {
                return match desired(&row.item_key) {
                    Some(_) => Verdict::Edited { item_key: row.item_key.clone() },
                    None => Verdict::Echo,
                };
            }
            let end = previous.map(|b| b.end).or(imported.and_then(|m| m.ends_at));
            if end.is_some_and(|end| room.window.is_past(end)) && previous.is_none_or(|b| !is_ours(b)) {
                return Verdict::Ignore("booking over before the window: its import keeps its state");
            }
            return match (imported, previous) {
                (_, Some(previous)) if !is_ours(previous) => {
                    Verdict::Import(import_record(ImportOp::Cancel, event, resource_id, previous))
                }
                // An imported booking whose last body is not known: the compacted `graph.events` topic keeps only
                // the deletion of an event, so a resolver rebuilt after the compaction never saw the body. The
                // mapping row says it was imported: cancel it all the same.
                (Some(_), None) => Verdict::Import(cancel_without_body(event, resource_id)),
                // roomsync's event (by its tags), deleted before the resolver read the mapping row the sink
                // wrote for it: the same as a deletion of a mapped one.
                (None, Some(previous)) => match tagged_key(previous) {
                    Some(item_key) if desired(&item_key).is_some() => Verdict::Edited { item_key },
                    Some(_) => Verdict::Echo,
                    None => Verdict::Ignore("deleted event unknown to roomsync"),
                },
                _ => Verdict::Ignore("deleted event unknown to roomsync"),
            };
        }
    };
    let item_key =
        body.tags.item_key.clone().or_else(|| ours_by_mapping.map(|m| m.item_key.clone())).or(legacy_key(body));
    if let Some(item_key) = item_key.filter(|_| is_ours(body) || ours_by_mapping.is_some()) {
        if ours_by_mapping.is_some_and(|m| m.change_key.is_some() && m.change_key == body.change_key) {
            return Verdict::Echo;
        }
        return match desired(&item_key) {
            // roomsync wants it gone: the sink deletes it, whatever happened in Outlook.
            None => Verdict::Echo,
            Some(content) if matches_desired(body, &content) => Verdict::Echo,
            Some(_) => Verdict::Edited { item_key },
        };
    }
    let blocks = !body.is_cancelled && body.show_as != "free" && room.window.overlaps(body.start, body.end);
    if imported.is_some() {
        // Imported while the slot was free; a reservation made over it later is a conflict all the same
        // (whichever came first). Its own bb_event is not among the room's reservations.
        let hits = if blocks { overlapping(&room, body) } else { Vec::new() };
        if !hits.is_empty() {
            return Verdict::Conflict(hits);
        }
        return Verdict::Import(import_record(ImportOp::Upsert, event, resource_id, body));
    }
    if body.is_cancelled || body.show_as == "free" {
        return Verdict::Ignore("cancelled or free");
    }
    if !blocks {
        return Verdict::Ignore("outside the sync window");
    }
    let hits = overlapping(&room, body);
    if hits.is_empty() {
        Verdict::Import(import_record(ImportOp::Upsert, event, resource_id, body))
    } else {
        Verdict::Conflict(hits)
    }
}

/// The room's reservations the event overlaps, with the overlapping span.
fn overlapping(room: &RoomView<'_>, body: &GraphEventBody) -> Vec<ConflictHit> {
    room.reservations
        .get()
        .iter()
        .filter(|item| item.end > body.start && item.start < body.end)
        .map(|item| ConflictHit {
            kind: item.kind,
            reservation_id: item.reservation_id,
            start: item.start.max(body.start),
            end: item.end.min(body.end),
        })
        .collect()
}

#[cfg(test)]
#[path = "outlook_tests.rs"]
mod tests;
