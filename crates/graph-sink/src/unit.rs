//! One unit of work: a batch of records taken from Kafka, applied to Graph and committed to PostgreSQL.
//!
//! ```text
//! records -> lock their partitions (`fence`: no other member's unit of them runs meanwhile)
//!   -> drop those below PostgreSQL's offsets -> decode -> latest record per item -> load mapping rows
//!   -> rounds until every item is settled:
//!        items seen for the first time in a mailbox with no unknown tagged event skip the lookup (`clean`)
//!        then every mailbox on its own, all at once (busiest first; its Graph calls on a task of their own):
//!          lookups by tag ($batch)
//!          txn A: its intents + transactionIds (one statement) [crash here: replay repeats the same writes]
//!          writes ($batch)                                     [crash here: POST repeats with the same transactionId]
//!        transient failures wait (jittered backoff) and go again, for up to `unit_retry_limit`; then the unit is
//!        abandoned uncommitted and its member rejoins its group
//!   -> dead letters for parked items (acknowledged by Kafka)
//!   -> txn B: results of every item + imports + offsets      [crash after: PostgreSQL already says it is done]
//!      (offsets compare-and-set from the unit's start)
//!   -> unlock -> Kafka offset commit (a hint)
//! ```
//! A catching-up unit runs the same steps per mailbox while it still takes records (`catch_up`).
//!
//! Invariant: the offsets in PostgreSQL move only in txn B, together with the results of every record below
//! them; so a record is either applied and recorded, or will be replayed, and a replay never writes twice.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use futures::future::try_join_all;
use rand::Rng;
use tracing::{debug, info};
use vocabulary::records::DesiredItem;

use crate::config::CrashPoint;
use crate::deadletter;
use crate::error::SinkError;
use crate::fence;
use crate::imports::{self, Import};
use crate::mapping::{self, MappingRow};
use crate::offsets::{self, Partition};
use crate::plan::Step;
use crate::work::{Op, Source, Work};
use crate::writer;
use crate::Sink;

/// How a unit ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// Everything applied and committed.
    Committed,
    /// Shutdown came first: nothing of this unit was committed (it is replayed after a restart).
    Interrupted,
    /// Items kept failing transiently for longer than `unit_retry_limit`: nothing of this unit was committed; the
    /// member rejoins its group, and whichever member then owns the partitions applies the records again.
    Abandoned,
}

/// How a unit's rounds ended.
#[derive(Debug, PartialEq, Eq)]
enum Rounds {
    /// Every item is settled.
    Settled,
    /// Shutdown came first.
    Shutdown,
    /// Transient failures went on for longer than `unit_retry_limit`.
    GaveUp,
}

/// A unit's records, decoded and sorted.
struct Decoded {
    /// The latest desired record per (mailbox, item key).
    latest: HashMap<(String, String), (Option<DesiredItem>, Source)>,
    /// The items in order of first appearance.
    order: Vec<(String, String)>,
    /// Import records, in order (each one applies; none supersedes another).
    imports: Vec<(Import, Source)>,
    /// Dead letters for records that cannot be decoded.
    letters: Vec<(String, vocabulary::records::DeadLetter)>,
}

/// What one record of a unit is.
pub(crate) enum Record {
    /// The desired state of the item `(mailbox, item key)`; `None` for a tombstone.
    Item((String, String), Option<DesiredItem>),
    /// An Outlook booking to import.
    Import(Import),
    /// A record that cannot be applied (it counts as applied once its dead letter is sent).
    Letter((String, vocabulary::records::DeadLetter)),
    /// Nothing to do.
    Nothing,
}

/// A unit ready for its rounds: the work items and what else its commit takes.
pub(crate) struct Prepared {
    /// The work items (any order; `finish` groups them by mailbox).
    pub works: Vec<Work>,
    /// Import records, in order.
    pub imports: Vec<(Import, Source)>,
    /// Dead letters so far.
    pub letters: Vec<(String, vocabulary::records::DeadLetter)>,
    /// The offsets PostgreSQL held when the unit took its locks (the compare-and-set's expected values).
    pub stored: HashMap<Partition, i64>,
    /// The offsets after the unit's records.
    pub next: BTreeMap<Partition, i64>,
    /// When the unit started.
    pub started: Instant,
    /// How long it took until its work items were planned.
    pub planned: Duration,
}

