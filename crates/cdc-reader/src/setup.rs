//! Everything the reader needs on the PostgreSQL side that is not the booking system's code: the publication
//! (with column lists that keep sensitive columns in the database), the replication slot's state, and the
//! connection settings of the replication session.
//!
//! Invariants:
//! - a sensitive column is never published: the publication's column lists are (re)written from the
//!   configuration at every start, so a publication that drifted is corrected before streaming;
//! - a table without a replica identity, or with REPLICA IDENTITY FULL and columns to leave out, is never
//!   added to the publication (PostgreSQL would then refuse the booking system's own UPDATEs and DELETEs on it);
//! - a slot is only resumed when its initial snapshot was completed (marked on the publication), otherwise it is
//!   dropped and the snapshot is taken again, so a crash mid-snapshot cannot lose rows.
//!
//! Minimal role (documented in the crate README):
//! ```sql
//! CREATE ROLE roomsync_cdc LOGIN REPLICATION PASSWORD '...';
//! GRANT SELECT ON bb_event, bb_event_resource, ... TO roomsync_cdc;   -- snapshot copy
//! GRANT CREATE ON DATABASE booking TO roomsync_cdc;                   -- create its publication
//! -- CREATE PUBLICATION ... FOR TABLE needs ownership of the tables: either the table owner creates the
//! -- publication once (the reader then only verifies and adjusts it), or the role is a member of the owner.
//! ```

use std::collections::BTreeSet;

use tokio_postgres::Client;
use tracing::{info, warn};

use crate::config::Config;
use crate::error::CdcError;
use crate::relation::{Column, TableShape};

/// Comment written on the publication once the slot's snapshot is complete.
fn snapshot_marker(slot: &str) -> String {
    format!("roomsync: snapshot complete for slot {slot}")
}

/// Quotes an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes an SQL string literal.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Reads the shape of `schema.table` from the catalog, with the published columns only. `None` when the table
/// does not exist.
pub async fn table_shape(
    client: &impl tokio_postgres::GenericClient,
    config: &Config,
    table: &str,
) -> Result<Option<TableShape>, CdcError> {
    let rows = client
        .query(
            "select a.attname::text, a.atttypid, coalesce(a.attnum = any(i.indkey), false), c.relreplident::text \
             from pg_attribute a join pg_class c on c.oid = a.attrelid \
             join pg_namespace n on n.oid = c.relnamespace \
             left join pg_index i on i.indrelid = c.oid \
               and case when c.relreplident = 'i' then i.indisreplident else i.indisprimary end \
             where n.nspname = $1 and c.relname = $2 and a.attnum > 0 and not a.attisdropped \
             order by a.attnum",
            &[&config.schema, &table],
        )
        .await
        .map_err(|e| CdcError::pg(format!("reading columns of {table}"), e))?;
    if rows.is_empty() {
        return Ok(None);
    }
    let identity: String = rows[0].get(3);
    let mut columns = Vec::new();
    for row in &rows {
        let name: String = row.get(0);
        let key: bool = row.get(2);
        if key || !config.is_excluded(table, &name) {
            if key && config.is_excluded(table, &name) {
                warn!(table, column = %name, "an excluded column is part of the primary key and stays published");
            }
            columns.push(Column { name, type_oid: row.get(1), key });
        }
    }
    let excluded_any = rows.len() != columns.len();
    if identity == "f" && excluded_any {
        // Under REPLICA IDENTITY FULL a column list must cover every column: publishing the table without its
        // sensitive columns would make PostgreSQL reject the booking system's UPDATEs and DELETEs on it.
        warn!(
            table,
            "table has REPLICA IDENTITY FULL and sensitive columns: it is NOT captured (a column list would break \
             its UPDATEs, publishing all columns would leak them). Fix: ALTER TABLE .. REPLICA IDENTITY DEFAULT"
        );
        return Ok(None);
    }
    let has_identity = identity == "f" || (matches!(identity.as_str(), "d" | "i") && columns.iter().any(|c| c.key));
    if !has_identity {
        warn!(
            table,
            "table has no primary key or replica identity: it is NOT captured (PostgreSQL would reject UPDATE and \
             DELETE on it once published). Fix: add a primary key to it, then restart roomsync"
        );
        return Ok(None);
    }
    Ok(Some(TableShape {
        schema: config.schema.clone(),
        table: table.to_owned(),
        columns,
        full_identity: identity == "f",
    }))
}

/// The shapes of every configured table that exists and can be published.
pub async fn captured_tables(client: &Client, config: &Config) -> Result<Vec<TableShape>, CdcError> {
    let mut shapes = Vec::new();
    for table in &config.tables {
        match table_shape(client, config, table).await? {
            Some(shape) => shapes.push(shape),
            None => {
                warn!(table, schema = %config.schema, "configured table is not captured (missing or unusable)")
            }
        }
    }
    if shapes.is_empty() {
        return Err(CdcError::Config("none of the configured tables exists".into()));
    }
    Ok(shapes)
}

