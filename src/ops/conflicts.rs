//! Outlook-origin bookings that overlap a booking-system reservation, recorded for review by the resolver and
//! the graph sink (the table's one writer is [`migrations::conflicts`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

/// One recorded conflict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// Id.
    pub id: i64,
    /// Room mailbox.
    pub mailbox: String,
    /// Resource id.
    pub resource_id: Option<i32>,
    /// The Outlook event.
    pub outlook_event_id: String,
    /// The booking-system reservation it overlaps: event, booking or allocation.
    pub reservation_type: String,
    /// Its id.
    pub reservation_id: i32,
    /// Overlap start.
    pub starts_at: DateTime<Utc>,
    /// Overlap end.
    pub ends_at: DateTime<Utc>,
    /// When it was found.
    pub detected_at: DateTime<Utc>,
    /// open, declined or resolved.
    pub status: String,
    /// What the reviewer decided.
    pub resolution: Option<String>,
    /// When the Outlook booking was declined in the room calendar (policy decline).
    pub declined_at: Option<DateTime<Utc>>,
    /// Why Graph refused the decline, when it did (cleared by an operator to retry).
    pub decline_error: Option<String>,
}

/// Conflicts, newest first; only open ones unless `all`.
pub async fn list(client: &Client, all: bool) -> Result<Vec<Conflict>, tokio_postgres::Error> {
    let rows = client
        .query(
            "select id, outlook_item_id, resource_id, outlook_event_id, reservation_type, reservation_id,
                    starts_at, ends_at, detected_at, status, resolution, declined_at, decline_error
             from roomsync_conflicts where $1 or status = 'open' order by detected_at desc, id desc",
            &[&all],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| Conflict {
            id: row.get(0),
            mailbox: row.get(1),
            resource_id: row.get(2),
            outlook_event_id: row.get(3),
            reservation_type: row.get(4),
            reservation_id: row.get(5),
            starts_at: row.get(6),
            ends_at: row.get(7),
            detected_at: row.get(8),
            status: row.get(9),
            resolution: row.get(10),
            declined_at: row.get(11),
            decline_error: row.get(12),
        })
        .collect())
}

/// Marks a conflict resolved with a note; false when there is no unresolved conflict with that id.
pub async fn resolve(client: &Client, id: i64, note: &str) -> Result<bool, tokio_postgres::Error> {
    migrations::conflicts::resolve(client, id, note).await
}
