//! `outlook_calendar_mapping`: the single authority on which roomsync item is which Graph event.
//!
//! Invariants:
//! - an intent (`create` with its transactionId, `update`, `delete`) is committed before the Graph write it
//!   announces, so after a crash the replay knows a write may have happened and repeats it safely (same
//!   transactionId; PATCH and DELETE are idempotent);
//! - a result (event id, change key, content hash, status) is committed only in the transaction that also moves
//!   the consumer offsets (see `offsets`), so a record is either fully applied or replayed, never half;
//! - rows are keyed by (mailbox, item key), which the table makes unique.

use tokio_postgres::{GenericClient, Row};
use uuid::Uuid;
use vocabulary::records::DesiredItem;

use crate::error::SinkError;

/// What the table says about one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingRow {
    /// event, booking, allocation.
    pub reservation_type: String,
    /// The reservation id.
    pub reservation_id: i32,
    /// The resource.
    pub resource_id: i32,
    /// 1..3.
    pub priority_level: i16,
    /// Graph event id, once known.
    pub event_id: Option<String>,
    /// pending, synced, error, parked, deleted, conflict.
    pub sync_status: String,
    /// Hash of the content last written (or parked).
    pub content_hash: Option<String>,
    /// transactionId of the current generation.
    pub transaction_id: Uuid,
    /// none, create, update, delete.
    pub intent: String,
}

/// The identifying columns of a row, from a desired item or from the row itself (tombstones carry none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowIdentity {
    /// event, booking, allocation.
    pub reservation_type: String,
    /// The reservation id.
    pub reservation_id: i32,
    /// The resource.
    pub resource_id: i32,
    /// 1..3.
    pub priority_level: i16,
}

impl RowIdentity {
    /// The identity a desired item gives its row.
    pub fn of(item: &DesiredItem) -> Self {
        RowIdentity {
            reservation_type: item.kind.as_str().to_owned(),
            reservation_id: item.reservation_id,
            resource_id: item.resource_id,
            priority_level: i16::try_from(item.priority).unwrap_or_else(|_| item.kind.priority()),
        }
    }

    /// The identity stored in a row.
    pub fn from_row(row: &MappingRow) -> Self {
        RowIdentity {
            reservation_type: row.reservation_type.clone(),
            reservation_id: row.reservation_id,
            resource_id: row.resource_id,
            priority_level: row.priority_level,
        }
    }
}

/// The final state of one item to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The event exists with the desired content.
    Synced {
        /// Graph event id.
        event_id: String,
        /// changeKey after roomsync's write (or of the adopted event).
        change_key: Option<String>,
        /// iCalUId.
        ical_uid: Option<String>,
        /// The hash written.
        content_hash: String,
    },
    /// The event is gone.
    Deleted,
    /// Graph refused the item for good: parked with the reason until its content changes.
    Parked {
        /// The hash that was refused (a later record with the same hash is skipped).
        content_hash: Option<String>,
        /// Why.
        reason: String,
    },
}

fn row_of(row: &Row) -> MappingRow {
    MappingRow {
        reservation_type: row.get("reservation_type"),
        reservation_id: row.get("reservation_id"),
        resource_id: row.get("resource_id"),
        priority_level: row.get("priority_level"),
        event_id: row.get("outlook_event_id"),
        sync_status: row.get("sync_status"),
        content_hash: row.get("content_hash"),
        transaction_id: row.get("transaction_id"),
        intent: row.get("intent"),
    }
}

/// The rows of `item_keys` in `mailbox`.
pub async fn load(
    db: &impl GenericClient,
    mailbox: &str,
    item_keys: &[String],
) -> Result<Vec<(String, MappingRow)>, SinkError> {
    let rows = db
        .query(
            "select item_key, reservation_type, reservation_id, resource_id, priority_level, outlook_event_id,
                    sync_status, content_hash, transaction_id, intent
             from outlook_calendar_mapping where outlook_item_id = $1 and item_key = any($2)",
            &[&mailbox, &item_keys],
        )
        .await
        .map_err(SinkError::pg("loading mapping rows"))?;
    Ok(rows.iter().map(|row| (row.get("item_key"), row_of(row))).collect())
}

