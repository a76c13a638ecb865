//! Backfill on request: chosen tables (or only the rows of chosen resources) copied into their topics again,
//! ordered with the stream.
//!
//! ```text
//!  roomsync backfill --> INSERT INTO roomsync_signals (kind 'backfill', tables, resources)   (commit S)
//!  stream: ... tx < S ... | tx S: the signal's insert, then (before its END) every selected row as op `r`,
//!                         |       read in a REPEATABLE READ snapshot taken after S | ... tx > S ...
//!  the reader writes done_at and rows (or error) back into the signal row
//! ```
//! Why it is correct: the rows carry the signal's commit position S, and the snapshot is taken after S, so it
//! holds every change up to S and possibly some after; those later changes are streamed after the backfill
//! with higher positions, so consumers that keep the highest position per row (the resolver does) end on the
//! latest state, and a row deleted after the snapshot is deleted by a record that follows the backfill.
//! A failed backfill (unknown table, lost connection) is recorded in the signal row and the stream goes on;
//! streaming pauses while the rows are copied (bounded memory: a portal fetches `snapshot_batch_rows` at a time).

use std::sync::Arc;

use tokio_postgres::types::ToSql;
use tracing::{info, warn};
use vocabulary::tables::Role;

use crate::changes::RowChange;
use crate::config::Config;
use crate::envelope::Source;
use crate::error::CdcError;
use crate::metrics;
use crate::pgoutput::Datum;
use crate::pipeline::{Change, Pipeline};
use crate::progress::TxHandle;
use crate::relation::Table;
use crate::setup::{self, quote_ident};

/// The signal table (a roomsync migration creates it; captured like the booking tables).
pub const SIGNAL_TABLE: &str = vocabulary::tables::SIGNALS;

/// A backfill requested by a signal row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The signal row's id.
    pub id: i64,
    /// Tables to copy; empty = every captured table but the signal table.
    pub tables: Vec<String>,
    /// Only the rows of these resources (reservations linked to them, their links, the resource and its room
    /// mapping; other tables whole); empty = every row.
    pub resources: Vec<i32>,
}

/// Where the backfill's records go: the signal's transaction, from `position` on.
pub struct Target<'a> {
    /// The signal transaction's progress handle.
    pub handle: TxHandle,
    /// The source block of the signal transaction (commit LSN, commit time, tx id).
    pub source: Source,
    /// Next position in the transaction; advanced per row.
    pub position: &'a mut i64,
}

/// The id of a signal row from its INSERT tuple (`None` if the tuple has no readable id).
pub fn signal_id(table: &Table, tuple: &[Datum]) -> Option<i64> {
    let index = table.shape.columns.iter().position(|c| c.name == "id")?;
    match tuple.get(index)? {
        Datum::Text(text) => std::str::from_utf8(text).ok()?.parse().ok(),
        _ => None,
    }
}

/// Runs the backfill of signal `id` into the signal's transaction and records the outcome in its row once
/// Kafka acknowledged every copied row. Errors that concern only this request are recorded there and logged;
/// the returned error is for the stream (Kafka trouble: the request is then left open and redone on replay).
pub async fn run(config: &Config, pipeline: &mut Pipeline, id: i64, target: Target<'_>) -> Result<(), CdcError> {
    let mut client = setup::connect(config).await?;
    let request = match read_request(&client, config, id).await {
        Ok(Some(request)) => request,
        Ok(None) => return Ok(()),
        Err(err) => {
            record(&client, config, id, Err(&err)).await;
            return Ok(());
        }
    };
    info!(id, tables = ?request.tables, resources = ?request.resources, "backfill requested");
    let result = match copy(&mut client, config, pipeline, &request, target).await {
        // Done means in Kafka: the outcome is recorded only once every copied row is acknowledged.
        Ok(rows) => pipeline.settle().await.map(|()| rows),
        Err(err) => Err(err),
    };
    match result {
        Ok(rows) => {
            info!(id, rows, "backfill copied");
            ::metrics::counter!(metrics::BACKFILLS, "outcome" => "done").increment(1);
            record(&client, config, id, Ok(rows)).await;
            Ok(())
        }
        // Kafka trouble is the stream's trouble: nothing is recorded, so the replay of the signal's transaction
        // after the reconnect copies the rows again.
        Err(err @ (CdcError::Kafka { .. } | CdcError::Delivery(_) | CdcError::Encoder(_))) => Err(err),
        Err(err) => {
            warn!(id, error = %err, "backfill failed");
            ::metrics::counter!(metrics::BACKFILLS, "outcome" => "failed").increment(1);
            record(&client, config, id, Err(&err)).await;
            Ok(())
        }
    }
}

