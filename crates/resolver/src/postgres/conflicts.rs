//! The resolver's PostgreSQL writes: Outlook-origin bookings that overlap a reservation in `roomsync_conflicts`
//! (migration 0004), and its liveness in `roomsync_stage_health` (migration 0008, see [`crate::liveness`]).
//!
//! Invariant: recording is idempotent (the table's one writer, [`migrations::conflicts`], keeps one row per
//! mailbox, event and reservation), so the resolver can record again after a restart without duplicating rows;
//! a conflict still open takes the overlap's current span when the booking or the reservation moved. The write is
//! idempotent, so a write whose connection dropped is sent once more on a new connection: a PostgreSQL
//! restart or a terminated session costs a reconnect, not a rebuild of the resolver's state.

use chrono::{DateTime, Utc};
use migrations::conflicts::{self, ConflictPolicy, Overlap};
use tokio::sync::Mutex;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls};
use tracing::{info, warn};

use crate::core::Conflict;
use crate::error::ResolverError;

/// A connection to the database that holds `roomsync_conflicts`.
pub struct ConflictStore {
    database: tokio_postgres::Config,
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
    /// Connects to `database`.
    pub async fn connect(database: &tokio_postgres::Config) -> Result<Self, ResolverError> {
        Ok(ConflictStore { database: database.clone(), client: Mutex::new(open(database).await?) })
    }

    /// The connection, opened again if it was closed.
    async fn client(&self) -> Result<tokio::sync::MutexGuard<'_, Client>, ResolverError> {
        let mut client = self.client.lock().await;
        if client.is_closed() {
            *client = self.reopen().await?;
        }
        Ok(client)
    }

    async fn reopen(&self) -> Result<Client, ResolverError> {
        let client = open(&self.database).await?;
        info!("conflicts database connection re-established");
        Ok(client)
    }

    /// Runs `write` (idempotent) on the connection; once more on a fresh connection if the connection was lost.
    async fn idempotent(&self, context: &str, write: Write<'_>) -> Result<(), ResolverError> {
        let mut client = self.client().await?;
        match write.run(&client).await {
            Ok(()) => Ok(()),
            Err(err) if client.is_closed() || connection_lost(&err) => {
                *client = self.reopen().await?;
                write.run(&client).await.map_err(pg(context))
            }
            Err(err) => Err(pg(context)(err)),
        }
    }

    /// Runs one idempotent statement ([`ConflictStore::idempotent`]).
    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)], context: &str) -> Result<(), ResolverError> {
        self.idempotent(context, Write::Statement(sql, params)).await
    }

    /// Records one conflict ([`migrations::conflicts::record`]: idempotent; an open one takes the current span);
    /// once more on a fresh connection if the connection was lost.
    pub async fn record(&self, conflict: &Conflict) -> Result<(), ResolverError> {
        let at = |micros: i64| DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_default();
        let overlap = Overlap {
            mailbox: &conflict.mailbox,
            resource_id: conflict.resource_id,
            event_id: &conflict.event_id,
            change_key: conflict.change_key.as_deref(),
            reservation_type: conflict.hit.kind.as_str(),
            reservation_id: conflict.hit.reservation_id,
            starts_at: at(conflict.hit.start),
            ends_at: at(conflict.hit.end),
        };
        self.idempotent("recording a conflict", Write::Conflict(&overlap, conflict.policy)).await
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

/// An idempotent write of the store.
enum Write<'a> {
    /// A statement of its own (the liveness row).
    Statement(&'a str, &'a [&'a (dyn ToSql + Sync)]),
    /// A conflict, through the table's one writer.
    Conflict(&'a Overlap<'a>, ConflictPolicy),
}

impl Write<'_> {
    async fn run(&self, client: &Client) -> Result<(), tokio_postgres::Error> {
        match self {
            Write::Statement(sql, params) => client.execute(*sql, params).await.map(|_| ()),
            Write::Conflict(overlap, policy) => conflicts::record(client, overlap, *policy).await,
        }
    }
}

async fn open(database: &tokio_postgres::Config) -> Result<Client, ResolverError> {
    let (client, connection) = database.connect(NoTls).await.map_err(pg("connecting"))?;
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