/// Records that a write is about to happen (`intent` = create, update or delete) with the transactionId the
/// item's create uses. A create intent also makes the row `pending`: its event id is not known until the
/// result is committed.
pub async fn record_intent(
    db: &impl GenericClient,
    mailbox: &str,
    item_key: &str,
    identity: &RowIdentity,
    intent: &str,
    transaction_id: Uuid,
) -> Result<(), SinkError> {
    db.execute(
        "insert into outlook_calendar_mapping as m
             (reservation_type, reservation_id, resource_id, outlook_item_id, priority_level, item_key,
              transaction_id, intent, intent_at, sync_status, attempts)
         values ($1, $2, $3, $4, $5, $6, $7, $8, now(), 'pending', 1)
         on conflict (outlook_item_id, item_key) do update set
             transaction_id = excluded.transaction_id,
             intent = excluded.intent,
             intent_at = now(),
             attempts = m.attempts + 1,
             updated_at = now(),
             sync_status = case when excluded.intent = 'create' then 'pending' else m.sync_status end,
             -- a create replaces whatever event the row knew (it was deleted or vanished): forget it now, so a
             -- replay looks the new one up by its tags instead of updating the old id
             outlook_event_id = case when excluded.intent = 'create' then null else m.outlook_event_id end",
        &[
            &identity.reservation_type,
            &identity.reservation_id,
            &identity.resource_id,
            &mailbox,
            &identity.priority_level,
            &item_key,
            &transaction_id,
            &intent,
        ],
    )
    .await
    .map_err(SinkError::pg("recording an intent"))?;
    Ok(())
}

/// Commits the outcome of one item and clears its intent.
pub async fn settle(
    db: &impl GenericClient,
    mailbox: &str,
    item_key: &str,
    identity: &RowIdentity,
    transaction_id: Uuid,
    settled: &Settled,
) -> Result<(), SinkError> {
    let (status, event_id, change_key, ical_uid, hash, error) = match settled {
        Settled::Synced { event_id, change_key, ical_uid, content_hash } => (
            "synced",
            Some(event_id.as_str()),
            change_key.as_deref(),
            ical_uid.as_deref(),
            Some(content_hash.as_str()),
            None,
        ),
        Settled::Deleted => ("deleted", None, None, None, None, None),
        Settled::Parked { content_hash, reason } => {
            ("parked", None, None, None, content_hash.as_deref(), Some(reason.as_str()))
        }
    };
    let parked = matches!(settled, Settled::Parked { .. });
    db.execute(
        "insert into outlook_calendar_mapping as m
             (reservation_type, reservation_id, resource_id, outlook_item_id, priority_level, item_key,
              transaction_id, outlook_event_id, change_key, ical_uid, content_hash, sync_status, error_message,
              intent, intent_at, last_sync_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'none', null, now())
         on conflict (outlook_item_id, item_key) do update set
             reservation_type = excluded.reservation_type,
             reservation_id = excluded.reservation_id,
             resource_id = excluded.resource_id,
             priority_level = excluded.priority_level,
             transaction_id = excluded.transaction_id,
             -- a parked update keeps the event it could not change
             outlook_event_id = case when $14 then m.outlook_event_id else excluded.outlook_event_id end,
             change_key = case when $14 then m.change_key else excluded.change_key end,
             ical_uid = coalesce(excluded.ical_uid, m.ical_uid),
             content_hash = excluded.content_hash,
             sync_status = excluded.sync_status,
             error_message = excluded.error_message,
             intent = 'none',
             intent_at = null,
             last_sync_at = now(),
             updated_at = now()",
        &[
            &identity.reservation_type,
            &identity.reservation_id,
            &identity.resource_id,
            &mailbox,
            &identity.priority_level,
            &item_key,
            &transaction_id,
            &event_id,
            &change_key,
            &ical_uid,
            &hash,
            &status,
            &error,
            &parked,
        ],
    )
    .await
    .map_err(SinkError::pg("settling a mapping row"))?;
    Ok(())
}
