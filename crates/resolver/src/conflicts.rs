//! Recording Outlook-origin bookings that overlap a reservation in `roomsync_conflicts` (migration 0004).
//!
//! Invariant: recording is idempotent (the table's unique key on mailbox, event and reservation makes a
//! replay a no-op), so the resolver can record again after a restart without duplicating rows.

use chrono::{DateTime, Utc};
use tokio_postgres::{Client, NoTls};
use tracing::warn;

use crate::core::Conflict;
use crate::error::ResolverError;

/// A connection to the database that holds `roomsync_conflicts`.
pub struct ConflictStore {
    client: Client,
}

impl std::fmt::Debug for ConflictStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConflictStore").finish_non_exhaustive()
    }
}

fn pg(context: &str) -> impl FnOnce(tokio_postgres::Error) -> ResolverError + '_ {
    move |source| ResolverError::Postgres { context: context.to_owned(), source }
}

impl ConflictStore {
    /// Connects to `url`.
    pub async fn connect(url: &str) -> Result<Self, ResolverError> {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await.map_err(pg("connecting"))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                warn!(error = %error, "conflicts database connection ended");
            }
        });
        Ok(ConflictStore { client })
    }

    /// Clears the content hash roomsync last wrote for an item, so the sink rewrites it from the next desired
    /// record even though that record's hash is unchanged (an Outlook edit is being reverted).
    pub async fn forget_written_content(&self, mailbox: &str, item_key: &str) -> Result<(), ResolverError> {
        self.client
            .execute(
                "update outlook_calendar_mapping set content_hash = null, updated_at = now() \
                 where outlook_item_id = $1 and item_key = $2",
                &[&mailbox, &item_key],
            )
            .await
            .map_err(pg("clearing the content hash of a reverted item"))?;
        Ok(())
    }

    /// Records one conflict (no-op when it is already recorded).
    pub async fn record(&self, conflict: &Conflict) -> Result<(), ResolverError> {
        let at = |micros: i64| DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_default();
        self.client
            .execute(
                "insert into roomsync_conflicts (outlook_item_id, resource_id, outlook_event_id, outlook_change_key, \
                 reservation_type, reservation_id, starts_at, ends_at, status) \
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 on conflict (outlook_item_id, outlook_event_id, reservation_type, reservation_id) do nothing",
                &[
                    &conflict.mailbox,
                    &conflict.resource_id,
                    &conflict.event_id,
                    &conflict.change_key,
                    &conflict.hit.kind.as_str(),
                    &conflict.hit.reservation_id,
                    &at(conflict.hit.start),
                    &at(conflict.hit.end),
                    &conflict.status,
                ],
            )
            .await
            .map_err(pg("recording a conflict"))?;
        Ok(())
    }
}
