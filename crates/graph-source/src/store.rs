//! roomsync's own tables as the Graph source uses them: watched rooms, delta progress, known event ids and
//! subscriptions.
//!
//! Invariants: a room's delta link and its set of known event ids change together in ONE statement (so they can
//! never disagree after a crash), and only after Kafka acknowledged the round's records; a lost connection is
//! replaced on the next call instead of wedging every room.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls};
use tracing::warn;
use vocabulary::rooms::{ActiveRooms, MAPPING_ROWS_QUERY};

use crate::error::Error;

/// A watched room: a booking-system resource and its Outlook mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedRoom {
    /// `bb_resource.id`.
    pub resource_id: i32,
    /// The mailbox (user id or SMTP address) exactly as configured.
    pub mailbox: String,
}

/// Where a room's delta sync stands.
#[derive(Debug, Clone)]
pub struct DeltaState {
    /// The link the next incremental round starts from.
    pub delta_link: Option<String>,
    /// Window of the full round the link descends from.
    pub window_start: DateTime<Utc>,
    /// End of that window.
    pub window_end: DateTime<Utc>,
}

/// What a completed round changes in the database.
#[derive(Debug, Clone)]
pub struct RoundCommit<'a> {
    /// The room.
    pub mailbox: &'a str,
    /// The new delta link.
    pub delta_link: &'a str,
    /// Window of the link.
    pub window_start: DateTime<Utc>,
    /// End of the window.
    pub window_end: DateTime<Utc>,
    /// A full round replaces the known set; an incremental one amends it.
    pub full: bool,
    /// Ids that exist now.
    pub present: &'a [String],
    /// Ids that are gone.
    pub gone: &'a [String],
}

/// A stored subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubscription {
    /// Graph's id.
    pub id: String,
    /// The room.
    pub mailbox: String,
    /// The secret Graph echoes as clientState.
    pub client_state: String,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

/// A reconnecting handle to the database.
#[derive(Debug)]
pub struct Store {
    database: tokio_postgres::Config,
    client: Mutex<Option<Arc<Client>>>,
}

impl Store {
    /// A store on `database`; connects on first use.
    pub fn new(database: tokio_postgres::Config) -> Self {
        Self { database, client: Mutex::new(None) }
    }

