//! Streams the booking system's `bb_*` changes from PostgreSQL logical replication (pgoutput) into Kafka.
//!
//! ```text
//!  setup: publication (column lists without sensitive columns) + slot state
//!    |
//!    +-- no slot: CREATE_REPLICATION_SLOT .. EXPORT_SNAPSHOT -> snapshot (op r) -> START_REPLICATION
//!    +-- slot with completed snapshot: START_REPLICATION from its confirmed position
//!    v
//!  stream (stream.rs): decode pgoutput, sequence each transaction's changes (source.tx_position)
//!    -> changes (changes.rs): message -> row changes, a pure function
//!    -> pipeline (pipeline.rs): encode (Avro) and produce to Kafka <cdc topic>  (bad rows -> dead-letter topic)
//!  flush LSN = highest commit fully acknowledged by Kafka (progress.rs)
//! ```
//! Invariant (docs/architecture.md, guarantee 1): the position confirmed to PostgreSQL is never ahead of what Kafka
//! has acknowledged and never goes backwards; after a crash the reader resumes from it, so records may repeat
//! but none is lost. Transient failures reconnect with backoff; a lost slot stops the reader with the recovery
//! steps in its message.
#![warn(missing_docs)]

pub mod backfill;
pub mod changes;
pub mod config;
pub mod datum;
pub mod encoder;
pub mod envelope;
pub mod error;
pub mod metrics;
pub mod pgoutput;
pub mod pipeline;
pub mod produce;
pub mod progress;
pub mod relation;
pub mod setup;
pub mod snapshot;
pub mod stream;
pub mod transaction;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use pgwire_replication::{Lsn, ReplicationClient};
use tracing::{error, info, warn};

pub use config::Config;
pub use encoder::Encoder;
pub use error::{CdcError, Disposition};

use pipeline::Pipeline;
use setup::SlotState;
use stream::{replication_error, StreamContext};

/// Runs the reader until `shutdown` completes (`Ok`) or a definite error stops it, encoding records with the
/// schema registry at `config.schema_registry_url`.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), CdcError> {
    let codec = schema_registry::AvroCodec::new(schema_registry::RegistryClient::new(&config.connections.registry_url));
    run_with_encoder(config, Arc::new(codec), shutdown).await
}