/// Decodes one record. A registry outage is an error of the unit (it is retried after a restart); an undecodable
/// record is a dead letter and counts as applied.
pub(crate) async fn decode_record(
    codec: &schema_registry::AvroCodec,
    topics: &vocabulary::topics::Topics,
    record: &Source,
) -> Result<Record, SinkError> {
    if record.topic == topics.imports() {
        return match imports::decode(codec, record).await {
            Ok(Some(import)) => Ok(Record::Import(import)),
            Ok(None) => Ok(Record::Nothing),
            Err(err) if err.is_transient() => Err(err.into()),
            Err(err) => Ok(Record::Letter(letter(record, "decode", &err.to_string(), None))),
        };
    }
    let desired = match record.decode::<DesiredItem>(codec).await {
        Ok(desired) => desired,
        Err(err) if err.is_transient() => return Err(err.into()),
        Err(err) => return Ok(Record::Letter(letter(record, "decode", &err.to_string(), None))),
    };
    let key = match &desired {
        Some(d) => Some((d.mailbox.clone(), d.item_key.clone())),
        None => record.room_item().map(|(m, i)| (m.to_owned(), i.to_owned())),
    };
    Ok(match key {
        Some(key) => Record::Item(key, desired),
        None => Record::Letter(letter(record, "bad_key", "tombstone without a '<mailbox>/<item>' key", None)),
    })
}

impl Sink {
    /// Decodes the records; the desired state is full state, so only the latest record of an item matters (with
    /// the `rewrite` flag of any of its records).
    async fn decode(&self, records: Vec<Source>) -> Result<Decoded, SinkError> {
        let mut out = Decoded { latest: HashMap::new(), order: Vec::new(), imports: Vec::new(), letters: Vec::new() };
        for record in records {
            match decode_record(&self.codec, &self.topics, &record).await? {
                Record::Item(key, desired) => {
                    let earlier = out.latest.get(&key).map(|(d, _)| d);
                    if out.latest.insert(key.clone(), (supersede(earlier, desired), record)).is_none() {
                        out.order.push(key);
                    }
                }
                Record::Import(import) => out.imports.push((import, record)),
                Record::Letter(letter) => out.letters.push(letter),
                Record::Nothing => {}
            }
        }
        Ok(out)
    }

    /// Applies `records` (in the order Kafka delivered them) and commits, holding the locks of their partitions
    /// throughout (`fence`), so no other member's unit of the same partitions runs meanwhile.
    pub(crate) async fn apply_unit(
        &mut self,
        records: Vec<Source>,
        shutdown: &mut (impl std::future::Future<Output = ()> + Unpin),
    ) -> Result<Ended, SinkError> {
        let mut partitions: Vec<Partition> = records.iter().map(|r| (r.topic.clone(), r.partition)).collect();
        partitions.sort();
        partitions.dedup();
        // The member stays in its group however long the unit takes; on an error the sink drops its consumer.
        // What arrives meanwhile is the next unit's, up to as many records as this unit holds (memory stays
        // bounded by two units): a catching-up unit is followed by another as large, where holding only
        // `max_batch_records` paused the partitions, the refetch after it missed the linger, and a first load of
        // 25,790 events ran as 500-record units in 185 s instead of 24 s (benches/README.md).
        let held = self.consumer.hold(records.len().max(self.config.max_batch_records).max(1));
        let ended = if self.lock(&partitions, shutdown).await? {
            // On an error the sink drops its session, and the locks with it.
            let ended = self.apply_locked(records, &partitions, shutdown).await?;
            fence::unlock(&self.db).await?;
            ended
        } else {
            Ended::Interrupted
        };
        let arrived = held.release().await;
        self.pending.extend(arrived);
        Ok(ended)
    }

