//! The pipeline's status as the database knows it: the replication slot (lag, retained WAL), what the running
//! stage instances say of their own progress (`roomsync_stage_health`), the sync state of the mapped items, the
//! rooms and the open conflicts. `roomsync status` prints it; the admin API serves it.

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
    /// What the stage instances say of their own progress (a stalled resolver says so here).
    pub stages: Vec<StageHealth>,
}

/// How long a stage instance's health row stays current without a refresh (they refresh every 30 s): an older
/// row belongs to an instance that is gone.
pub const HEALTH_CURRENT_SECONDS: i64 = 120;

/// One stage instance's own account of its progress.
#[derive(Debug, Clone, Serialize)]
pub struct StageHealth {
    /// The stage (`resolver`).
    pub stage: String,
    /// Host and process id.
    pub instance: String,
    /// `ok`, `catching_up`, `degraded` or `stalled`.
    pub state: String,
    /// What is wrong, for `degraded` and `stalled`.
    pub detail: Option<String>,
    /// Since when it is in this state.
    pub since: DateTime<Utc>,
    /// When the instance last refreshed its row.
    pub updated_at: DateTime<Utc>,
    /// The row was not refreshed for [`HEALTH_CURRENT_SECONDS`]: the instance is gone (or hangs).
    pub gone: bool,
}

/// The current stage health rows (refreshed within [`HEALTH_CURRENT_SECONDS`]) and the gone ones.
pub async fn stage_health(client: &Client) -> Result<Vec<StageHealth>, tokio_postgres::Error> {
    Ok(client
        .query(
            "select stage::text, instance::text, state::text, detail, since, updated_at,
                    updated_at < now() - make_interval(secs => $1::bigint)
             from roomsync_stage_health order by stage, instance",
            &[&HEALTH_CURRENT_SECONDS],
        )
        .await?
        .iter()
        .map(|row| StageHealth {
            stage: row.get(0),
            instance: row.get(1),
            state: row.get(2),
            detail: row.get(3),
            since: row.get(4),
            updated_at: row.get(5),
            gone: row.get(6),
        })
        .collect())
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
    let stages = stage_health(client).await?;
    Ok(Status { slot, items_by_status, recent_errors, rooms, open_conflicts, stages })
}