/// [`run`] with another record encoder (tests, benchmarks).
pub async fn run_with_encoder(
    config: Config,
    encoder: Arc<dyn Encoder>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), CdcError> {
    config.validate()?;
    tokio::pin!(shutdown);
    let mut backoff = config.retry_min;
    loop {
        let attempt = tokio::time::Instant::now();
        match run_once(&config, Arc::clone(&encoder), &mut shutdown).await {
            Ok(()) => return Ok(()),
            Err(err) if err.disposition() == Disposition::Retry => {
                // A connection that worked for a while starts the backoff over.
                if attempt.elapsed() > config.retry_max {
                    backoff = config.retry_min;
                }
                let cause = match &err {
                    CdcError::Kafka { .. } | CdcError::Delivery(_) => "kafka",
                    CdcError::Encoder(_) => "encoder",
                    _ => "postgres",
                };
                ::metrics::counter!(metrics::RECONNECTS, "cause" => cause).increment(1);
                warn!(error = %err, retry_in = ?backoff, cause, "cdc reader interrupted; reconnecting");
                tokio::select! {
                    () = &mut shutdown => return Ok(()),
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(config.retry_max);
            }
            Err(err) => {
                error!(error = %err, "cdc reader stopped");
                return Err(err);
            }
        }
    }
}

async fn run_once(
    config: &Config,
    encoder: Arc<dyn Encoder>,
    shutdown: &mut (impl Future<Output = ()> + Unpin),
) -> Result<(), CdcError> {
    let mut sql = setup::connect(config).await?;
    // Nothing touches the publication or the slot before this reader holds the role (for as long as `sql` lives).
    if !setup::take_role(&sql, config, shutdown).await? {
        return Ok(());
    }
    let shapes = setup::captured_tables(&sql, config).await?;
    setup::ensure_publication(&sql, config, &shapes).await?;
    let db: String = sql
        .query_one("select current_database()::text", &[])
        .await
        .map_err(|e| CdcError::pg("reading the database name", e))?
        .get(0);
    let context = StreamContext {
        slot: config.slot.clone(),
        db,
        name: config.connections.topics.prefix().to_owned(),
        status_interval: config.status_interval,
        config: Arc::new(config.clone()),
        primary_keys: shapes
            .iter()
            .map(|s| {
                let keys = s.key_columns().map(|(_, c)| c.name.clone()).collect();
                ((s.schema.clone(), s.table.clone()), keys)
            })
            .collect(),
    };
    let repl_config = setup::replication_config(config)?;
    let mut state = setup::slot_state(&sql, config).await?;
    if state == SlotState::SnapshotIncomplete {
        warn!(slot = %config.slot, "slot exists but its initial snapshot never completed: dropping it to start over");
        setup::drop_slot(&sql, config).await?;
        state = SlotState::Missing;
    }
    let (mut client, mut pipeline) = match state {
        SlotState::Ready { confirmed } => {
            info!(slot = %config.slot, lsn = %Lsn(confirmed), "resuming replication");
            let pipeline = start_pipeline(config, encoder, &shapes, confirmed).await?;
            let mut client = ReplicationClient::connect(repl_config)
                .await
                .map_err(|e| replication_error("connecting for replication", &config.slot, e))?;
            client.wait_started().await.map_err(|e| replication_error("starting replication", &config.slot, e))?;
            (client, pipeline)
        }
        SlotState::Missing | SlotState::SnapshotIncomplete => {
            setup::clear_snapshot_mark(&sql, config).await?;
            let mut client = ReplicationClient::connect_gated(repl_config)
                .await
                .map_err(|e| CdcError::repl("connecting for replication", e))?;
            let (consistent, snapshot_name) = create_slot(&mut client, &config.slot).await?;
            info!(slot = %config.slot, lsn = %Lsn(consistent), "created slot; copying the initial snapshot");
            let mut pipeline = start_pipeline(config, encoder, &shapes, consistent).await?;
            let tables = shapes
                .iter()
                .map(|shape| snapshot::table_for(shape.clone(), &pipeline).map(Arc::new))
                .collect::<Result<Vec<_>, _>>()?;
            let point = snapshot::SnapshotPoint {
                snapshot_name: &snapshot_name,
                lsn: consistent,
                db: &context.db,
                name: &context.name,
            };
            let rows = snapshot::copy(&mut sql, &tables, &mut pipeline, &point, config.snapshot_batch_rows).await?;
            pipeline.settle().await?;
            setup::mark_snapshot_done(&sql, config).await?;
            info!(rows, "initial snapshot acknowledged by Kafka; streaming from the slot's consistent point");
            client.start().await.map_err(|e| CdcError::repl("starting replication", e))?;
            client.wait_started().await.map_err(|e| replication_error("starting replication", &config.slot, e))?;
            (client, pipeline)
        }
    };
    let result = stream::run(&mut client, &mut pipeline, &context, shutdown).await;
    client.stop();
    pipeline.close(Duration::from_secs(5)).await;
    result
}

async fn start_pipeline(
    config: &Config,
    encoder: Arc<dyn Encoder>,
    shapes: &[relation::TableShape],
    confirmed: u64,
) -> Result<Pipeline, CdcError> {
    let mut pipeline = Pipeline::new(config, encoder, confirmed)?;
    let mut topics: Vec<String> = shapes.iter().map(|s| pipeline.topics().cdc(&s.schema, &s.table)).collect();
    topics.push(pipeline.topics().dead_letter());
    if config.transaction_metadata {
        topics.push(pipeline.topics().transactions());
    }
    pipeline.ensure_topics(topics).await?;
    Ok(pipeline)
}

/// Creates the slot on the (not yet started) replication session; returns its consistent point and the name of
/// the exported snapshot, valid while the session stays idle.
async fn create_slot(client: &mut ReplicationClient, slot: &str) -> Result<(u64, String), CdcError> {
    config::validate_name("slot", slot)?;
    let rows = client
        .simple_query(&format!("CREATE_REPLICATION_SLOT {slot} LOGICAL pgoutput EXPORT_SNAPSHOT"))
        .await
        .map_err(|e| CdcError::repl("creating the replication slot", e))?;
    let text = |i: usize| -> Option<String> {
        rows.first()?.get(i)?.as_ref().map(|b| String::from_utf8_lossy(b).into_owned())
    };
    let bad = || CdcError::Config("CREATE_REPLICATION_SLOT returned an unexpected answer".into());
    let consistent = Lsn::parse(&text(1).ok_or_else(bad)?).map_err(|_| bad())?;
    let snapshot = text(2).ok_or_else(bad)?;
    Ok((consistent.0, snapshot))
}