    /// Takes the locks of `partitions`, waiting while another member's unit holds one. `false`: shutdown came
    /// first.
    pub(crate) async fn lock(
        &mut self,
        partitions: &[Partition],
        shutdown: &mut (impl std::future::Future<Output = ()> + Unpin),
    ) -> Result<bool, SinkError> {
        let mut waited = false;
        loop {
            let group = self.config.consumer_group.clone();
            let locked = tokio::select! {
                locked = fence::try_lock(&mut self.db, &group, partitions) => locked?,
                () = &mut *shutdown => return Ok(false),
            };
            if locked {
                return Ok(true);
            }
            if !waited {
                waited = true;
                metrics::counter!(crate::metrics::FENCE_WAITS).increment(1);
                info!(?partitions, "another member is applying a unit of the same partitions; waiting for it");
            }
        }
    }

    async fn apply_locked(
        &mut self,
        records: Vec<Source>,
        partitions: &[Partition],
        shutdown: &mut (impl std::future::Future<Output = ()> + Unpin),
    ) -> Result<Ended, SinkError> {
        let started = Instant::now();
        let stored = offsets::load(&self.db, &self.config.consumer_group, partitions).await?;
        let Some(records) = self.position(records, &stored) else { return Ok(Ended::Committed) };
        let mut next: BTreeMap<Partition, i64> = BTreeMap::new();
        for r in &records {
            advance(&mut next, r);
        }
        let Decoded { latest, order, imports, letters } = self.decode(records).await?;
        let works = self.plan(order, latest).await?;
        let planned = started.elapsed();
        self.finish(Prepared { works, imports, letters, stored, next, started, planned }, shutdown).await
    }

    /// The rest of a unit once its work items are planned: rounds until every item is settled, dead letters,
    /// txn B, the Kafka commit.
    pub(crate) async fn finish(
        &mut self,
        unit: Prepared,
        shutdown: &mut (impl std::future::Future<Output = ()> + Unpin),
    ) -> Result<Ended, SinkError> {
        let Prepared { mut works, imports: import_records, mut letters, stored, next, started, planned } = unit;
        // Grouped by mailbox, so each mailbox's items form one slice for its $batch calls.
        works.sort_by(|a, b| a.mailbox.cmp(&b.mailbox));
        match self.rounds(&mut works, shutdown).await? {
            Rounds::Settled => {}
            Rounds::Shutdown => return Ok(Ended::Interrupted),
            Rounds::GaveUp => return Ok(Ended::Abandoned),
        }
        let written = started.elapsed();
        for work in &works {
            if let (Some((Op::Park, _)), Some(kind)) = (&work.done, work.park_kind) {
                let reason = match &work.done {
                    Some((_, Some(mapping::Settled::Parked { reason, .. }))) => reason.clone(),
                    _ => String::new(),
                };
                letters.push(letter(&work.source, kind, &reason, Some(work)));
                metrics::counter!(crate::metrics::ITEMS_PARKED, "kind" => kind).increment(1);
            }
        }
        deadletter::send(&self.producer, &self.topics.dead_letter(), &letters).await?;
        self.commit(&works, &import_records, &stored, &next).await?;
        if self.config.crash_at(CrashPoint::AfterCommit) {
            return Err(SinkError::Crashed(CrashPoint::AfterCommit));
        }
        self.consumer.commit(&next);
        let now_ms = chrono::Utc::now().timestamp_millis();
        for work in &works {
            if let Some((op, _)) = &work.done {
                metrics::counter!(crate::metrics::ITEMS_APPLIED, "op" => op.as_str()).increment(1);
                if let Some(seconds) = crate::work::end_to_end_seconds(work.desired.as_ref(), *op, now_ms) {
                    metrics::histogram!(crate::metrics::END_TO_END_SECONDS, "op" => op.as_str()).record(seconds);
                }
            }
        }
        metrics::histogram!(crate::metrics::UNIT_SECONDS).record(started.elapsed().as_secs_f64());
        debug!(
            items = works.len(),
            imports = import_records.len(),
            planned_ms = planned.as_millis() as u64,
            written_ms = written.as_millis() as u64,
            committed_ms = started.elapsed().as_millis() as u64,
            "unit committed"
        );
        Ok(Ended::Committed)
    }

