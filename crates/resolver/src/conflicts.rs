//! The resolver's PostgreSQL writes: Outlook-origin bookings that overlap a reservation in `roomsync_conflicts`
//! (migration 0004), and its liveness in `roomsync_stage_health` (migration 0008, see [`crate::liveness`]).
//!
//! Invariant: recording is idempotent (the table's unique key on mailbox, event and reservation makes a
//! replay a no-op), so the resolver can record again after a restart without duplicating rows; a conflict still
//! open takes the overlap's current span when the booking or the reservation moved. The write is
//! idempotent, so a write whose connection dropped is sent once more on a new connection: a PostgreSQL
//! restart or a terminated session costs a reconnect, not a rebuild of the resolver's state.

use chrono::{DateTime, Utc};
use tokio::sync::Mutex;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls};
use tracing::{info, warn};

use crate::core::Conflict;
use crate::error::ResolverError;

/// A connection to the database that holds `roomsync_conflicts`.
pub struct ConflictStore {
    url: String,
    client: Mutex<Client>,
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
        Ok(ConflictStore { url: url.to_owned(), client: Mutex::new(open(url).await?) })
    }

    /// Runs one idempotent statement; once more on a fresh connection if the connection was lost.
    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)], context: &str) -> Result<(), ResolverError> {
        let mut client = self.client.lock().await;
        if client.is_closed() {
            *client = open(&self.url).await?;
            info!("conflicts database connection re-established");
        }
        match client.execute(sql, params).await {
            Ok(_) => Ok(()),
            Err(err) if client.is_closed() || connection_lost(&err) => {
                *client = open(&self.url).await?;
                info!("conflicts database connection re-established");
                client.execute(sql, params).await.map(|_| ()).map_err(pg(context))
            }
            Err(err) => Err(pg(context)(err)),
        }
    }

    /// Records one conflict (when it is already recorded and still open, its span is brought up to date).
    pub async fn record(&self, conflict: &Conflict) -> Result<(), ResolverError> {
        let at = |micros: i64| DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_default();
        self.execute(
            "insert into roomsync_conflicts (outlook_item_id, resource_id, outlook_event_id, outlook_change_key, \
                 reservation_type, reservation_id, starts_at, ends_at, status) \
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 on conflict (outlook_item_id, outlook_event_id, reservation_type, reservation_id) do update \
                 set starts_at = excluded.starts_at, ends_at = excluded.ends_at, \
                     outlook_change_key = excluded.outlook_change_key \
                 where roomsync_conflicts.status = 'open'",
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
            "recording a conflict",
        )
        .await
    }

    /// Writes this instance's liveness row (state, detail, since when) and refreshes its `updated_at`.
    pub async fn record_health(
        &self,
        instance: &str,
        state: &crate::liveness::State,
        since: DateTime<Utc>,
    ) -> Result<(), ResolverError> {
        self.execute(
            "insert into roomsync_stage_health (stage, instance, state, detail, since, updated_at) \
             values ('resolver', $1, $2, $3, $4, now()) \
             on conflict (stage, instance) do update set state = excluded.state, detail = excluded.detail, \
                 since = excluded.since, updated_at = now()",
            &[&instance, &state.name(), &state.detail(), &since],
            "recording the resolver's liveness",
        )
        .await
    }

    /// Removes this instance's liveness row (a graceful stop: the instance is gone, not stalled).
    pub async fn forget_health(&self, instance: &str) -> Result<(), ResolverError> {
        self.execute(
            "delete from roomsync_stage_health where stage = 'resolver' and instance = $1",
            &[&instance],
            "removing the resolver's liveness row",
        )
        .await
    }
}

async fn open(url: &str) -> Result<Client, ResolverError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.map_err(pg("connecting"))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            warn!(error = %error, "conflicts database connection ended");
        }
    });
    Ok(client)
}

/// Whether the error says the session is gone (closed, or the server ended it: SQLSTATE classes 08 and 57P),
/// rather than that the statement failed.
fn connection_lost(err: &tokio_postgres::Error) -> bool {
    err.is_closed() || err.code().is_some_and(|code| code.code().starts_with("08") || code.code().starts_with("57P"))
}