async fn read_request(client: &tokio_postgres::Client, config: &Config, id: i64) -> Result<Option<Request>, CdcError> {
    let sql = format!(
        "select kind::text, tables, resources, done_at is not null from {}.{} where id = $1",
        quote_ident(&config.schema),
        SIGNAL_TABLE
    );
    let Some(row) = client.query_opt(&sql, &[&id]).await.map_err(|e| CdcError::pg("reading a signal", e))? else {
        return Ok(None);
    };
    let (kind, done): (String, bool) = (row.get(0), row.get(3));
    if kind != "backfill" || done {
        // Done already: a replay of the signal's transaction after a restart does not copy again.
        return Ok(None);
    }
    Ok(Some(Request { id, tables: row.get(1), resources: row.get(2) }))
}

/// The tables to copy: the requested ones, each of which must be captured.
fn selected(config: &Config, request: &Request) -> Result<Vec<String>, CdcError> {
    let captured: Vec<&String> = config.tables.iter().filter(|t| *t != SIGNAL_TABLE).collect();
    if request.tables.is_empty() {
        return Ok(captured.into_iter().cloned().collect());
    }
    let unknown: Vec<&String> = request.tables.iter().filter(|t| !captured.contains(t)).collect();
    if !unknown.is_empty() {
        let names: Vec<&str> = captured.iter().map(|t| t.as_str()).collect();
        return Err(CdcError::Config(format!(
            "not captured, cannot backfill: {}; captured tables: {}",
            unknown.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", "),
            names.join(", ")
        )));
    }
    Ok(request.tables.clone())
}

/// The WHERE clause that keeps only the rows of `$1` (the resources), or `None` for a whole table (one the table
/// catalogue does not tie to resources, or does not know).
pub fn resource_filter(schema: &str, table: &str) -> Option<String> {
    match vocabulary::tables::by_name(table)?.role {
        Role::Main(kind) => {
            let (links, column) = vocabulary::tables::link_of(kind);
            Some(format!(
                "where id in (select {column} from {}.{} where resource_id = any($1))",
                quote_ident(schema),
                links.name
            ))
        }
        Role::Link { .. } | Role::Rooms | Role::CalendarMapping => Some("where resource_id = any($1)".to_owned()),
        Role::Resources => Some("where id = any($1)".to_owned()),
        Role::Buildings | Role::Organizations | Role::Groups | Role::Seasons | Role::Signals => None,
    }
}

async fn copy(
    client: &mut tokio_postgres::Client,
    config: &Config,
    pipeline: &mut Pipeline,
    request: &Request,
    mut target: Target<'_>,
) -> Result<u64, CdcError> {
    let tables = selected(config, request)?;
    // One snapshot for every table, taken at the first query, after the signal committed.
    let transaction = crate::snapshot::read_only_snapshot(client, "starting the backfill snapshot").await?;
    let mut rows = 0u64;
    for name in &tables {
        let Some(shape) = setup::table_shape(&transaction, config, name).await? else {
            return Err(CdcError::Config(format!("table {name} no longer exists or cannot be captured")));
        };
        let table = Arc::new(crate::snapshot::table_for(shape, pipeline)?);
        let filter = if request.resources.is_empty() { None } else { resource_filter(&config.schema, name) };
        let which = Rows { filter: filter.as_deref(), resources: &request.resources };
        rows += copy_table(&transaction, pipeline, &table, which, &mut target, config.snapshot_batch_rows).await?;
    }
    transaction.commit().await.map_err(|e| CdcError::pg("ending the backfill snapshot", e))?;
    Ok(rows)
}