/// Creates the publication, or corrects its table and column lists.
pub async fn ensure_publication(client: &Client, config: &Config, shapes: &[TableShape]) -> Result<(), CdcError> {
    let wanted: BTreeSet<(String, String, Vec<String>)> = shapes
        .iter()
        .map(|s| {
            let mut cols: Vec<String> = s.columns.iter().map(|c| c.name.clone()).collect();
            cols.sort();
            (s.schema.clone(), s.table.clone(), cols)
        })
        .collect();
    let table_list = shapes
        .iter()
        .map(|s| {
            let table = format!("{}.{}", quote_ident(&s.schema), quote_ident(&s.table));
            if s.full_identity {
                // PostgreSQL 15 rejects UPDATE on a REPLICA IDENTITY FULL table published with any column
                // list, even one naming every column; such a table only gets here without excluded columns.
                return table;
            }
            let cols: Vec<String> = s.columns.iter().map(|c| quote_ident(&c.name)).collect();
            format!("{table} ({})", cols.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let exists = client
        .query_opt("select 1 from pg_publication where pubname = $1", &[&config.publication])
        .await
        .map_err(|e| CdcError::pg("looking up the publication", e))?
        .is_some();
    if !exists {
        client
            .batch_execute(&format!("create publication {} for table {table_list}", quote_ident(&config.publication)))
            .await
            .map_err(|e| CdcError::pg("creating the publication", e))?;
        info!(publication = %config.publication, tables = shapes.len(), "created publication");
        return Ok(());
    }
    let rows = client
        .query(
            "select schemaname::text, tablename::text, attnames::text[] from pg_publication_tables where pubname = $1",
            &[&config.publication],
        )
        .await
        .map_err(|e| CdcError::pg("reading the publication's tables", e))?;
    let current: BTreeSet<(String, String, Vec<String>)> = rows
        .iter()
        .map(|r| {
            let mut cols: Vec<String> = r.get(2);
            cols.sort();
            (r.get(0), r.get(1), cols)
        })
        .collect();
    if current != wanted {
        client
            .batch_execute(&format!("alter publication {} set table {table_list}", quote_ident(&config.publication)))
            .await
            .map_err(|e| CdcError::pg("correcting the publication's tables and columns", e))?;
        warn!(publication = %config.publication, "publication differed from the configuration and was corrected");
    }
    Ok(())
}

/// What the slot looks like at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotState {
    /// No slot: create it and take the initial snapshot.
    Missing,
    /// The slot exists but its snapshot never completed: drop it and start over.
    SnapshotIncomplete,
    /// Resume streaming from the slot's confirmed position.
    Ready {
        /// The slot's confirmed_flush_lsn.
        confirmed: u64,
    },
}

/// Whether the reader's initial snapshot for `config`'s slot is complete: the reader marks it on the publication
/// once every snapshot record was acknowledged by Kafka (what a consumer that wants the whole snapshot waits for).
pub async fn snapshot_complete(client: &Client, config: &Config) -> Result<bool, CdcError> {
    let comment: Option<String> = client
        .query_opt(
            "select obj_description(oid, 'pg_publication') from pg_publication where pubname = $1",
            &[&config.publication],
        )
        .await
        .map_err(|e| CdcError::pg("reading the snapshot marker", e))?
        .and_then(|row| row.get(0));
    Ok(comment.as_deref() == Some(snapshot_marker(&config.slot).as_str()))
}

/// Inspects the configured slot; a lost or foreign slot is an error.
pub async fn slot_state(client: &Client, config: &Config) -> Result<SlotState, CdcError> {
    let row = client
        .query_opt(
            "select plugin::text, database::text = current_database(), coalesce(wal_status, ''), \
             coalesce(confirmed_flush_lsn::text, '0/0') \
             from pg_replication_slots where slot_name = $1",
            &[&config.slot],
        )
        .await
        .map_err(|e| CdcError::pg("looking up the replication slot", e))?;
    let snapshot_done = snapshot_complete(client, config).await?;
    let Some(row) = row else {
        if snapshot_done {
            // The slot streamed before and is gone: changes made since are lost to us.
            return Err(CdcError::SlotLost { slot: config.slot.clone(), reason: "the slot was dropped".into() });
        }
        return Ok(SlotState::Missing);
    };
    let plugin: Option<String> = row.get(0);
    let same_db: Option<bool> = row.get(1);
    let wal_status: String = row.get(2);
    if plugin.as_deref() != Some("pgoutput") || same_db != Some(true) {
        return Err(CdcError::Config(format!(
            "replication slot {} exists but is not a pgoutput slot of this database: choose another slot name",
            config.slot
        )));
    }
    if wal_status == "lost" {
        return Err(CdcError::SlotLost { slot: config.slot.clone(), reason: "wal_status is lost".into() });
    }
    if !snapshot_done {
        return Ok(SlotState::SnapshotIncomplete);
    }
    let confirmed: String = row.get(3);
    let confirmed =
        pgwire_replication::Lsn::parse(&confirmed).map_err(|e| CdcError::Config(format!("slot position: {e}")))?;
    Ok(SlotState::Ready { confirmed: confirmed.0 })
}

/// Records that the slot's snapshot is complete (all its rows acknowledged by Kafka).
pub async fn mark_snapshot_done(client: &Client, config: &Config) -> Result<(), CdcError> {
    client
        .batch_execute(&format!(
            "comment on publication {} is {}",
            quote_ident(&config.publication),
            quote_literal(&snapshot_marker(&config.slot))
        ))
        .await
        .map_err(|e| CdcError::pg("marking the snapshot complete", e))
}

/// Forgets the snapshot marker (before a new slot is created, so a crash mid-snapshot is never mistaken for a
/// completed one).
pub async fn clear_snapshot_mark(client: &Client, config: &Config) -> Result<(), CdcError> {
    client
        .batch_execute(&format!("comment on publication {} is null", quote_ident(&config.publication)))
        .await
        .map_err(|e| CdcError::pg("clearing the snapshot marker", e))
}

/// Drops the slot (after an incomplete snapshot).
pub async fn drop_slot(client: &Client, config: &Config) -> Result<(), CdcError> {
    client
        .execute("select pg_drop_replication_slot($1)", &[&config.slot])
        .await
        .map_err(|e| CdcError::pg("dropping the replication slot", e))?;
    Ok(())
}

/// Connects a normal (SQL) session with the settings the reader relies on (UTC, ISO dates, exact floats).
pub async fn connect(config: &Config) -> Result<Client, CdcError> {
    let mut pg = config.connections.database.clone();
    pg.options(session_options()).application_name("roomsync-cdc");
    let (client, connection) =
        pg.connect(tokio_postgres::NoTls).await.map_err(|e| CdcError::pg("connecting to PostgreSQL", e))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            warn!(error = %error, "postgres connection ended");
        }
    });
    Ok(client)
}

