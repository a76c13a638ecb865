//! The Kafka driver: feeds the core from the input topics and sends what it decides.
//!
//! ```text
//!  inputs (manual assignment, all partitions, from the checkpoint)       group member (desired + reservations)
//!    cdc topics --decode--> TransactionAssembler --tx--> Core <-- ledger loaded from own partitions
//!    cdc.transactions (END markers) ----------------^      |
//!    graph.events ---------------------------------------->+--> Emitter: reservations, desired, imports, conflicts
//!                                                                     (acknowledgements awaited by the AckWatcher)
//!  clock: tick every window.tick (items enter the window), quiet period (fallback transaction boundary)
//! ```
//! Invariants: nothing is emitted before every input partition has been read up to its start watermark;
//! a room is emitted for only once its partition is owned and loaded; any transient failure restarts the run
//! from scratch (state rebuilt from the checkpoint and the topics), so no decision is taken on a partial state;
//! a checkpoint is taken only between transactions and written only once the outputs before it are acknowledged.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use apache_avro::types::Value;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use schema_registry::{AvroCodec, RegistryClient};
use streams::{ensure_topics, KafkaSettings, RecordProducer, TopicSpec};
use tokio::time::Instant;
use tracing::{info, warn};
use vocabulary::records::{AvroRecord, DesiredItem, GraphEvent, Reservation};
use vocabulary::topics::Topics;

use crate::config::{Config, TransactionMode};
use crate::core::{Core, Ownership};
use crate::error::{Disposition, ResolverError};
use crate::kafka::acks::AckWatcher;
use crate::kafka::cdc::CdcRecord;
use crate::kafka::emit::Emitter;
use crate::kafka::inputs::{assign_all, input_group, partition_count, watermarks, Positions, REPORT_EVERY};
use crate::kafka::ownership::Membership;
use crate::kafka::transaction::TransactionAssembler;
use crate::liveness::health::{instance_name, Health};
use crate::postgres::conflicts::ConflictStore;

/// The booking and mapping tables the resolver reads: those of the table catalogue whose role it uses
/// ([`vocabulary::tables::Table::read_by_resolver`]).
pub fn source_tables() -> impl Iterator<Item = &'static str> {
    vocabulary::tables::TABLES.iter().filter(|t| t.read_by_resolver()).map(|t| t.name)
}

/// Every topic the resolver reads whole: the CDC topics of [`source_tables`], the Graph events and, with END
/// markers, the transaction topic.
pub fn input_topics(config: &Config) -> Vec<String> {
    let topics = config.connections.topics.clone();
    let mut inputs = cdc_topics(config);
    inputs.push(topics.graph_events());
    if config.transactions == TransactionMode::EndMarkers {
        inputs.push(topics.transactions());
    }
    inputs
}

/// The CDC topics of [`source_tables`].
pub fn cdc_topics(config: &Config) -> Vec<String> {
    let topics = config.connections.topics.clone();
    source_tables().map(|t| topics.cdc(&config.source_schema, t)).collect()
}

/// Every topic the resolver reads or writes, as it creates them when missing (the other stages create theirs
/// too: each with the topic catalogue's cleanup policy, so whichever starts first creates it the same way).
pub fn topic_specs(config: &Config) -> Vec<TopicSpec> {
    let topics = config.connections.topics.clone();
    let outputs = [topics.desired(), topics.reservations(), topics.imports(), topics.dead_letter()];
    input_topics(config).into_iter().chain(outputs).map(|name| TopicSpec::of(&topics, name)).collect()
}

