//! What a room really holds: its events over the sync window with roomsync's tags, and its mapping rows.
//!
//! Invariants: the calendar is read before the mapping rows, so an event the sink creates while a room is
//! being read is either absent from the listing or already covered by a row (the reverse order could see the
//! event without its row and take it for a stranger); reading never writes anything anywhere.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use graph_client::properties::{BOOKING_SYSTEM_ID, BOOKING_SYSTEM_TYPE, ROOMSYNC_ITEM_KEY};
use graph_client::{BatchRequest, DateTimeTimeZone, ErrorClass, Event, GraphClient};
use tokio_postgres::GenericClient;
use tracing::debug;
use vocabulary::rooms::{ActiveRooms, MAPPING_ROWS_QUERY};

use crate::error::Error;

/// A mapping row of `outlook_calendar_mapping`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    /// roomsync's key of the item within the room.
    pub item_key: String,
    /// Graph event id, once known.
    pub event_id: Option<String>,
    /// pending, synced, error, parked, deleted, conflict.
    pub sync_status: String,
    /// Hash of the content last written.
    pub content_hash: Option<String>,
    /// none, create, update, delete.
    pub intent: String,
}

impl Row {
    /// Whether the row claims a live event (anything but a finished delete).
    pub fn claims(&self, event_id: &str) -> bool {
        self.event_id.as_deref() == Some(event_id) && self.sync_status != "deleted"
    }

    /// Whether the sink is in the middle of writing this item.
    pub fn busy(&self) -> bool {
        self.intent != "none" || self.sync_status == "pending"
    }
}

/// An event as read from Graph, reduced to what the comparison needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Observed {
    /// Graph event id.
    pub id: String,
    /// Subject.
    pub subject: Option<String>,
    /// Start as Graph answered it (UTC, or an all-day event's floating midnight).
    pub start: Option<DateTimeTimeZone>,
    /// End as Graph answered it.
    pub end: Option<DateTimeTimeZone>,
    /// All-day flag.
    pub is_all_day: Option<bool>,
    /// The item key its tags name (`RoomsyncItemKey`, or the PHP integration's `<type>:<id>`); `None` for an
    /// Outlook-origin event.
    pub tagged_key: Option<String>,
}

impl Observed {
    pub(crate) fn of(event: &Event) -> Option<Self> {
        let id = event.id.clone()?;
        let tagged_key = match (event.extended(ROOMSYNC_ITEM_KEY), event.extended(BOOKING_SYSTEM_TYPE)) {
            (Some(key), _) if !key.is_empty() => Some(key.to_owned()),
            (_, Some(kind)) => event.extended(BOOKING_SYSTEM_ID).map(|id| format!("{kind}:{id}")),
            _ => None,
        };
        Some(Observed {
            id,
            subject: event.subject.clone(),
            start: event.start.clone(),
            end: event.end.clone(),
            is_all_day: event.is_all_day,
            tagged_key,
        })
    }
}

/// One room's calendar as read.
#[derive(Debug, Default)]
pub(crate) struct Calendar {
    /// Events overlapping the window, with their tags.
    pub in_window: Vec<Observed>,
    /// Mapped events outside the window that still exist (e.g. moved away by a person).
    pub elsewhere: HashMap<String, Observed>,
    /// Mapped event ids Graph answered 404 for.
    pub gone: HashSet<String>,
}

impl Calendar {
    /// The observed event with this id, wherever it was found.
    pub fn find(&self, id: &str) -> Option<&Observed> {
        self.in_window.iter().find(|e| e.id == id).or_else(|| self.elsewhere.get(id))
    }
}

/// The active room mailboxes of `bb_resource_outlook_item`, by the one active-room rule ([`vocabulary::rooms`]).
pub(crate) async fn active_rooms(db: &impl GenericClient) -> Result<Vec<String>, Error> {
    let rows = db.query(MAPPING_ROWS_QUERY, &[]).await.map_err(Error::pg("listing the active rooms"))?;
    let rooms = ActiveRooms::from_rows(rows.iter().map(|row| (row.get(0), row.get(1), row.get(2))));
    Ok(rooms.mailboxes().map(str::to_owned).collect())
}

/// The mapping rows of booking-system items (not Outlook-origin imports) in `mailbox`.
pub(crate) async fn mapping_rows(db: &impl GenericClient, mailbox: &str) -> Result<Vec<Row>, Error> {
    let rows = db
        .query(
            "select item_key, outlook_event_id, sync_status, content_hash, intent
             from outlook_calendar_mapping where outlook_item_id = $1 and reservation_type <> 'outlook'",
            &[&mailbox],
        )
        .await
        .map_err(Error::pg("loading mapping rows"))?;
    Ok(rows
        .iter()
        .map(|r| Row {
            item_key: r.get(0),
            event_id: r.get(1),
            sync_status: r.get(2),
            content_hash: r.get(3),
            intent: r.get(4),
        })
        .collect())
}

/// Reads the room's events in `[from, to)` with their tags, and also fetches the `mapped` event ids that are
/// not in that window (404 = gone).
pub(crate) async fn read_calendar(
    graph: &GraphClient,
    mailbox: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    mapped: &[String],
) -> Result<Calendar, Error> {
    let view = graph.calendar_view(mailbox, from, to).await?;
    let in_view: HashSet<String> = view.iter().filter_map(|e| e.id.clone()).collect();
    let outside: Vec<String> = mapped.iter().filter(|id| !in_view.contains(*id)).cloned().collect();
    // calendarView answers without extended properties: fetch each event with its tags, 20 per $batch.
    let mut ids: Vec<String> = view.iter().filter_map(|e| e.id.clone()).collect();
    ids.sort();
    ids.dedup();
    let first_outside = ids.len();
    ids.extend(outside);
    let requests = BatchRequest::tagged_gets(mailbox, &ids);
    let answers = if requests.is_empty() { Vec::new() } else { graph.batch(mailbox, requests).await? };
    let mut calendar = Calendar::default();
    for (n, (id, answer)) in ids.iter().zip(answers).enumerate() {
        let from_view = n < first_outside;
        match answer.json::<Event>() {
            Ok(event) => {
                let Some(observed) = Observed::of(&event) else { continue };
                if from_view {
                    calendar.in_window.push(observed);
                } else {
                    calendar.elsewhere.insert(id.clone(), observed);
                }
            }
            // Deleted between the listing and the read: for a listed event there is simply nothing there.
            Err(err) if err.classify() == ErrorClass::NotFound => {
                calendar.gone.insert(id.clone());
            }
            Err(err) => return Err(Error::Graph(err)),
        }
    }
    debug!(events = calendar.in_window.len(), elsewhere = calendar.elsewhere.len(), "room calendar read");
    Ok(calendar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_name_the_item_and_untagged_events_are_outlook_origin() {
        let mut event = Event { id: Some("e1".into()), ..Event::default() };
        assert_eq!(Observed::of(&event).and_then(|o| o.tagged_key), None);
        event.set_extended(BOOKING_SYSTEM_TYPE, "booking");
        event.set_extended(BOOKING_SYSTEM_ID, "17");
        assert_eq!(Observed::of(&event).and_then(|o| o.tagged_key).as_deref(), Some("booking:17"));
        event.set_extended(ROOMSYNC_ITEM_KEY, "booking:17:2");
        assert_eq!(Observed::of(&event).and_then(|o| o.tagged_key).as_deref(), Some("booking:17:2"));
        assert_eq!(Observed::of(&Event::default()), None);
    }
}
