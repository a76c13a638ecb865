//! The pipeline's status as the database knows it: the replication slot (lag, retained WAL), the sync state
//! of the mapped items, the rooms and the open conflicts. `roomsync status` prints it; the admin API serves it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Client;

/// Everything `roomsync status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The CDC slot, when it exists.
    pub slot: Option<SlotStatus>,
    /// Mapped calendar items by sync status.
    pub items_by_status: BTreeMap<String, i64>,
    /// Items in error, newest first (at most 20).
    pub recent_errors: Vec<ItemError>,
    /// Rooms.
    pub rooms: Vec<RoomStatus>,
    /// Open conflicts.
    pub open_conflicts: i64,
}

/// The logical replication slot of the CDC reader.
#[derive(Debug, Clone, Serialize)]
pub struct SlotStatus {
    /// Slot name.
    pub name: String,
    /// Whether a reader is connected.
    pub active: bool,
    /// The position PostgreSQL has confirmed (what was acknowledged by Kafka).
    pub confirmed_flush_lsn: Option<String>,
    /// WAL the server keeps for the slot, bytes.
    pub retained_wal_bytes: Option<i64>,
    /// WAL written but not yet confirmed, bytes.
    pub lag_bytes: Option<i64>,
    /// `reserved`, `extended`, `unreserved` or `lost` (lost: the slot is invalidated; see the runbook).
    pub wal_status: Option<String>,
}

/// One room.
#[derive(Debug, Clone, Serialize)]
pub struct RoomStatus {
    /// Resource id.
    pub resource_id: i32,
    /// Room mailbox.
    pub mailbox: String,
    /// Whether the mapping is active.
    pub active: bool,
    /// Last completed delta round.
    pub last_round_at: Option<DateTime<Utc>>,
    /// Items roomsync holds in this room.
    pub items: i64,
    /// Of those, in error.
    pub errors: i64,
}

/// A mapped item in error.
#[derive(Debug, Clone, Serialize)]
pub struct ItemError {
    /// Room mailbox.
    pub mailbox: String,
    /// Item key.
    pub item_key: String,
    /// The error.
    pub error: Option<String>,
    /// When it was last tried.
    pub last_sync_at: Option<DateTime<Utc>>,
}

/// Reads the status; `slot` is the configured CDC slot name.
pub async fn read(client: &Client, slot: &str) -> Result<Status, tokio_postgres::Error> {
    let slot = client
        .query_opt(
            "select slot_name::text, active, confirmed_flush_lsn::text,
                    (pg_current_wal_lsn() - restart_lsn)::bigint,
                    (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint,
                    wal_status
             from pg_replication_slots where slot_name = $1",
            &[&slot],
        )
        .await?
        .map(|row| SlotStatus {
            name: row.get(0),
            active: row.get(1),
            confirmed_flush_lsn: row.get(2),
            retained_wal_bytes: row.get(3),
            lag_bytes: row.get(4),
            wal_status: row.get(5),
        });
    let items_by_status = client
        .query("select sync_status, count(*) from outlook_calendar_mapping group by 1 order by 1", &[])
        .await?
        .iter()
        .map(|row| (row.get::<_, String>(0), row.get::<_, i64>(1)))
        .collect();
    let recent_errors = client
        .query(
            "select outlook_item_id, item_key, error_message, last_sync_at from outlook_calendar_mapping
             where sync_status in ('error', 'parked') order by last_sync_at desc nulls last limit 20",
            &[],
        )
        .await?
        .iter()
        .map(|row| ItemError { mailbox: row.get(0), item_key: row.get(1), error: row.get(2), last_sync_at: row.get(3) })
        .collect();
    let rooms = client
        .query(
            "select m.resource_id, m.outlook_item_id, m.active, d.last_round_at,
                    count(c.id) filter (where c.sync_status <> 'deleted'),
                    count(c.id) filter (where c.sync_status in ('error', 'parked'))
             from bb_resource_outlook_item m
             left join roomsync_delta_state d on d.mailbox = m.outlook_item_id
             left join outlook_calendar_mapping c on c.outlook_item_id = m.outlook_item_id
             group by 1, 2, 3, 4 order by 1",
            &[],
        )
        .await?
        .iter()
        .map(|row| RoomStatus {
            resource_id: row.get(0),
            mailbox: row.get(1),
            active: row.get::<_, Option<i16>>(2).unwrap_or(0) == 1,
            last_round_at: row.get(3),
            items: row.get(4),
            errors: row.get(5),
        })
        .collect();
    let open_conflicts =
        client.query_one("select count(*) from roomsync_conflicts where status = 'open'", &[]).await?.get(0);
    Ok(Status { slot, items_by_status, recent_errors, rooms, open_conflicts })
}