/// Runs the resolver until `shutdown` completes; transient failures start it again after a backoff, rebuilding
/// its state from the topics (`supervision`).
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), ResolverError> {
    supervision::supervise("resolver", shutdown, |stop| {
        let config = &config;
        async move {
            let mut stopped = std::pin::pin!(stop.wait());
            run_once(config, &mut stopped).await
        }
    })
    .await
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

struct Driver {
    core: Core,
    assembler: TransactionAssembler,
    codec: AvroCodec,
    emitter: Emitter,
    topics: Topics,
    caught_up: bool,
    /// Whether the snapshot gate is used (END markers say when the snapshot is whole).
    snapshot_gate: bool,
    /// The initial snapshot was released in parts and is not whole yet: since when no record of it arrived.
    snapshot_open: Option<Instant>,
    max_buffered: usize,
    replayed: usize,
    /// The transaction whose late records were last reported (one warning per transaction).
    late_reported: Option<i64>,
    /// Reads forgotten reservations again from the booking database.
    lookup: crate::postgres::lookup::Lookup,
    /// Liveness facts gathered since the last poll tick.
    input_read: bool,
    late_at_tick: Option<i64>,
}

/// While catching up, prune after this many applied records.
const PRUNE_EVERY: usize = 100_000;

impl Driver {
    /// Whether the driver decides and emits: caught up with its inputs, and not in the middle of an initial
    /// snapshot released in parts. A first start on a large booking database reads a snapshot far larger than
    /// the input buffer while the cdc-reader writes it, and the booking tables come before the seasons,
    /// organisations and rooms: deciding on each part decided on a state that was not the database's, and
    /// assembling and evaluating again after each late record kept a large municipality's first load from
    /// finishing in 20 minutes (benches/README.md). Meanwhile it applies quietly, as while catching up, and
    /// decides once, when the snapshot is whole.
    fn deciding(&self) -> bool {
        self.caught_up && self.snapshot_open.is_none()
    }

    /// Opens the snapshot gate when the snapshot has been released in parts and is not whole yet.
    fn watch_snapshot(&mut self) {
        if self.snapshot_gate && self.snapshot_open.is_none() && self.assembler.snapshot_incomplete() {
            info!("the initial snapshot is read in parts: the resolver decides once it is whole");
            self.snapshot_open = Some(Instant::now());
        }
    }

    /// Closes the snapshot gate when the snapshot is whole, or when none of its records arrived for
    /// [`crate::config::STALL_TIMEOUT`] (a record the resolver could not decode never arrives); says whether
    /// it closed.
    fn snapshot_closed(&mut self) -> bool {
        let Some(since) = self.snapshot_open else { return false };
        if self.assembler.snapshot_incomplete() {
            if since.elapsed() < crate::config::STALL_TIMEOUT {
                return false;
            }
            warn!(
                "the initial snapshot is still incomplete and none of its records arrived for a while: the \
                 resolver decides on what arrived; records arriving later are applied late"
            );
        } else {
            info!("the initial snapshot is whole: the resolver decides");
        }
        self.snapshot_open = None;
        true
    }

    async fn decode_value(&self, bytes: &[u8]) -> Result<Value, ResolverError> {
        Ok(self.codec.decode(bytes).await?.1)
    }

    /// Puts the rows of the forgotten reservations `tx` moves back into the window in front of it.
    async fn restore(&self, tx: Vec<CdcRecord>) -> Result<Vec<CdcRecord>, ResolverError> {
        let forgotten = self.core.forgotten_in(&tx);
        if forgotten.is_empty() {
            return Ok(tx);
        }
        let lookup = &self.lookup;
        let before = tx.iter().map(CdcRecord::position).min().unwrap_or_default();
        let mut records = Vec::new();
        for (kind, id) in forgotten {
            records.extend(lookup.reservation(kind, id, before).await?);
            ::metrics::counter!(crate::metrics::RESTORED, "kind" => kind.as_str()).increment(1);
        }
        records.extend(tx);
        Ok(records)
    }

    async fn apply_ready(&mut self, ready: Vec<Vec<CdcRecord>>) -> Result<(), ResolverError> {
        self.watch_snapshot();
        for tx in ready {
            let tx = self.restore(tx).await?;
            if !self.deciding() {
                // Replaying years of history: forget what ended before the window as we go.
                self.replayed += tx.len();
                if self.replayed >= PRUNE_EVERY {
                    self.replayed = 0;
                    self.core.prune_replayed(now_micros());
                }
            }
            ::metrics::counter!(crate::metrics::TRANSACTIONS_APPLIED).increment(1);
            if self.deciding() {
                let output = self.core.apply_transaction(&tx, now_micros());
                self.emitter.send(&output).await?;
            } else {
                self.core.apply_transaction_quietly(&tx);
            }
        }
        Ok(())
    }

    /// Handles one input record; definite problems are dead-lettered by the caller.
    async fn input(&mut self, topic: &str, key: Option<&[u8]>, value: Option<&[u8]>) -> Result<(), ResolverError> {
        let Some(value) = value else { return Ok(()) };
        let value = self.decode_value(value).await?;
        if topic == self.topics.graph_events() {
            let event = GraphEvent::from_avro(value)?;
            if self.deciding() {
                let output = self.core.apply_graph_event(&event, now_micros());
                self.emitter.send(&output).await?;
            } else {
                self.core.apply_graph_event_quietly(&event);
            }
            return Ok(());
        }
        if topic == self.topics.transactions() {
            if let Some(end) = crate::kafka::cdc::decode_tx_end(&value)? {
                let ready = self.assembler.end(end);
                self.apply_ready(ready).await?;
            }
            return Ok(());
        }
        let key = match key {
            Some(bytes) => Some(self.decode_value(bytes).await?),
            None => None,
        };
        let record = crate::kafka::cdc::decode(key.as_ref(), &value)?;
        if record.snapshot && self.snapshot_open.is_some() {
            self.snapshot_open = Some(Instant::now());
        }
        let pushed = self.assembler.push(topic, record);
        if pushed.duplicate {
            ::metrics::counter!(crate::metrics::REPLAYS_DROPPED).increment(1);
        }
        // The rest of a snapshot released in parts is expected, not late.
        if let Some(commit_lsn) = pushed.late.filter(|lsn| !self.assembler.is_snapshot(*lsn)) {
            self.late_at_tick = Some(commit_lsn);
            ::metrics::counter!(crate::metrics::LATE_RECORDS).increment(1);
            if self.late_reported != Some(commit_lsn) {
                self.late_reported = Some(commit_lsn);
                warn!(commit_lsn, topic, "a record arrived after its transaction was applied incomplete: applied late");
            }
        }
        let mut ready = pushed.ready;
        ready.extend(self.assembler.release_overflow(self.max_buffered));
        self.apply_ready(ready).await
    }

    async fn dead_letter(&self, topic: &str, partition: i32, offset: i64, err: &ResolverError) {
        warn!(topic, partition, offset, error = %err, "input record cannot be processed: sent to the dead-letter topic");
        ::metrics::counter!(crate::metrics::DEAD_LETTERS, "kind" => err.kind()).increment(1);
        let letter = vocabulary::records::DeadLetter {
            stage: "resolver".into(),
            error_kind: err.kind().into(),
            reason: err.to_string(),
            source_topic: Some(topic.to_owned()),
            source_partition: Some(partition),
            source_offset: Some(offset),
            source_key: None,
            source_value: None,
            context: Default::default(),
            occurred_at: chrono::Utc::now().timestamp_millis(),
        };
        let dead_letters = self.topics.dead_letter();
        if let Err(send_err) = self.emitter.producer.send(&dead_letters, topic, None, Some(&letter)).await {
            warn!(error = %send_err, "dead letter could not be sent");
        }
    }
}

fn consumer(settings: &KafkaSettings, group: &str) -> Result<Arc<StreamConsumer>, ResolverError> {
    let consumer: StreamConsumer =
        settings.consumer_config(group).set("partition.assignment.strategy", "range").create().map_err(|e| {
            ResolverError::Stream(streams::StreamError::Kafka { context: "creating a consumer".into(), source: e })
        })?;
    Ok(Arc::new(consumer))
}

async fn run_once(config: &Config, shutdown: &mut (impl Future<Output = ()> + Unpin)) -> Result<(), ResolverError> {
    let topics = config.connections.topics.clone();
    let settings = &config.connections.kafka;
    let inputs = input_topics(config);
    ensure_topics(settings, &topic_specs(config)).await?;

    let codec = AvroCodec::new(RegistryClient::new(&config.connections.registry_url));
    let input_consumer = consumer(settings, &input_group(&config.group))?;
    let group_consumer = consumer(settings, &config.group)?;
    let partitions = partition_count(&group_consumer, &topics.desired()).await?;
    let reservation_partitions = partition_count(&group_consumer, &topics.reservations()).await?;
    if partitions != reservation_partitions || partitions <= 0 {
        return Err(ResolverError::Config(format!(
            "{} has {partitions} partitions and {} has {reservation_partitions}: they must be equal",
            topics.desired(),
            topics.reservations()
        )));
    }
    group_consumer
        .subscribe(&[&topics.desired(), &topics.reservations()])
        .map_err(|e| ResolverError::Stream(streams::StreamError::Kafka { context: "subscribing".into(), source: e }))?;
    let fingerprint = crate::checkpoint::fingerprint(config, &inputs);
    let watermarks = watermarks(&input_consumer, &inputs).await?;
    let (core, start) = start_state(config, &fingerprint, &watermarks).await?;
    let mut progress = assign_all(&input_consumer, &watermarks, &start)?;
    let conflicts = ConflictStore::connect(&config.connections.database).await?;
    let (acks, mut ack_failure) = AckWatcher::start();
    // Names this run on every record it emits, so the output it reads back tells its own records from those of
    // another member that wrote into a partition this one owns (see below).
    let origin = format!("{}:{}", instance_name(), now_micros());
    let emitter = Emitter {
        producer: RecordProducer::new(settings, codec.clone())?.with_origin(origin.clone()),
        topics: topics.clone(),
        partitions,
        conflicts,
        acks,
    };
    let mut driver = Driver {
        core,
        assembler: TransactionAssembler::new(cdc_topics(config)),
        codec,
        emitter,
        topics: topics.clone(),
        caught_up: false,
        snapshot_gate: config.transactions == TransactionMode::EndMarkers,
        snapshot_open: None,
        max_buffered: config.max_buffered_records,
        replayed: 0,
        late_reported: None,
        lookup: crate::postgres::lookup::Lookup::connect(&config.connections.database).await?,
        input_read: false,
        late_at_tick: None,
    };
    let mut health = Health::new(config.stall_after, instance_name());
    driver.core.prune_replayed(now_micros());
    driver.core.ownership = Ownership { partitions, owned: Some(Default::default()) };
    let mut membership = Membership::new(vec![topics.desired(), topics.reservations()]);
    let mut tick = tokio::time::interval(config.window.tick);
    let mut poll = tokio::time::interval(Duration::from_millis(250));
    let mut positions = Positions::starting_at(&start);
    let mut checkpoints = Checkpoints::new(config, fingerprint);
    let mut report = tokio::time::interval(REPORT_EVERY);
    let mut lag_task: Option<tokio::task::JoinHandle<()>> = None;
    let (quiet, release_everything) = match config.transactions {
        TransactionMode::QuietPeriod(quiet) => (quiet, true),
        // A quiet period releases only a snapshot without END marker; an oldest transaction that waits for
        // STALL_TIMEOUT is released whatever the input does.
        TransactionMode::EndMarkers => (Duration::from_secs(1), false),
    };
    let mut last_input = Instant::now();
    // The oldest transaction waiting in the assembler, and since when.
    let mut head: Option<(i64, Instant)> = None;
    let mut assignment = streams::AssignmentWatch::new(std::time::Instant::now(), streams::UNASSIGNED_REPORT_AFTER)
        .with_rejoin(config.connections.kafka.rejoin_unassigned_after);
    info!(partitions, inputs = inputs.len(), "resolver reading its inputs");
    // A desired record of another member arrived in an owned partition since the last full evaluation.
    let mut written_by_another = false;
    loop {
        tokio::select! {
            () = &mut *shutdown => {
                info!("resolver stopping");
                positions.commit_now(&input_consumer).await;
                health.forget(&driver.emitter.conflicts).await;
                driver.emitter.acks.drain().await;
                return Ok(());
            }
            err = ack_failure.failed() => return Err(err.into()),
            message = input_consumer.recv() => {
                let message = message.map_err(|e| ResolverError::Stream(streams::StreamError::Kafka { context: "reading inputs".into(), source: e }))?;
                let (topic, partition, offset) = (message.topic().to_owned(), message.partition(), message.offset());
                let (key, value) = (message.key().map(<[u8]>::to_vec), message.payload().map(<[u8]>::to_vec));
                drop(message);
                last_input = Instant::now();
                driver.input_read = true;
                match driver.input(&topic, key.as_deref(), value.as_deref()).await {
                    Ok(()) => {}
                    Err(err) if err.disposition() == Disposition::DeadLetter => driver.dead_letter(&topic, partition, offset, &err).await,
                    Err(err) => return Err(err),
                }
                progress.read(&topic, partition, offset);
                positions.handled(&topic, partition, offset);
                checkpoints.read += 1;
            }
            _ = report.tick() => {
                positions.commit(&input_consumer);
                if lag_task.as_ref().is_none_or(tokio::task::JoinHandle::is_finished) {
                    lag_task = Some(tokio::spawn(positions.lag_report(&input_consumer)));
                }
            }
            message = group_consumer.recv() => {
                let message = message.map_err(|e| ResolverError::Stream(streams::StreamError::Kafka { context: "reading own partitions".into(), source: e }))?;
                // Once a partition is loaded, what arrives there is this instance's own output read back,
                // possibly older than what the ledger already holds: only loading records count. Except a
                // desired record another member wrote (a member that lost the partition while frozen, running
                // on): it is what the topic, and so the sink, now holds for the item, so the ledger takes it and
                // the owner writes the item again where its own state says otherwise.
                let loading = membership.loading(message.topic(), message.partition());
                membership.read(message.topic(), message.partition(), message.offset());
                let foreign = !loading && streams::origin_of(&message) != Some(origin.as_str());
                if let Some(bytes) = message.payload().filter(|_| loading || foreign) {
                    let desired = message.topic() == topics.desired();
                    if foreign {
                        ::metrics::counter!(crate::metrics::FOREIGN_WRITES, "topic" => if desired { "desired" } else { "reservations" }).increment(1);
                        warn!(topic = message.topic(), partition = message.partition(), offset = message.offset(),
                            origin = ?streams::origin_of(&message),
                            "another member wrote into a partition this instance owns");
                    }
                    let value = driver.decode_value(bytes).await?;
                    if desired {
                        driver.core.ledger.record(&DesiredItem::from_avro(value)?);
                        written_by_another |= foreign;
                    } else if loading {
                        driver.core.load_reservation(&Reservation::from_avro(value)?);
                    }
                }
            }
            _ = tick.tick() => {
                if driver.deciding() {
                    let output = driver.core.tick(now_micros());
                    driver.emitter.send(&output).await?;
                } else {
                    driver.core.prune_replayed(now_micros());
                }
            }
            _ = poll.tick() => {
                membership.refresh(&group_consumer).await?;
                let assigned = membership.assigned_count();
                ::metrics::gauge!(crate::metrics::ASSIGNED_PARTITIONS).set(assigned as f64);
                if let Some(idle) = assignment.observe(assigned, std::time::Instant::now()) {
                    warn!(idle_seconds = idle.as_secs(), "the resolver has no partition of its group: it owns no room \
                        and emits nothing (normal only while other instances hold every partition)");
                }
                if let Some(idle) = assignment.rejoin_due(std::time::Instant::now()) {
                    let group = config.group.clone();
                    return Err(streams::StreamError::Unassigned { group, idle_seconds: idle.as_secs() }.into());
                }
                let facts = crate::liveness::Facts {
                    caught_up: driver.deciding(),
                    oldest_buffered: driver.assembler.oldest_pending(),
                    assigned,
                    owned: membership.owned().len(),
                    input_read: std::mem::take(&mut driver.input_read),
                    incomplete: driver.assembler.take_incomplete().or(driver.late_at_tick.take()),
                };
                health.observe(&facts, &driver.emitter.conflicts).await;
                if release_everything {
                    if driver.assembler.buffered() > 0 && last_input.elapsed() >= quiet {
                        let ready = driver.assembler.release_all();
                        driver.apply_ready(ready).await?;
                    }
                } else {
                    if driver.assembler.buffered() > 0 && last_input.elapsed() >= quiet {
                        let ready = driver.assembler.release_snapshot();
                        driver.apply_ready(ready).await?;
                    }
                    // The oldest transaction waited too long for its END or records (a record the resolver could
                    // not decode never arrives): applied as it is, so everything behind it goes on, under any
                    // input rate; its records arriving later are applied late.
                    let oldest = driver.assembler.oldest_pending();
                    if oldest != head.map(|(lsn, _)| lsn) {
                        head = oldest.map(|lsn| (lsn, Instant::now()));
                    }
                    if head.is_some_and(|(_, since)| since.elapsed() >= crate::config::STALL_TIMEOUT) {
                        let ready = driver.assembler.release_head();
                        driver.apply_ready(ready).await?;
                    }
                }
            }
        }
        let owned = membership.owned();
        let newly_caught_up = !driver.caught_up && progress.caught_up() && driver.assembler.buffered() == 0;
        let ownership_grew = driver.core.ownership.owned.as_ref().is_some_and(|o| owned.iter().any(|p| !o.contains(p)));
        if ownership_grew && owned.len() == membership.assigned_count() {
            info!(partitions = owned.len(), "resolver loaded every partition it is assigned: it owns their rooms");
        }
        if driver.core.ownership.owned.as_ref() != Some(&owned) {
            driver.core.ownership.owned = Some(owned);
        }
        if newly_caught_up {
            info!("resolver caught up with its inputs");
            driver.caught_up = true;
        }
        let snapshot_whole = driver.caught_up && driver.snapshot_closed();
        let start_deciding = driver.deciding() && (newly_caught_up || snapshot_whole);
        if start_deciding {
            // What the replay kept of reservations that ended before the window (links read before their main
            // row was dropped) goes now, not at the next tick: memory after a restart is the window's.
            driver.core.prune(now_micros());
        }
        if driver.deciding() && (start_deciding || ownership_grew || std::mem::take(&mut written_by_another)) {
            let output = driver.core.full(now_micros());
            driver.emitter.send(&output).await?;
        }
        // Between transactions, once caught up: every record before the positions is applied, none after.
        if driver.deciding() && driver.assembler.buffered() == 0 {
            checkpoints.maybe_take(&driver, &positions, start_deciding).await;
        }
    }
}

/// The state to start from and where reading starts: the group's checkpoint when there is a usable one (see
/// [`crate::checkpoint`]), otherwise an empty state and every input from the beginning.
async fn start_state(
    config: &Config,
    fingerprint: &str,
    watermarks: &crate::checkpoint::Watermarks,
) -> Result<(Core, crate::checkpoint::Positions), ResolverError> {
    let empty = || (Core::new(config.policies.clone(), config.window), crate::checkpoint::Positions::new());
    if config.checkpoint_every.is_none() {
        return Ok(empty());
    }
    let stored = match crate::postgres::checkpoint::load(&config.connections.database, &config.group).await? {
        None => {
            info!("no checkpoint yet: the resolver reads every input from the beginning");
            return Ok(empty());
        }
        Some(Err(reason)) => {
            warn!(reason, "the checkpoint cannot be read: the resolver reads every input from the beginning");
            return Ok(empty());
        }
        Some(Ok(stored)) => stored,
    };
    let checkpoint = stored.checkpoint;
    let reason = if checkpoint.fingerprint != fingerprint {
        Some(format!("taken under other settings ({}; now {fingerprint})", checkpoint.fingerprint))
    } else {
        crate::checkpoint::unusable(&checkpoint.positions, watermarks)
    };
    if let Some(reason) = reason {
        warn!(
            reason,
            "the checkpoint does not fit the input topics: the resolver reads every input from the beginning"
        );
        return Ok(empty());
    }
    let bytes = checkpoint.state.len();
    let (policies, window) = (config.policies.clone(), config.window);
    let state = checkpoint.state;
    let restored = tokio::task::spawn_blocking(move || {
        let mut core = Core::new(policies, window);
        core.restore(&state).map(|()| core)
    })
    .await
    .map_err(|e| ResolverError::Config(format!("checkpoint task: {e}")))?;
    match restored {
        Ok(core) => {
            info!(
                written_by = stored.written_by,
                age_seconds = stored.age.as_secs(),
                input_records = checkpoint.input_records,
                bytes,
                "the resolver starts from its checkpoint and reads only what came after it"
            );
            Ok((core, checkpoint.positions))
        }
        Err(err) => {
            warn!(error = %err, "the checkpoint cannot be read: the resolver reads every input from the beginning");
            Ok(empty())
        }
    }
}

/// When and how the state is written to the group's checkpoint.
struct Checkpoints {
    every: Option<Duration>,
    fingerprint: String,
    database: tokio_postgres::Config,
    group: String,
    /// Input records handled since the last checkpoint was taken (or since the start).
    read: u64,
    last: Instant,
    writing: Option<tokio::task::JoinHandle<()>>,
}

impl Checkpoints {
    fn new(config: &Config, fingerprint: String) -> Self {
        Checkpoints {
            every: config.checkpoint_every,
            fingerprint,
            database: config.connections.database.clone(),
            group: config.group.clone(),
            read: 0,
            last: Instant::now(),
            writing: None,
        }
    }

    /// Takes a checkpoint when one is due: right after a start that read anything, then every `every` if
    /// anything was read and the group's checkpoint is older than that (another instance may have written it).
    /// The image is taken here, between transactions; the write waits for every output decided before it to be
    /// acknowledged, in a task of its own.
    async fn maybe_take(&mut self, driver: &Driver, positions: &Positions, start: bool) {
        let Some(every) = self.every else { return };
        if self.read == 0 || self.writing.as_ref().is_some_and(|task| !task.is_finished()) {
            return;
        }
        if !start {
            if self.last.elapsed() < every {
                return;
            }
            self.last = Instant::now();
            match crate::postgres::checkpoint::due(&self.database, &self.group, every).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(err) => {
                    // Only a shortcut for the next start: try again after `every`.
                    warn!(error = %err, "the resolver's checkpoint could not be checked");
                    return;
                }
            }
        }
        let started = std::time::Instant::now();
        let state = match driver.core.image() {
            Ok(state) => state,
            Err(err) => {
                warn!(error = %err, "the resolver's state could not be encoded: no checkpoint");
                return;
            }
        };
        let encoded = started.elapsed();
        let next = positions.next().clone();
        let checkpoint = crate::checkpoint::Checkpoint {
            fingerprint: self.fingerprint.clone(),
            input_records: next.values().sum(),
            positions: next,
            state,
        };
        self.read = 0;
        self.last = Instant::now();
        let acknowledged = driver.emitter.acks.barrier().await;
        let (database, group) = (self.database.clone(), self.group.clone());
        self.writing = Some(tokio::spawn(async move {
            if acknowledged.await.is_err() {
                // An output failed: the driver restarts, and this state may stand for a lost decision.
                return;
            }
            let written = std::time::Instant::now();
            match crate::postgres::checkpoint::write(&database, &group, &checkpoint, &instance_name()).await {
                Ok(()) => {
                    ::metrics::counter!(crate::metrics::CHECKPOINTS_WRITTEN).increment(1);
                    ::metrics::gauge!(crate::metrics::CHECKPOINT_BYTES).set(checkpoint.state.len() as f64);
                    info!(
                        bytes = checkpoint.state.len(),
                        input_records = checkpoint.input_records,
                        encode_ms = encoded.as_millis() as u64,
                        write_ms = written.elapsed().as_millis() as u64,
                        "resolver checkpoint written"
                    );
                }
                Err(err) => {
                    warn!(error = %err, "the resolver's checkpoint could not be written (the next start reads more)")
                }
            }
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resolver_creates_its_topics_with_the_catalogues_cleanup_policy() {
        let kafka = streams::KafkaSettings::new("127.0.0.1:1");
        let config = Config::new(streams::Connections::new(kafka, "http://127.0.0.1:1", Default::default()));
        let topics = config.connections.topics.clone();
        let specs = topic_specs(&config);
        let compacted = |name: &str| specs.iter().find(|s| s.name == name).map(|s| s.compacted);
        // The graph sink creates the imports topic compacted: the resolver, starting first, did it as a plain log.
        assert_eq!(compacted(&topics.imports()), Some(true));
        assert_eq!(compacted(&topics.desired()), Some(true));
        assert_eq!(compacted(&topics.graph_events()), Some(true));
        assert_eq!(compacted(&topics.reservations()), Some(false));
        assert_eq!(compacted(&topics.cdc("public", "bb_event")), Some(false));
    }
}
