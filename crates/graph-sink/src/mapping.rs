//! `outlook_calendar_mapping`: the single authority on which roomsync item is which Graph event.
//!
//! Invariants:
//! - an intent (`create` with its transactionId, `update`, `delete`) is committed before the Graph write it
//!   announces, so after a crash the replay knows a write may have happened and repeats it safely (same
//!   transactionId; PATCH and DELETE are idempotent);
//! - a result (event id, change key, content hash, status) is committed only in the transaction that also moves
//!   the consumer offsets (see `offsets`), so a record is either fully applied or replayed, never half;
//! - rows are keyed by (mailbox, item key), which the table makes unique;
//! - this module is the table's one writer: the sink's intents and results, the rows of imported Outlook
//!   bookings ([`upsert_import`], [`cancel_import`]), and reconcile's compare-and-set resets ([`reset_for_rewrite`],
//!   [`forget_stale_event`], [`reset_parked`]), which change a row only if it is still as the caller read it and
//!   no write is announced on it (`intent = 'none'`).

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

/// An item about to be written: its row, the intent (`create`, `update` or `delete`) and the transactionId the
/// item's create uses.
#[derive(Debug, Clone, Copy)]
pub struct Intent<'a> {
    /// Room mailbox.
    pub mailbox: &'a str,
    /// Item key.
    pub item_key: &'a str,
    /// Identifying columns.
    pub identity: &'a RowIdentity,
    /// create, update or delete.
    pub intent: &'a str,
    /// transactionId of the item's create.
    pub transaction_id: Uuid,
}

/// Records that writes are about to happen, in one statement (rows unique by mailbox and item key). A create
/// intent also makes the row `pending`: its event id is not known until the result is committed.
pub async fn record_intents(db: &impl GenericClient, intents: &[Intent<'_>]) -> Result<(), SinkError> {
    if intents.is_empty() {
        return Ok(());
    }
    let types: Vec<&str> = intents.iter().map(|i| i.identity.reservation_type.as_str()).collect();
    let mailboxes: Vec<&str> = intents.iter().map(|i| i.mailbox).collect();
    let keys: Vec<&str> = intents.iter().map(|i| i.item_key).collect();
    let kinds: Vec<&str> = intents.iter().map(|i| i.intent).collect();
    let ids: Vec<i32> = intents.iter().map(|i| i.identity.reservation_id).collect();
    let resources: Vec<i32> = intents.iter().map(|i| i.identity.resource_id).collect();
    let levels: Vec<i16> = intents.iter().map(|i| i.identity.priority_level).collect();
    let transactions: Vec<Uuid> = intents.iter().map(|i| i.transaction_id).collect();
    db.execute(
        "insert into outlook_calendar_mapping as m
             (reservation_type, reservation_id, resource_id, outlook_item_id, priority_level, item_key,
              transaction_id, intent, intent_at, sync_status, attempts)
         select t, r, res, mb, p, k, tx, i, now(), 'pending', 1
         from unnest($1::text[], $2::int4[], $3::int4[], $4::text[], $5::int2[], $6::text[], $7::uuid[], $8::text[])
              as u(t, r, res, mb, p, k, tx, i)
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
        &[&types, &ids, &resources, &mailboxes, &levels, &keys, &transactions, &kinds],
    )
    .await
    .map_err(SinkError::pg("recording intents"))?;
    Ok(())
}

/// The outcome of one item to commit.
#[derive(Debug, Clone, Copy)]
pub struct Outcome<'a> {
    /// Room mailbox.
    pub mailbox: &'a str,
    /// Item key.
    pub item_key: &'a str,
    /// Identifying columns.
    pub identity: &'a RowIdentity,
    /// transactionId of the item's current generation.
    pub transaction_id: Uuid,
    /// What happened.
    pub settled: &'a Settled,
}

/// An optional text column.
type Text<'a> = Option<&'a str>;