/// Session settings for both connections: values in pgoutput text and in the snapshot look the same.
const SESSION_OPTIONS: &str = "-c TimeZone=UTC -c DateStyle=ISO -c extra_float_digits=3";

/// Both connections also ask the server for TCP keepalives, so a reader whose host vanished without closing them
/// loses its role (see [`take_role`]) and its slot within `supervision::role::KEEPALIVE_SECONDS`.
fn session_options() -> String {
    format!("{SESSION_OPTIONS} {}", supervision::role::keepalive_options())
}

/// Takes the reader's role for the slot on `client`'s session (`supervision::role`): exactly one reader per slot
/// acts (creates, drops, snapshots, streams); another instance of `roomsync run` with the same slot stands by
/// here and takes over once the active reader's session is gone. Without it, a second reader that starts while
/// the first copies its snapshot finds the slot inactive and its snapshot unmarked, drops the slot and starts its
/// own. `false`: shutdown came first.
pub async fn take_role(
    client: &Client,
    config: &Config,
    shutdown: &mut (impl std::future::Future<Output = ()> + Unpin),
) -> Result<bool, CdcError> {
    let role = format!("roomsync-cdc-reader/{}", config.slot);
    supervision::role::take(client, "cdc", &role, shutdown)
        .await
        .map_err(|e| CdcError::pg("taking the reader's role", e))
}

/// Settings of the replication session.
pub fn replication_config(config: &Config) -> Result<pgwire_replication::ReplicationConfig, CdcError> {
    let pg = &config.connections.database;
    let host = match pg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    let user = pg.get_user().unwrap_or("postgres").to_owned();
    let password = pg.get_password().map(|p| String::from_utf8_lossy(p).into_owned()).unwrap_or_default();
    let database = pg.get_dbname().unwrap_or(&user).to_owned();
    Ok(pgwire_replication::ReplicationConfig::new(
        host,
        user,
        password,
        database,
        config.slot.clone(),
        config.publication.clone(),
    )
    .with_port(port)
    .with_status_interval(config.status_interval)
    .with_wakeup_interval(config.status_interval)
    .with_options(session_options())
    .with_application_name("roomsync-cdc"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(quote_ident("bb\"x"), "\"bb\"\"x\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn replication_settings_come_from_the_database_settings() {
        let database = "postgres://cdc:pw@db.example:6543/booking".parse().unwrap_or_else(|e| panic!("{e}"));
        let config = Config::new(streams::Connections::new(streams::KafkaSettings::new("k:1"), "http://r", database));
        let repl = replication_config(&config).expect("valid");
        assert_eq!((repl.host.as_str(), repl.port), ("db.example", 6543));
        assert_eq!((repl.user.as_str(), repl.password.as_str(), repl.database.as_str()), ("cdc", "pw", "booking"));
        assert_eq!(repl.slot, config.slot);
    }
}