    /// Drops records PostgreSQL says were applied (another member moved their partition on, or this one holds
    /// records of a partition it was reassigned). `None`: nothing left.
    fn position(&self, records: Vec<Source>, stored: &HashMap<Partition, i64>) -> Option<Vec<Source>> {
        let before = records.len();
        let kept: Vec<Source> = records
            .into_iter()
            .filter(|r| !offsets::applied(stored, &(r.topic.clone(), r.partition), r.offset))
            .collect();
        let replayed = before - kept.len();
        if replayed > 0 {
            metrics::counter!(crate::metrics::RECORDS_REPLAYED).increment(replayed as u64);
        }
        (!kept.is_empty()).then_some(kept)
    }

    /// Builds the work items with their mapping rows.
    async fn plan(
        &self,
        order: Vec<(String, String)>,
        mut latest: HashMap<(String, String), (Option<DesiredItem>, Source)>,
    ) -> Result<Vec<Work>, SinkError> {
        let mut by_mailbox: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (mailbox, item) in &order {
            by_mailbox.entry(mailbox.clone()).or_default().push(item.clone());
        }
        let mut rows: HashMap<(String, String), MappingRow> = HashMap::new();
        for (mailbox, items) in &by_mailbox {
            for (item, row) in mapping::load(&self.db, mailbox, items).await? {
                rows.insert((mailbox.clone(), item), row);
            }
        }
        let mut works = Vec::new();
        for key in order {
            let Some((desired, source)) = latest.remove(&key) else { continue };
            let row = rows.remove(&key);
            works.push(Work::new(key.0, key.1, desired, row, source));
        }
        Ok(works)
    }

    /// Rounds of lookups, intents and writes until every item is settled, shutdown comes, or items have failed
    /// transiently for longer than `unit_retry_limit` (counted from the first failure).
    async fn rounds(
        &mut self,
        works: &mut [Work],
        shutdown: &mut (impl std::future::Future<Output = ()> + Unpin),
    ) -> Result<Rounds, SinkError> {
        let mut first_failure: Option<Instant> = None;
        let mut round = 0u32;
        let mut failed_rounds = 0u32;
        let failures = |works: &[Work]| works.iter().map(|w| w.failures).sum::<u32>();
        // From zero: items that already failed in a catching-up unit's rounds during its fill wait before they
        // go again (otherwise every item starts without failures, and this is the same).
        let mut failed_before = 0;
        while works.iter().any(|w| !w.is_done()) {
            // Only a round with transient failures waits; an item that merely moved on (a vanished event
            // looked up again) goes straight into the next round.
            if failures(works) > failed_before {
                failed_before = failures(works);
                failed_rounds += 1;
                let failing_for = first_failure.get_or_insert_with(Instant::now).elapsed();
                if failing_for >= self.config.unit_retry_limit {
                    return Ok(Rounds::GaveUp);
                }
                let wait = self.backoff(failed_rounds);
                debug!(round, wait_ms = wait.as_millis() as u64, "retrying items that failed transiently");
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = &mut *shutdown => return Ok(Rounds::Shutdown),
                }
            }
            round += 1;
            let round_started = Instant::now();
            debug!(round, "unit round");
            let graph = self.graph.clone();
            if self.config.lookups == crate::clean::Lookups::Checked {
                let skipped = self.clean.skip_lookups(&graph, works).await;
                debug!(round, skipped, ms = round_started.elapsed().as_millis() as u64, "lookups skipped");
            }
            // Each mailbox goes through its lookups, intents and writes on its own, so the busiest calendar (a
            // first load's critical path) starts writing once its own intents are recorded, not after every
            // mailbox's lookups and one intent transaction for all of them. Busiest first: its statements lead
            // the connection's queue. The first error ends the round (the unit is then not committed).
            let mut mailboxes: Vec<&mut [Work]> = works.chunk_by_mut(|a, b| a.mailbox == b.mailbox).collect();
            mailboxes.sort_by_key(|items| std::cmp::Reverse(items.iter().filter(|w| !w.is_done()).count()));
            let (db, config) = (&self.db, &self.config);
            try_join_all(mailboxes.into_iter().map(|items| mailbox_round(db, &graph, config, items))).await?;
            debug!(round, ms = round_started.elapsed().as_millis() as u64, "unit round done");
        }
        Ok(Rounds::Settled)
    }

    /// Txn B: every item's result, the imports and the offsets, atomically.
    async fn commit(
        &mut self,
        works: &[Work],
        import_records: &[(Import, Source)],
        started: &HashMap<Partition, i64>,
        next: &BTreeMap<Partition, i64>,
    ) -> Result<(), SinkError> {
        let group = self.config.consumer_group.clone();
        let import_bb_events = self.config.import_bb_events;
        let conflicts = self.config.record_import_conflicts.then_some(self.config.conflict_policy);
        let tx = self.db.transaction().await.map_err(SinkError::pg("starting the result transaction"))?;
        let outcomes: Vec<mapping::Outcome<'_>> = works
            .iter()
            .filter_map(|work| match (&work.done, &work.identity) {
                (Some((_, Some(settled))), Some(identity)) => Some(mapping::Outcome {
                    mailbox: &work.mailbox,
                    item_key: &work.item_key,
                    identity,
                    transaction_id: work.transaction_id,
                    settled,
                }),
                _ => None,
            })
            .collect();
        mapping::settle_all(&tx, &outcomes).await?;
        for (import, _) in import_records {
            imports::apply(&tx, import, import_bb_events, conflicts).await?;
        }
        offsets::store(&tx, &group, started, next).await?;
        tx.commit().await.map_err(SinkError::pg("committing results and offsets"))?;
        Ok(())
    }

    fn backoff(&self, round: u32) -> Duration {
        let exp = self.config.retry_backoff.saturating_mul(2u32.saturating_pow(round.saturating_sub(1).min(16)));
        exp.min(self.config.max_retry_backoff).mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
    }
}