/// Commits the outcomes of items and clears their intents, in one statement (rows unique by mailbox and item
/// key). A parked update keeps the event it could not change.
pub async fn settle_all(db: &impl GenericClient, outcomes: &[Outcome<'_>]) -> Result<(), SinkError> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let n = outcomes.len();
    let (mut status, mut event_id, mut change_key, mut ical_uid, mut hash, mut error) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for o in outcomes {
        let (s, e, c, u, h, r): (&str, Text<'_>, Text<'_>, Text<'_>, Text<'_>, Text<'_>) = match o.settled {
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
        status.push(s);
        event_id.push(e);
        change_key.push(c);
        ical_uid.push(u);
        hash.push(h);
        error.push(r);
    }
    let types: Vec<&str> = outcomes.iter().map(|o| o.identity.reservation_type.as_str()).collect();
    let ids: Vec<i32> = outcomes.iter().map(|o| o.identity.reservation_id).collect();
    let resources: Vec<i32> = outcomes.iter().map(|o| o.identity.resource_id).collect();
    let mailboxes: Vec<&str> = outcomes.iter().map(|o| o.mailbox).collect();
    let levels: Vec<i16> = outcomes.iter().map(|o| o.identity.priority_level).collect();
    let keys: Vec<&str> = outcomes.iter().map(|o| o.item_key).collect();
    let transactions: Vec<Uuid> = outcomes.iter().map(|o| o.transaction_id).collect();
    db.execute(
        "insert into outlook_calendar_mapping as m
             (reservation_type, reservation_id, resource_id, outlook_item_id, priority_level, item_key,
              transaction_id, outlook_event_id, change_key, ical_uid, content_hash, sync_status, error_message,
              intent, intent_at, last_sync_at)
         select t, r, res, mb, p, k, tx, e, c, u, h, s, err, 'none', null, now()
         from unnest($1::text[], $2::int4[], $3::int4[], $4::text[], $5::int2[], $6::text[], $7::uuid[],
                     $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[])
              as u(t, r, res, mb, p, k, tx, e, c, u, h, s, err)
         on conflict (outlook_item_id, item_key) do update set
             reservation_type = excluded.reservation_type,
             reservation_id = excluded.reservation_id,
             resource_id = excluded.resource_id,
             priority_level = excluded.priority_level,
             transaction_id = excluded.transaction_id,
             -- a parked update keeps the event it could not change (a parked row has no event id of its own)
             outlook_event_id = case when excluded.sync_status = 'parked' then m.outlook_event_id
                                     else excluded.outlook_event_id end,
             change_key = case when excluded.sync_status = 'parked' then m.change_key else excluded.change_key end,
             ical_uid = coalesce(excluded.ical_uid, m.ical_uid),
             content_hash = excluded.content_hash,
             sync_status = excluded.sync_status,
             error_message = excluded.error_message,
             intent = 'none',
             intent_at = null,
             last_sync_at = now(),
             updated_at = now()",
        &[
            &types,
            &ids,
            &resources,
            &mailboxes,
            &levels,
            &keys,
            &transactions,
            &event_id,
            &change_key,
            &ical_uid,
            &hash,
            &status,
            &error,
        ],
    )
    .await
    .map_err(SinkError::pg("settling mapping rows"))?;
    Ok(())
}

/// Writes the row of an imported Outlook booking (item key `outlook:<event id>`): `status` is `synced` or
/// `conflict`, `reservation_id` its bb_event (0 without one).
pub(crate) async fn upsert_import(
    db: &impl GenericClient,
    import: &vocabulary::records::ImportRecord,
    item_key: &str,
    transaction_id: Uuid,
    reservation_id: i32,
    status: &str,
    (starts, ends): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>),
) -> Result<(), SinkError> {
    db.execute(
        "insert into outlook_calendar_mapping as m
             (reservation_type, reservation_id, resource_id, outlook_item_id, outlook_event_id,
              sync_status, last_sync_at, priority_level, sync_direction, item_key, transaction_id,
              change_key, ical_uid, intent, starts_at, ends_at)
         values ('outlook', $1, $2, $3, $4, $9, now(), 0, 'from_outlook', $5, $6, $7, $8, 'none', $10, $11)
         on conflict (outlook_item_id, item_key) do update set
             reservation_id = excluded.reservation_id,
             resource_id = excluded.resource_id,
             sync_status = excluded.sync_status,
             change_key = excluded.change_key,
             ical_uid = coalesce(excluded.ical_uid, m.ical_uid),
             starts_at = excluded.starts_at,
             ends_at = excluded.ends_at,
             last_sync_at = now(),
             updated_at = now()",
        &[
            &reservation_id,
            &import.resource_id,
            &import.mailbox,
            &import.event_id,
            &item_key,
            &transaction_id,
            &import.change_key,
            &import.ical_uid,
            &status,
            &starts,
            &ends,
        ],
    )
    .await
    .map_err(SinkError::pg("writing an import's mapping row"))?;
    Ok(())
}

/// Marks the row of an imported Outlook booking deleted (the booking was cancelled in Outlook).
pub(crate) async fn cancel_import(
    db: &impl GenericClient,
    mailbox: &str,
    item_key: &str,
    change_key: Option<&str>,
) -> Result<(), SinkError> {
    db.execute(
        "update outlook_calendar_mapping set sync_status = 'deleted', change_key = $3,
             last_sync_at = now(), updated_at = now()
         where outlook_item_id = $1 and item_key = $2",
        &[&mailbox, &item_key, &change_key],
    )
    .await
    .map_err(SinkError::pg("cancelling an import's mapping row"))?;
    Ok(())
}

/// Reconcile: asks for the item to be written again by clearing its content hash, if the row still names
/// `event_id` and `content_hash` and no write is announced on it; with `vanished` (its event is gone from the
/// room calendar) the row also forgets the event. The number of rows changed (0: the row moved on).
pub async fn reset_for_rewrite(
    db: &impl GenericClient,
    mailbox: &str,
    item_key: &str,
    (event_id, content_hash): (Option<&str>, Option<&str>),
    vanished: bool,
) -> Result<u64, tokio_postgres::Error> {
    let sql = if vanished {
        "update outlook_calendar_mapping
            set content_hash = null, outlook_event_id = null, change_key = null, sync_status = 'deleted',
                updated_at = now()
          where outlook_item_id = $1 and item_key = $2 and intent = 'none'
            and outlook_event_id is not distinct from $3 and content_hash is not distinct from $4"
    } else {
        "update outlook_calendar_mapping set content_hash = null, updated_at = now()
          where outlook_item_id = $1 and item_key = $2 and intent = 'none'
            and outlook_event_id is not distinct from $3 and content_hash is not distinct from $4"
    };
    db.execute(sql, &[&mailbox, &item_key, &event_id, &content_hash]).await
}

/// Reconcile: the row that names `event_id`, deleted from the room calendar as stale, forgets it (unless a write
/// is announced on it).
pub async fn forget_stale_event(
    db: &impl GenericClient,
    mailbox: &str,
    event_id: &str,
) -> Result<u64, tokio_postgres::Error> {
    db.execute(
        "update outlook_calendar_mapping
            set sync_status = 'deleted', outlook_event_id = null, content_hash = null, change_key = null,
                updated_at = now()
          where outlook_item_id = $1 and outlook_event_id = $2 and intent = 'none'",
        &[&mailbox, &event_id],
    )
    .await
}

/// Reconcile (`roomsync retry`): a parked or failed row asks for its item to be written again, if it still holds
/// `content_hash` and no write is announced on it.
pub async fn reset_parked(
    db: &impl GenericClient,
    mailbox: &str,
    item_key: &str,
    content_hash: Option<&str>,
) -> Result<u64, tokio_postgres::Error> {
    db.execute(
        "update outlook_calendar_mapping set content_hash = null, updated_at = now()
          where outlook_item_id = $1 and item_key = $2 and intent = 'none'
            and sync_status in ('parked', 'error') and content_hash is not distinct from $3",
        &[&mailbox, &item_key, &content_hash],
    )
    .await
}
