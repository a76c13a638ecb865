//! The consistent initial snapshot: every published row as of the slot's creation point, emitted as op `r`.
//!
//! ```text
//!  replication session: CREATE_REPLICATION_SLOT .. LOGICAL pgoutput EXPORT_SNAPSHOT  -> (consistent point, snapshot)
//!        | kept open, idle                     SQL session: BEGIN REPEATABLE READ; SET TRANSACTION SNAPSHOT ..;
//!        |                                                  per table: portal fetch of N rows at a time -> op r
//!  START_REPLICATION from the slot (= consistent point)  <- after every snapshot row is acknowledged
//! ```
//! Invariant: the snapshot sees exactly the transactions committed before the consistent point, and streaming
//! starts at that point, so no change is lost or doubled at the seam. Rows are fetched in batches through a
//! portal and produced under backpressure, so memory is bounded whatever the table size.

use std::sync::Arc;

use tokio_postgres::Client;
use tracing::info;

use crate::changes::RowChange;
use crate::envelope::{Source, TableSchemas};
use crate::error::CdcError;
use crate::metrics;
use crate::pgoutput::Datum;
use crate::pipeline::{Change, Pipeline};
use crate::relation::{Table, TableShape};
use crate::setup::quote_ident;

/// Builds the [`Table`] of a shape (schemas and topic).
pub fn table_for(shape: TableShape, pipeline: &Pipeline) -> Result<Table, CdcError> {
    let schemas =
        TableSchemas::generate(&shape).map_err(|e| CdcError::Config(format!("table {}: {e}", shape.table)))?;
    let topic = pipeline.topics().cdc(&shape.schema, &shape.table);
    Ok(Table::new(shape, schemas, topic))
}

/// What the snapshot needs to know about its origin.
pub struct SnapshotPoint<'a> {
    /// Name of the snapshot exported by CREATE_REPLICATION_SLOT.
    pub snapshot_name: &'a str,
    /// The slot's consistent point.
    pub lsn: u64,
    /// Database name (for `source.db`).
    pub db: &'a str,
    /// Topic prefix (for `source.name`).
    pub name: &'a str,
}

/// A read-only REPEATABLE READ transaction: one snapshot for every table read in it (taken at its first query,
/// or imported). `what` names the step in the error.
pub(crate) async fn read_only_snapshot<'a>(
    client: &'a mut Client,
    what: &'static str,
) -> Result<tokio_postgres::Transaction<'a>, CdcError> {
    client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(|e| CdcError::pg(what, e))
}

/// Copies every table as of the exported snapshot. Returns the number of rows.
pub async fn copy(
    client: &mut Client,
    tables: &[Arc<Table>],
    pipeline: &mut Pipeline,
    point: &SnapshotPoint<'_>,
    batch_rows: i32,
) -> Result<u64, CdcError> {
    let transaction = read_only_snapshot(client, "starting the snapshot transaction").await?;
    transaction
        .batch_execute(&format!("set transaction snapshot {}", crate::setup::quote_literal(point.snapshot_name)))
        .await
        .map_err(|e| CdcError::pg("importing the exported snapshot", e))?;
    let handle = pipeline.progress.open(point.lsn);
    let context = RowContext { point, started_ms: chrono::Utc::now().timestamp_millis(), handle };
    let mut position: i64 = 0;
    let mut pending: Option<(Arc<Table>, Vec<Datum>)> = None;
    for table in tables {
        let portal = open_rows(&transaction, table, None, &[]).await?;
        let mut rows_of_table = 0u64;
        loop {
            let rows = transaction
                .query_portal(&portal, batch_rows)
                .await
                .map_err(|e| CdcError::pg(format!("copying {}", table.topic), e))?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let tuple = tuple_of(row);
                // One row is held back so the very last row of the snapshot can say so (`snapshot: last`).
                if let Some((held_table, held_tuple)) = pending.replace((table.clone(), tuple)) {
                    emit_row(pipeline, &held_table, &held_tuple, "true", &context, position).await?;
                    position += 1;
                }
                rows_of_table += 1;
            }
            pipeline.drain_acks()?;
        }
        ::metrics::counter!(metrics::SNAPSHOT_ROWS, "table" => table.shape.table.clone()).increment(rows_of_table);
        info!(table = %table.shape.table, rows = rows_of_table, "snapshot of table copied");
    }
    if let Some((held_table, held_tuple)) = pending.take() {
        emit_row(pipeline, &held_table, &held_tuple, "last", &context, position).await?;
        position += 1;
    }
    transaction.commit().await.map_err(|e| CdcError::pg("ending the snapshot transaction", e))?;
    pipeline.end_transaction(handle, None, point.lsn, context.started_ms).await?;
    pipeline.progress.seal(handle, point.lsn);
    Ok(u64::try_from(position).unwrap_or(0))
}

/// Opens a portal over the rows of `table` (every published column cast to text, so rows decode like pgoutput
/// tuples), optionally restricted by a `where` clause with its parameters; fetch it in batches.
pub async fn open_rows(
    transaction: &tokio_postgres::Transaction<'_>,
    table: &Table,
    filter: Option<&str>,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<tokio_postgres::Portal, CdcError> {
    let columns: Vec<String> = table.shape.columns.iter().map(|c| format!("{}::text", quote_ident(&c.name))).collect();
    let sql = format!(
        "select {} from {}.{} {}",
        columns.join(", "),
        quote_ident(&table.shape.schema),
        quote_ident(&table.shape.table),
        filter.unwrap_or_default()
    );
    let failed = |e| CdcError::pg(format!("opening copy of {}", table.topic), e);
    let statement = transaction.prepare(&sql).await.map_err(failed)?;
    transaction.bind(&statement, params).await.map_err(failed)
}

/// A row selected with every column cast to text, as the tuple a pgoutput message would carry.
pub fn tuple_of(row: &tokio_postgres::Row) -> Vec<Datum> {
    (0..row.len())
        .map(|i| match row.get::<_, Option<&str>>(i) {
            Some(text) => Datum::Text(bytes::Bytes::copy_from_slice(text.as_bytes())),
            None => Datum::Null,
        })
        .collect()
}

/// What every row of one snapshot shares.
struct RowContext<'a> {
    point: &'a SnapshotPoint<'a>,
    started_ms: i64,
    handle: crate::progress::TxHandle,
}

/// Produces one snapshot row as op `r`.
async fn emit_row(
    pipeline: &mut Pipeline,
    table: &Table,
    tuple: &[Datum],
    snapshot: &'static str,
    context: &RowContext<'_>,
    position: i64,
) -> Result<(), CdcError> {
    let point = context.point;
    let source = Source {
        name: point.name.to_owned(),
        db: point.db.to_owned(),
        snapshot,
        ts_ms: context.started_ms,
        tx_id: None,
        lsn: Some(point.lsn),
        commit_lsn: point.lsn,
        tx_position: position,
    };
    let built =
        RowChange::read(&table.shape, tuple).record(&table.shape, &source, chrono::Utc::now().timestamp_millis());
    pipeline.emit(context.handle, Change { table, op: "r", built, source: &source, tombstone: false }).await
}