    async fn client(&self) -> Result<Arc<Client>, Error> {
        let mut guard = self.client.lock().await;
        if let Some(client) = guard.as_ref().filter(|c| !c.is_closed()) {
            return Ok(Arc::clone(client));
        }
        let (client, connection) = self.database.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                warn!(error = %error, "database connection ended");
            }
        });
        let client = Arc::new(client);
        *guard = Some(Arc::clone(&client));
        Ok(client)
    }

    /// Fails when roomsync's tables are missing; warns when `bb_resource_outlook_item` lacks a primary key
    /// (logical replication of its UPDATEs and DELETEs needs one).
    pub async fn check_schema(&self) -> Result<(), Error> {
        let client = self.client().await?;
        for table in ["bb_resource_outlook_item", "roomsync_delta_state", "roomsync_graph_known_events"] {
            let row = client.query_one("select to_regclass($1) is not null", &[&table]).await?;
            if !row.get::<_, bool>(0) {
                return Err(Error::Schema(format!("table {table} is missing: run `roomsync migrate`")));
            }
        }
        let row = client
            .query_one(
                "select exists (select 1 from pg_index where indrelid = 'bb_resource_outlook_item'::regclass \
                 and indisprimary)",
                &[],
            )
            .await?;
        if !row.get::<_, bool>(0) {
            warn!(
                "bb_resource_outlook_item has no primary key: add one (alter table bb_resource_outlook_item add \
                 primary key (id)) or set replica identity full, else its updates and deletes do not replicate"
            );
        }
        Ok(())
    }

    /// The active rooms by the one active-room rule ([`vocabulary::rooms`]), one per mailbox with the resource
    /// that speaks for it.
    pub async fn active_rooms(&self) -> Result<Vec<WatchedRoom>, Error> {
        let client = self.client().await?;
        let rows = client.query(MAPPING_ROWS_QUERY, &[]).await?;
        let rooms = ActiveRooms::from_rows(rows.iter().map(|row| (row.get(0), row.get(1), row.get(2))));
        Ok(rooms
            .representatives()
            .map(|(mailbox, resource_id)| WatchedRoom { resource_id, mailbox: mailbox.to_owned() })
            .collect())
    }

    /// The stored delta state of a room.
    pub async fn delta_state(&self, mailbox: &str) -> Result<Option<DeltaState>, Error> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "select delta_link, window_start, window_end from roomsync_delta_state where mailbox = $1",
                &[&mailbox],
            )
            .await?;
        Ok(row.map(|row| DeltaState { delta_link: row.get(0), window_start: row.get(1), window_end: row.get(2) }))
    }

    /// The event ids last known to exist in a room.
    pub async fn known_ids(&self, mailbox: &str) -> Result<HashSet<String>, Error> {
        let client = self.client().await?;
        let rows =
            client.query("select event_id from roomsync_graph_known_events where mailbox = $1", &[&mailbox]).await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// Records a completed round: delta link and known ids in one atomic statement.
    pub async fn commit_round(&self, commit: &RoundCommit<'_>) -> Result<(), Error> {
        let client = self.client().await?;
        let now = Utc::now();
        let full_at = commit.full.then_some(now);
        // One statement, so the link and the known set never disagree. In a full round `gone` is everything
        // not present; the two id lists are disjoint, so the delete and the insert never touch one row.
        client
            .execute(
                "with state as ( \
                   insert into roomsync_delta_state \
                     (mailbox, delta_link, window_start, window_end, last_round_at, last_full_round_at, updated_at) \
                   values ($1, $2, $3, $4, $5, $6, $5) \
                   on conflict (mailbox) do update set delta_link = excluded.delta_link, \
                     window_start = excluded.window_start, window_end = excluded.window_end, \
                     last_round_at = excluded.last_round_at, \
                     last_full_round_at = coalesce(excluded.last_full_round_at, \
                                                   roomsync_delta_state.last_full_round_at), \
                     updated_at = excluded.updated_at), \
                 removed as ( \
                   delete from roomsync_graph_known_events where mailbox = $1 \
                     and (event_id = any($8) or ($7 and not (event_id = any($9))))), \
                 added as ( \
                   insert into roomsync_graph_known_events (mailbox, event_id) \
                   select $1, id from unnest($9::text[]) as id on conflict do nothing) \
                 select 1",
                &[
                    &commit.mailbox,
                    &commit.delta_link,
                    &commit.window_start,
                    &commit.window_end,
                    &now,
                    &full_at,
                    &commit.full,
                    &commit.gone,
                    &commit.present,
                ],
            )
            .await?;
        Ok(())
    }

    /// Every stored subscription.
    pub async fn subscriptions(&self) -> Result<Vec<StoredSubscription>, Error> {
        let client = self.client().await?;
        let rows = client
            .query("select subscription_id, mailbox, client_state, expires_at from roomsync_subscriptions", &[])
            .await?;
        Ok(rows
            .iter()
            .map(|row| StoredSubscription {
                id: row.get(0),
                mailbox: row.get(1),
                client_state: row.get(2),
                expires_at: row.get(3),
            })
            .collect())
    }

    /// Stores a new subscription.
    pub async fn insert_subscription(&self, sub: &StoredSubscription) -> Result<(), Error> {
        let client = self.client().await?;
        client
            .execute(
                "insert into roomsync_subscriptions (subscription_id, mailbox, client_state, expires_at) \
                 values ($1, $2, $3, $4) on conflict (subscription_id) do update set expires_at = excluded.expires_at",
                &[&sub.id, &sub.mailbox, &sub.client_state, &sub.expires_at],
            )
            .await?;
        Ok(())
    }

    /// Records a renewal.
    pub async fn renewed_subscription(&self, id: &str, expires_at: DateTime<Utc>) -> Result<(), Error> {
        let client = self.client().await?;
        client
            .execute(
                "update roomsync_subscriptions set expires_at = $2, renewed_at = now() where subscription_id = $1",
                &[&id, &expires_at],
            )
            .await?;
        Ok(())
    }

    /// Forgets a subscription.
    pub async fn delete_subscription(&self, id: &str) -> Result<(), Error> {
        let client = self.client().await?;
        client.execute("delete from roomsync_subscriptions where subscription_id = $1", &[&id]).await?;
        Ok(())
    }
}