/// A dead letter for `source`, keyed as the record was.
pub(crate) fn letter(
    source: &Source,
    kind: &str,
    reason: &str,
    work: Option<&Work>,
) -> (String, vocabulary::records::DeadLetter) {
    let mut context = BTreeMap::new();
    if let Some(work) = work {
        context.insert("mailbox".to_owned(), work.mailbox.clone());
        context.insert("item_key".to_owned(), work.item_key.clone());
        if let Step::Update(id) | Step::Delete(id) = &work.step {
            context.insert("event_id".to_owned(), id.clone());
        }
    }
    let key = source.key_text().unwrap_or_default().to_owned();
    (key, deadletter::letter(source, kind, reason, context))
}

/// The desired state that replaces `earlier` within one unit: `later`, keeping a revert (`rewrite`) among the
/// item's earlier records.
pub(crate) fn supersede(earlier: Option<&Option<DesiredItem>>, later: Option<DesiredItem>) -> Option<DesiredItem> {
    let rewrite = earlier.and_then(Option::as_ref).is_some_and(|d| d.rewrite);
    let mut later = later;
    if let Some(d) = later.as_mut() {
        d.rewrite |= rewrite;
    }
    later
}

/// Moves a partition's next offset past `record`.
pub(crate) fn advance(next: &mut BTreeMap<Partition, i64>, record: &Source) {
    let slot = next.entry((record.topic.clone(), record.partition)).or_insert(0);
    *slot = (*slot).max(record.offset + 1);
}

