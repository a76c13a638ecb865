//! roomsync's own tables, created by the SQL files in the repository's `migrations/` folder, applied in order.
//!
//! Invariants:
//! - a migration is applied at most once, recorded in `roomsync_schema_migrations` with its checksum, and an
//!   applied migration whose file changed afterwards is an error (never silently re-run or skipped);
//! - concurrent starts (several roomsync instances) serialise on an advisory lock, so each migration runs once;
//! - no migration alters a `bb_*` table the booking system owns; `bb_resource_outlook_item` is created only if
//!   absent, because an installation of the earlier PHP integration may already have it.
//!
//! A table that several parties write has its one writer here ([`conflicts`]), so the rules of the table hold
//! whoever writes it.

pub mod conflicts;

use sha2::{Digest, Sha256};
use thiserror::Error;
use tokio_postgres::Client;
use tracing::{info, warn};

/// One SQL migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Order and identity.
    pub version: i32,
    /// File name without the extension.
    pub name: &'static str,
    /// The SQL.
    pub sql: &'static str,
}

macro_rules! migration {
    ($version:expr, $name:literal) => {
        Migration { version: $version, name: $name, sql: include_str!(concat!("../../../migrations/", $name, ".sql")) }
    };
}

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_mapping"),
    migration!(2, "0002_resource_outlook_item"),
    migration!(3, "0003_sync_state"),
    migration!(4, "0004_conflicts"),
    migration!(5, "0005_graph_known_events"),
    migration!(6, "0006_conflict_decline"),
    migration!(7, "0007_signals"),
    migration!(8, "0008_stage_health"),
    migration!(9, "0009_import_times"),
    migration!(10, "0010_resolver_checkpoints"),
];

/// Arbitrary constant for `pg_advisory_xact_lock`, so concurrent starts apply migrations one at a time.
const LOCK_KEY: i64 = 0x726f_6f6d_7379_6e63; // "roomsync"

/// Why migrations could not be applied.
#[derive(Debug, Error)]
pub enum MigrateError {
    /// The database refused a statement.
    #[error("migration {name}: {source}")]
    Sql {
        /// The migration (or `bookkeeping`).
        name: String,
        /// The database error.
        source: tokio_postgres::Error,
    },
    /// An applied migration's SQL differs from the file now shipped.
    #[error(
        "migration {name} was applied with checksum {applied} but the file now has {shipped}: \
         migrations must never be edited after release; add a new one instead"
    )]
    Changed {
        /// The migration.
        name: String,
        /// Checksum recorded when it was applied.
        applied: String,
        /// Checksum of the file now.
        shipped: String,
    },
}

fn sql_error(name: &str) -> impl Fn(tokio_postgres::Error) -> MigrateError + '_ {
    move |source| MigrateError::Sql { name: name.to_owned(), source }
}

fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

/// Applies every migration not yet applied; returns the versions it applied (empty when up to date).
pub async fn apply(client: &mut Client) -> Result<Vec<i32>, MigrateError> {
    let bookkeeping = sql_error("bookkeeping");
    let tx = client.transaction().await.map_err(&bookkeeping)?;
    tx.execute("select pg_advisory_xact_lock($1)", &[&LOCK_KEY]).await.map_err(&bookkeeping)?;
    tx.batch_execute(
        "create table if not exists roomsync_schema_migrations (
             version    integer     primary key,
             name       text        not null,
             checksum   text        not null,
             applied_at timestamptz not null default now()
         )",
    )
    .await
    .map_err(&bookkeeping)?;
    let rows = tx.query("select version, checksum from roomsync_schema_migrations", &[]).await.map_err(&bookkeeping)?;
    let applied: Vec<(i32, String)> = rows.iter().map(|row| (row.get(0), row.get(1))).collect();
    let mut done = Vec::new();
    for migration in MIGRATIONS {
        let shipped = checksum(migration.sql);
        if let Some((_, recorded)) = applied.iter().find(|(version, _)| *version == migration.version) {
            if *recorded != shipped {
                return Err(MigrateError::Changed {
                    name: migration.name.to_owned(),
                    applied: recorded.clone(),
                    shipped,
                });
            }
            continue;
        }
        tx.batch_execute(migration.sql).await.map_err(sql_error(migration.name))?;
        tx.execute(
            "insert into roomsync_schema_migrations (version, name, checksum) values ($1, $2, $3)",
            &[&migration.version, &migration.name, &shipped],
        )
        .await
        .map_err(sql_error(migration.name))?;
        info!(version = migration.version, name = migration.name, "applied migration");
        done.push(migration.version);
    }
    tx.commit().await.map_err(&bookkeeping)?;
    for warning in preflight_warnings(client).await? {
        warn!(warning = %warning, "database check");
    }
    Ok(done)
}

/// Problems with tables roomsync uses but does not own, each with the fix, for start-up and `roomsync status`.
pub async fn preflight_warnings(client: &Client) -> Result<Vec<String>, MigrateError> {
    let has_key = client
        .query_one(
            "select exists (select 1 from pg_index i join pg_class c on c.oid = i.indrelid
                            where c.relname = 'bb_resource_outlook_item' and i.indisprimary)
                 or exists (select 1 from pg_class where relname = 'bb_resource_outlook_item'
                            and relreplident = 'f')",
            &[],
        )
        .await
        .map_err(sql_error("preflight"))?
        .get::<_, bool>(0);
    let mut warnings = Vec::new();
    if !has_key {
        warnings.push(
            "bb_resource_outlook_item has no primary key, so its UPDATEs and DELETEs cannot be replicated and \
             room-mapping changes are missed; fix: ALTER TABLE bb_resource_outlook_item ADD COLUMN id serial \
             PRIMARY KEY (or ALTER TABLE bb_resource_outlook_item REPLICA IDENTITY FULL)"
                .to_owned(),
        );
    }
    Ok(warnings)
}
