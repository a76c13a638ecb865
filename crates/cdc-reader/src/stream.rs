//! The replication stream: pgoutput changes from the slot, assembled per transaction and handed to the
//! pipeline, with the confirmed position fed back to PostgreSQL.
//!
//! ```text
//!  slot --Begin/XLogData/Commit/KeepAlive--> decode --> changes::of_message --> place in tx --> pipeline
//!   ^                                                                                         |
//!   +---- update_applied_lsn(released) <---- progress <---- acks (Kafka) <----------------------+
//! ```
//! Invariants:
//! - the applied LSN given to PostgreSQL is always [`crate::progress::Progress::released`]: the end LSN of a
//!   commit whose records (and all before) Kafka acknowledged, or a keepalive position seen with no transaction
//!   open and nothing pending before it (so an idle slot advances);
//! - every record carries its commit LSN and its own position in the transaction (a key-changing UPDATE makes two
//!   records, at two positions).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use pgwire_replication::{Lsn, ReplicationClient, ReplicationEvent};
use tracing::{debug, info, warn};

use crate::backfill;
use crate::changes::{self, RowChange};
use crate::envelope::{Source, TableSchemas};
use crate::error::{slot_lost_reason, CdcError};
use crate::metrics;
use crate::pgoutput::{self, Message};
use crate::pipeline::{Change, Pipeline};
use crate::progress::TxHandle;
use crate::relation::{RelationCache, Table, TableShape};

/// Microseconds between 1970-01-01 and PostgreSQL's epoch 2000-01-01.
const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

/// The transaction being read.
struct OpenTx {
    handle: TxHandle,
    xid: u32,
    final_lsn: u64,
    commit_ms: i64,
    position: i64,
    /// Ids of backfill signals inserted in this transaction: run before its END (see [`crate::backfill`]).
    signals: Vec<i64>,
}

/// Maps a replication-client error, recognising a lost slot.
pub fn replication_error(context: &str, slot: &str, error: pgwire_replication::PgWireError) -> CdcError {
    match slot_lost_reason(&error.to_string()) {
        Some(reason) => CdcError::SlotLost { slot: slot.to_owned(), reason: reason.to_owned() },
        None => CdcError::repl(context, error),
    }
}

/// Identity of the stream for envelopes.
pub struct StreamContext {
    /// Slot name (for errors).
    pub slot: String,
    /// Database name.
    pub db: String,
    /// Topic prefix.
    pub name: String,
    /// Primary-key columns of the captured tables by (schema, table), from the catalog.
    pub primary_keys: HashMap<(String, String), Vec<String>>,
    /// How often the position is reported (bounds the wait for the last report at shutdown).
    pub status_interval: Duration,
    /// The reader's configuration (backfills connect with it).
    pub config: Arc<crate::Config>,
}

/// Streams until `shutdown` completes (returns `Ok`) or an error ends the connection.
pub async fn run(
    client: &mut ReplicationClient,
    pipeline: &mut Pipeline,
    context: &StreamContext,
    shutdown: &mut (impl Future<Output = ()> + Unpin),
) -> Result<(), CdcError> {
    let mut relations = RelationCache::default();
    let mut open: Option<OpenTx> = None;
    client.update_applied_lsn(Lsn(pipeline.progress.released()));
    loop {
        let has_capacity = pipeline.has_capacity();
        tokio::select! {
            biased;
            () = &mut *shutdown => {
                info!("stopping replication: waiting for Kafka to acknowledge what was produced");
                let settled = tokio::time::timeout(Duration::from_secs(10), pipeline.settle()).await;
                if !matches!(settled, Ok(Ok(()))) {
                    warn!("not every record was acknowledged at shutdown; they will be replayed");
                }
                let released = pipeline.progress.released();
                client.update_applied_lsn(Lsn(released));
                report_before_stop(client, released, context.status_interval).await;
                return Ok(());
            }
            ack = pipeline.recv_ack() => {
                match ack {
                    Some(ack) => pipeline.apply(ack)?,
                    None => return Err(CdcError::Delivery("acknowledgement channel closed".into())),
                }
            }
            event = client.recv(), if has_capacity => {
                let event = event.map_err(|e| replication_error("reading the replication stream", &context.slot, e))?;
                let Some(event) = event else {
                    return Err(CdcError::repl("replication stream", pgwire_replication::PgWireError::Task(
                        "the server ended the replication stream".into())));
                };
                handle_event(event, &mut open, &mut relations, pipeline, context).await?;
            }
        }
        pipeline.drain_acks()?;
        let released = pipeline.progress.released();
        client.update_applied_lsn(Lsn(released));
        ::metrics::gauge!(metrics::CONFIRMED_LSN).set(released as f64);
    }
}