/// One round of one mailbox's items: lookups by tag, the intents, the writes.
pub(crate) async fn mailbox_round(
    db: &tokio_postgres::Client,
    graph: &graph_client::GraphClient,
    config: &crate::Config,
    items: &mut [Work],
) -> Result<(), SinkError> {
    let started = Instant::now();
    let mailbox = items.first().map(|w| w.mailbox.clone()).unwrap_or_default();
    on_a_task(graph, &mailbox, items, Phase::Find).await?;
    let found = started.elapsed();
    if announce(db, items).await? && config.crash_at(CrashPoint::AfterIntent) {
        return Err(SinkError::Crashed(CrashPoint::AfterIntent));
    }
    let announced = started.elapsed();
    let writing = items.iter().any(|w| !w.is_done() && w.intent().is_some());
    on_a_task(graph, &mailbox, items, Phase::Write).await?;
    if writing && config.crash_at(CrashPoint::AfterGraph) {
        return Err(SinkError::Crashed(CrashPoint::AfterGraph));
    }
    debug!(
        %mailbox,
        items = items.len(),
        found_ms = found.as_millis() as u64,
        announced_ms = announced.as_millis() as u64,
        ms = started.elapsed().as_millis() as u64,
        "mailbox round done"
    );
    Ok(())
}

/// The Graph calls of one mailbox's round.
#[derive(Debug, Clone, Copy)]
enum Phase {
    Find,
    Write,
}

impl Phase {
    /// Whether `work` takes part in this phase (the same filters as `writer::find` and `writer::write`).
    fn concerns(self, work: &Work) -> bool {
        !work.is_done()
            && match self {
                Phase::Find => work.step == Step::Find,
                Phase::Write => work.intent().is_some(),
            }
    }
}

/// A spawned task aborted when this is dropped: work started for a unit ends with the unit (one dropped on
/// shutdown or an error reads and writes nothing more).
pub(crate) struct Aborting<T>(pub tokio::task::JoinHandle<T>);

impl<T> Drop for Aborting<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs one phase of a mailbox's calls on a task of its own: building and reading the `$batch` calls of hundreds
/// of mailboxes at once is most of a first load's work, and on the unit's task it delayed each next call of the
/// longest calendar (the load's critical path) behind every other mailbox's answers. Nothing is written twice by
/// this: the items are taken back, with their new steps, before the round goes on.
async fn on_a_task(
    graph: &graph_client::GraphClient,
    mailbox: &str,
    items: &mut [Work],
    phase: Phase,
) -> Result<(), SinkError> {
    if !items.iter().any(|w| phase.concerns(w)) {
        return Ok(());
    }
    let (graph, mailbox, mut owned) = (graph.clone(), mailbox.to_owned(), items.to_vec());
    let mut task = Aborting(tokio::spawn(async move {
        match phase {
            Phase::Find => writer::find(&graph, &mailbox, &mut owned).await,
            Phase::Write => writer::write(&graph, &mailbox, &mut owned).await,
        }
        owned
    }));
    match (&mut task.0).await {
        Ok(done) => {
            items.clone_from_slice(&done);
            Ok(())
        }
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(err) => Err(SinkError::Cancelled(format!("a mailbox's Graph calls: {err}"))),
    }
}

/// Records the intent (and transactionId) of every item of one mailbox about to be written whose intent is not
/// yet recorded, in one statement (atomic on its own; the statements of several mailboxes share the connection).
/// Returns whether anything was recorded.
async fn announce(db: &tokio_postgres::Client, works: &mut [Work]) -> Result<bool, SinkError> {
    let pending: Vec<usize> = (0..works.len())
        .filter(|&i| {
            let w = &works[i];
            !w.is_done() && w.intent().is_some() && w.identity.is_some() && w.announced.as_ref() != Some(&w.step)
        })
        .collect();
    if pending.is_empty() {
        return Ok(false);
    }
    let intents: Vec<mapping::Intent<'_>> = pending
        .iter()
        .filter_map(|&i| {
            let work = &works[i];
            Some(mapping::Intent {
                mailbox: &work.mailbox,
                item_key: &work.item_key,
                identity: work.identity.as_ref()?,
                intent: work.intent()?,
                transaction_id: work.transaction_id,
            })
        })
        .collect();
    mapping::record_intents(db, &intents).await?;
    for i in pending {
        works[i].announced = Some(works[i].step.clone());
    }
    Ok(true)
}
