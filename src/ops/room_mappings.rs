//! Which booking-system resource is which Outlook room mailbox (`bb_resource_outlook_item`).
//!
//! Deactivating a mapping (active = 0) makes the resolver remove roomsync's events from that room calendar;
//! Outlook-origin events there are left alone. Rows are never deleted by roomsync, only deactivated, so the
//! history of what was synced where stays readable.

use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

/// One resource-to-room mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomMapping {
    /// Booking-system resource id (bb_resource.id).
    pub resource_id: i32,
    /// Room mailbox (SMTP address or Graph user id).
    pub mailbox: String,
    /// Display name of the room.
    pub name: Option<String>,
    /// Whether roomsync syncs this room.
    pub active: bool,
    /// The resource's name in the booking system, when it exists there.
    pub resource_name: Option<String>,
}

/// Why a mapping could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// No bb_resource row with that id.
    #[error("resource {0} does not exist in bb_resource")]
    UnknownResource(i32),
    /// No mapping for that resource.
    #[error("resource {0} has no room mapping")]
    NotMapped(i32),
    /// The mailbox is not a plausible address or id.
    #[error("{0:?} is not a room mailbox address or id")]
    BadMailbox(String),
    /// The database refused.
    #[error("database: {0}")]
    Database(#[from] tokio_postgres::Error),
}

/// All mappings, by resource id.
pub async fn list(client: &Client) -> Result<Vec<RoomMapping>, MappingError> {
    let rows = client
        .query(
            "select m.resource_id, m.outlook_item_id, m.outlook_item_name, m.active, r.name
             from bb_resource_outlook_item m left join bb_resource r on r.id = m.resource_id
             order by m.resource_id, m.outlook_item_id",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| RoomMapping {
            resource_id: row.get(0),
            mailbox: row.get(1),
            name: row.get(2),
            active: row.get::<_, Option<i16>>(3).unwrap_or(0) == 1,
            resource_name: row.get(4),
        })
        .collect())
}

/// Maps `resource_id` to `mailbox` (active), or updates and reactivates the existing mapping of the resource.
pub async fn upsert(
    client: &Client,
    resource_id: i32,
    mailbox: &str,
    name: Option<&str>,
) -> Result<RoomMapping, MappingError> {
    let mailbox = mailbox.trim();
    if mailbox.is_empty() || mailbox.len() > 255 || mailbox.contains(char::is_whitespace) || mailbox.contains('/') {
        return Err(MappingError::BadMailbox(mailbox.to_owned()));
    }
    let exists = client.query_opt("select 1 from bb_resource where id = $1", &[&resource_id]).await?;
    if exists.is_none() {
        return Err(MappingError::UnknownResource(resource_id));
    }
    let updated = client
        .execute(
            "update bb_resource_outlook_item set outlook_item_id = $2,
                 outlook_item_name = coalesce($3, outlook_item_name), active = 1
             where resource_id = $1",
            &[&resource_id, &mailbox, &name],
        )
        .await?;
    if updated == 0 {
        client
            .execute(
                "insert into bb_resource_outlook_item (resource_id, outlook_item_id, outlook_item_name, active)
                 values ($1, $2, $3, 1)",
                &[&resource_id, &mailbox, &name],
            )
            .await?;
    }
    get(client, resource_id).await
}

/// Sets a resource's mapping active or inactive.
pub async fn set_active(client: &Client, resource_id: i32, active: bool) -> Result<RoomMapping, MappingError> {
    let flag: i16 = i16::from(active);
    let updated = client
        .execute("update bb_resource_outlook_item set active = $2 where resource_id = $1", &[&resource_id, &flag])
        .await?;
    if updated == 0 {
        return Err(MappingError::NotMapped(resource_id));
    }
    get(client, resource_id).await
}

/// The mapping of one resource.
pub async fn get(client: &Client, resource_id: i32) -> Result<RoomMapping, MappingError> {
    list(client)
        .await?
        .into_iter()
        .find(|mapping| mapping.resource_id == resource_id)
        .ok_or(MappingError::NotMapped(resource_id))
}