/// Gives the worker up to one status interval to report the final position before the session closes (it
/// sends CopyDone without a last status update); a position not reported is simply replayed next time.
async fn report_before_stop(client: &ReplicationClient, released: u64, status_interval: Duration) {
    let replication_metrics = client.metrics();
    let deadline = tokio::time::Instant::now() + status_interval * 2 + Duration::from_millis(500);
    while replication_metrics.last_applied_lsn() < Lsn(released) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn handle_event(
    event: ReplicationEvent,
    open: &mut Option<OpenTx>,
    relations: &mut RelationCache,
    pipeline: &mut Pipeline,
    context: &StreamContext,
) -> Result<(), CdcError> {
    match event {
        ReplicationEvent::Begin { final_lsn, xid, commit_time_micros } => {
            let handle = pipeline.progress.open(final_lsn.0);
            let commit_ms = (commit_time_micros + PG_EPOCH_OFFSET_MICROS) / 1000;
            *open = Some(OpenTx { handle, xid, final_lsn: final_lsn.0, commit_ms, position: 0, signals: Vec::new() });
        }
        ReplicationEvent::Commit { end_lsn, commit_time_micros, .. } => {
            if let Some(mut tx) = open.take() {
                for id in std::mem::take(&mut tx.signals) {
                    let source = Source {
                        name: context.name.clone(),
                        db: context.db.clone(),
                        snapshot: "true",
                        ts_ms: tx.commit_ms,
                        tx_id: Some(i64::from(tx.xid)),
                        lsn: Some(tx.final_lsn),
                        commit_lsn: tx.final_lsn,
                        tx_position: tx.position,
                    };
                    let target = backfill::Target { handle: tx.handle, source, position: &mut tx.position };
                    backfill::run(&context.config, pipeline, id, target).await?;
                }
                // Records carry the Begin's final LSN as source.commit_lsn: the END record says the same.
                pipeline.end_transaction(tx.handle, Some(i64::from(tx.xid)), tx.final_lsn, tx.commit_ms).await?;
                pipeline.progress.seal(tx.handle, end_lsn.0);
            }
            let now = chrono::Utc::now().timestamp_micros();
            let lag = (now - commit_time_micros - PG_EPOCH_OFFSET_MICROS).max(0) as f64 / 1e6;
            ::metrics::gauge!(metrics::LAG_SECONDS).set(lag);
        }
        ReplicationEvent::KeepAlive { wal_end, .. } => {
            if open.is_none() {
                pipeline.progress.idle(wal_end.0);
            }
            let lag_bytes = wal_end.0.saturating_sub(pipeline.progress.released());
            ::metrics::gauge!(metrics::LAG_BYTES).set(lag_bytes as f64);
        }
        ReplicationEvent::XLogData { wal_start, data, .. } => {
            let message = pgoutput::decode(&data)?;
            handle_change(message, wal_start.0, open, relations, pipeline, context).await?;
        }
        ReplicationEvent::Message { .. } | ReplicationEvent::StoppedAt { .. } => {}
    }
    Ok(())
}

async fn handle_change(
    message: Message,
    change_lsn: u64,
    open: &mut Option<OpenTx>,
    relations: &mut RelationCache,
    pipeline: &mut Pipeline,
    context: &StreamContext,
) -> Result<(), CdcError> {
    if let Message::Relation(relation) = &message {
        let topic = pipeline.topics().cdc(&relation.schema, &relation.table);
        let changed = relations.update(relation, &context.primary_keys, |shape: TableShape| {
            let schemas =
                TableSchemas::generate(&shape).map_err(|e| CdcError::Config(format!("table {}: {e}", shape.table)))?;
            Ok::<_, CdcError>(Table::new(shape, schemas, topic.clone()))
        })?;
        if changed {
            info!(table = %relation.table, columns = relation.columns.len(), "relation described (new or changed)");
            ::metrics::counter!(metrics::RELATION_CHANGES, "table" => relation.table.clone()).increment(1);
            pipeline.ensure_topics(vec![topic]).await?;
        }
        return Ok(());
    }
    let Some(tx) = open.as_mut() else {
        debug!("change outside a transaction ignored");
        return Ok(());
    };
    let mut source = Source {
        name: context.name.clone(),
        db: context.db.clone(),
        snapshot: "false",
        ts_ms: tx.commit_ms,
        tx_id: Some(i64::from(tx.xid)),
        lsn: Some(if change_lsn == 0 { tx.final_lsn } else { change_lsn }),
        commit_lsn: tx.final_lsn,
        tx_position: tx.position,
    };
    let table_of = |oid: u32| relations.get(oid).ok_or(CdcError::UnknownRelation(oid));
    let changes = match &message {
        Message::Insert { relation, .. } | Message::Update { relation, .. } | Message::Delete { relation, .. } => {
            let table = table_of(*relation)?;
            changes::of_message(&table.shape, &message).into_iter().map(|change| (table.clone(), change)).collect()
        }
        Message::Truncate { relations: oids, .. } => {
            oids.iter().map(|oid| Ok((table_of(*oid)?, RowChange::truncate()))).collect::<Result<Vec<_>, CdcError>>()?
        }
        Message::Relation(_) | Message::Other(_) => Vec::new(),
    };
    let now_ms = chrono::Utc::now().timestamp_millis();
    for (table, change) in changes {
        emit(pipeline, tx, &table, change, &mut source, now_ms).await?;
    }
    if let Message::Insert { relation, new } = &message {
        let table = table_of(*relation)?;
        if table.shape.table == backfill::SIGNAL_TABLE && table.shape.schema == context.config.schema {
            match backfill::signal_id(&table, new) {
                Some(id) => tx.signals.push(id),
                None => warn!("a signal row without a readable id was ignored"),
            }
        }
    }
    Ok(())
}

/// Gives `change` the next place in the transaction and hands it to the pipeline.
async fn emit(
    pipeline: &mut Pipeline,
    tx: &mut OpenTx,
    table: &Arc<Table>,
    change: RowChange,
    source: &mut Source,
    now_ms: i64,
) -> Result<(), CdcError> {
    source.tx_position = tx.position;
    let (op, tombstone) = (change.op, change.tombstone);
    let built = change.record(&table.shape, source, now_ms);
    pipeline.emit(tx.handle, Change { table, op, built, source, tombstone }).await?;
    tx.position += 1;
    Ok(())
}