/// Which rows of a table: all, or those the filter keeps for the resources.
#[derive(Clone, Copy)]
struct Rows<'a> {
    filter: Option<&'a str>,
    resources: &'a [i32],
}

async fn copy_table(
    transaction: &tokio_postgres::Transaction<'_>,
    pipeline: &mut Pipeline,
    table: &Arc<Table>,
    rows: Rows<'_>,
    target: &mut Target<'_>,
    batch_rows: i32,
) -> Result<u64, CdcError> {
    let params: Vec<&(dyn ToSql + Sync)> = if rows.filter.is_some() { vec![&rows.resources] } else { Vec::new() };
    let portal = crate::snapshot::open_rows(transaction, table, rows.filter, &params).await?;
    let failed = |e| CdcError::pg(format!("backfilling {}", table.topic), e);
    let mut count = 0u64;
    loop {
        let batch = transaction.query_portal(&portal, batch_rows).await.map_err(failed)?;
        if batch.is_empty() {
            break;
        }
        for row in &batch {
            let tuple = crate::snapshot::tuple_of(row);
            let mut source = target.source.clone();
            source.snapshot = "true";
            source.tx_position = *target.position;
            let now_ms = chrono::Utc::now().timestamp_millis();
            let built = RowChange::read(&table.shape, &tuple).record(&table.shape, &source, now_ms);
            pipeline.emit(target.handle, Change { table, op: "r", built, source: &source, tombstone: false }).await?;
            *target.position += 1;
            count += 1;
        }
        pipeline.drain_acks()?;
    }
    ::metrics::counter!(metrics::SNAPSHOT_ROWS, "table" => table.shape.table.clone()).increment(count);
    Ok(count)
}

/// Records a request to backfill `tables` (empty: every captured table) limited to `resources` (empty: all rows)
/// in the signal table of `schema`; returns its id. With [`record`], this module is the signal table's one
/// writer: the request here, the outcome once the reader has copied the rows.
pub async fn request(
    client: &tokio_postgres::Client,
    schema: &str,
    tables: &[String],
    resources: &[i32],
) -> Result<i64, tokio_postgres::Error> {
    let sql = format!(
        "insert into {}.{SIGNAL_TABLE} (kind, tables, resources) values ('backfill', $1, $2) returning id",
        quote_ident(schema)
    );
    Ok(client.query_one(&sql, &[&tables, &resources]).await?.get(0))
}

/// Writes the outcome into the signal row; a failure to do so is only logged (the rows are in Kafka).
async fn record(client: &tokio_postgres::Client, config: &Config, id: i64, outcome: Result<u64, &CdcError>) {
    let table = format!("{}.{}", quote_ident(&config.schema), SIGNAL_TABLE);
    let (rows, error) = match outcome {
        Ok(rows) => (Some(i64::try_from(rows).unwrap_or(i64::MAX)), None),
        Err(err) => (None, Some(err.to_string())),
    };
    let sql = format!("update {table} set done_at = now(), rows = $2, error = $3 where id = $1");
    if let Err(err) = client.execute(&sql, &[&id, &rows, &error]).await {
        warn!(id, error = %err, "the backfill outcome could not be recorded in its signal row");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backfill_narrows_reservations_through_their_links() {
        assert_eq!(
            resource_filter("public", "bb_booking").as_deref(),
            Some("where id in (select booking_id from \"public\".bb_booking_resource where resource_id = any($1))")
        );
        assert_eq!(resource_filter("public", "bb_season"), None);
    }
}
