//! A catching-up unit (a first load, a backlog) writes while it fills.
//!
//! ```text
//! fill: max_batch_records arrived within batch_linger -> catching up:
//!   lock the partitions of those records (as every unit: `fence`), read their stored offsets
//!   then, until a gap longer than batch_linger with the broker holding nothing more, max_catch_up_records or
//!   catch_up_linger:
//!     each record (received and decoded on a task of its own: `Intake`)
//!       -> dropped below PostgreSQL's offset | queued in its mailbox's lane
//!     a lane with nothing running, its calendar check answered (`clean`) and at least five whole `$batch` calls
//!       queued (100 items: a long calendar, which may be the load's longest) -> one round of its whole calls:
//!       rows, lookups or none, intents, writes (`unit::mailbox_round`)
//!     the fill ends before a record of a partition not locked, or of an item already handed to a round: that
//!       record starts the next unit, which sees this unit's results
//!   -> every lane's remaining items, any number, longest lanes first (short lanes load their rows one at a
//!      time, so the long lanes' statements are not queued behind theirs)
//!   -> `finish`: rounds for what is not settled, dead letters, txn B, as every unit
//! ```
//! Why: a first load's backlog (25,900 records at full scale) takes about 1.5 s to fetch and decode; the busiest
//! calendar, the load's critical path, started writing only after all of it was fetched and planned.
//!
//! Invariants, those of every unit (`unit`): the unit's locks are taken before its first write and held until its
//! commit; its commit is one txn B for all of its records, a contiguous run of each partition from the stored
//! offset; an item goes into at most one round during the fill, with its latest record so far. Memory: the
//! records of one unit, as for every unit (`max_catch_up_records`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use schema_registry::AvroCodec;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant as Deadline;
use tracing::debug;
use vocabulary::records::DesiredItem;
use vocabulary::topics::Topics;

use crate::clean::{self, Lookups, Verdict};
use crate::consumer::{Held, SinkConsumer};
use crate::error::SinkError;
use crate::fence;
use crate::imports::Import;
use crate::mapping;
use crate::offsets::{self, Partition};
use crate::unit::{advance, decode_record, mailbox_round, supersede, Aborting, Ended, Prepared, Record};
use crate::work::{Source, Work};
use crate::Sink;

/// Whole `$batch` calls a lane must hold to start while the unit fills. A load takes as long as its longest
/// calendar, which such a lane may be; the others have time to spare and start when the fill ends, so their
/// writes (and their rows and intents on the unit's one connection) do not slow the fill and the longest lanes'
/// statements. Measured on the scale benchmark's first load (benches/README.md): with every lane starting at one
/// call, the fill of 25,900 records took 1.4-2.3 s and the busiest calendar's intents waited 0.3 s behind
/// hundreds of other lanes' statements.
const HEAD_START_CALLS: usize = 5;

/// The items of [`HEAD_START_CALLS`] whole calls: a lane this long is a long one.
const HEAD_START: usize = HEAD_START_CALLS * graph_client::MAX_BATCH;

/// How long calendar checks queued with fewer calendars than a call holds wait for more once a lane could start
/// but for its check: in a first load, whose records come calendar by calendar, the next calendars' first records
/// follow within a few milliseconds, so the checks still go out eight to a call.
const CHECK_LINGER: Duration = Duration::from_millis(50);

/// An item waiting in its lane: its latest record so far, and when it first came.
struct Queued {
    first_seen: u64,
    desired: Option<DesiredItem>,
    source: Source,
}

/// One mailbox's items during the fill.
#[derive(Default)]
struct Lane {
    /// Items not handed to a round yet, by item key.
    queued: HashMap<String, Queued>,
    /// Whether a round of this lane runs.
    busy: bool,
}

/// What one round of a lane takes.
struct Batch {
    mailbox: String,
    /// Item key, latest desired state, its record.
    items: Vec<(String, Option<DesiredItem>, Source)>,
    /// Whether the calendar was checked clean.
    clean: bool,
}

/// A round of one lane: its work items once the round is over.
type Round<'a> = Pin<Box<dyn Future<Output = Result<Vec<Work>, SinkError>> + Send + 'a>>;

/// A catching-up unit while it fills.
#[derive(Default)]
struct Filling {
    lanes: HashMap<String, Lane>,
    /// Lanes whose state changed since they were last looked at.
    dirty: HashSet<String>,
    /// Items handed to a round: (mailbox, item key).
    handed: HashSet<(String, String)>,
    works: Vec<Work>,
    imports: Vec<(Import, Source)>,
    letters: Vec<(String, vocabulary::records::DeadLetter)>,
    next: BTreeMap<Partition, i64>,
    /// Records taken into the unit (those below the stored offsets not counted).
    records: usize,
    /// When the queued calendar checks go out though fewer than a call holds: [`CHECK_LINGER`] after a lane could
    /// have started but for its check.
    checks_due: Option<Deadline>,
    /// Records the unit took arrival numbers from.
    seen: u64,
    rounds: usize,
}

impl Filling {
    /// Marks every lane for [`ready`] to look at (the fill ended, or a calendar check was answered).
    fn look_at_every_lane(&mut self) {
        self.dirty.extend(self.lanes.keys().cloned());
    }
}

/// What a record does to a filling unit.
enum Took {
    /// Taken in (or dropped as applied before).
    Taken,
    /// Not this unit's: it starts the next one.
    Refused(Source),
}

/// What the fill's wait for the next record ended with.
#[allow(clippy::large_enum_variant, reason = "nearly every value is a record; boxing would allocate for each")]
enum Next {
    /// A record, decoded.
    Record(Source, Result<Record, SinkError>),
    /// The consumer failed.
    Failed(SinkError),
    /// A gap with nothing more at the broker, or the catch-up linger passed.
    End,
}

/// Records received ahead of the fill by the intake, at most.
const INTAKE_AHEAD: usize = 1024;

/// Receives and decodes records on a task of its own while a catching-up unit fills, so the fill keeps pace with
/// the broker while the unit's rounds, polled on the unit's task, build and read Graph calls. It alone receives
/// from the consumer until [`Intake::stop`]; what it received that the fill did not take comes back in order.
struct Intake {
    records: mpsc::Receiver<Next>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<Aborting<Option<Source>>>,
}

impl Intake {
    fn start(consumer: SinkConsumer, codec: AvroCodec, topics: Topics) -> Self {
        let (send, records) = mpsc::channel(INTAKE_AHEAD);
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            loop {
                let got = tokio::select! {
                    biased;
                    _ = &mut stopped => return None,
                    record = consumer.recv() => record,
                };
                let next = match got {
                    Ok(record) => {
                        let decoded = decode_record(&codec, &topics, &record).await;
                        Next::Record(record, decoded)
                    }
                    Err(err) => Next::Failed(err),
                };
                // Stopped while waiting for room: the record in hand is handed back after those in the channel.
                let permit = tokio::select! {
                    biased;
                    _ = &mut stopped => return match next {
                        Next::Record(record, _) => Some(record),
                        _ => None,
                    },
                    permit = send.reserve() => permit,
                };
                match permit {
                    Ok(permit) => permit.send(next),
                    Err(_) => return None,
                }
            }
        });
        Intake { records, stop: Some(stop), task: Some(Aborting(task)) }
    }

    /// Stops receiving and hands back, in order, what was received and not taken.
    async fn stop(&mut self) -> Vec<Source> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let in_hand = match self.task.as_mut() {
            Some(task) => (&mut task.0).await.ok().flatten(),
            None => None,
        };
        self.task = None;
        let mut later = Vec::new();
        while let Ok(next) = self.records.try_recv() {
            if let Next::Record(record, _) = next {
                later.push(record);
            }
        }
        later.extend(in_hand);
        later
    }
}

impl Sink {
    /// Applies a catching-up unit whose first `records` came before its linger, going on with what arrives (see the
    /// module docs). `catch_up_end`: when the fill stops taking records.
    pub(crate) async fn apply_catching_up(
        &mut self,
        records: Vec<Source>,
        catch_up_end: Deadline,
        shutdown: &mut (impl Future<Output = ()> + Unpin),
    ) -> Result<Ended, SinkError> {
        let mut partitions: Vec<Partition> = records.iter().map(|r| (r.topic.clone(), r.partition)).collect();
        partitions.sort();
        partitions.dedup();
        // The member stays in its group while another member's unit holds a lock.
        let held = self.consumer.hold(records.len().max(self.config.max_batch_records).max(1));
        let locked = self.lock(&partitions, shutdown).await;
        self.pending.extend(held.release().await);
        if !locked? {
            return Ok(Ended::Interrupted);
        }
        // On an error the sink drops its session, and the locks with it.
        let (ended, held) = self.stream(records, &partitions, catch_up_end, shutdown).await?;
        fence::unlock(&self.db).await?;
        if let Some(held) = held {
            let arrived = held.release().await;
            self.pending.extend(arrived);
        }
        Ok(ended)
    }

    /// The fill with its lanes' rounds, then the rest of the unit. Returns the consumer held since the fill ended.
    async fn stream(
        &mut self,
        records: Vec<Source>,
        partitions: &[Partition],
        catch_up_end: Deadline,
        shutdown: &mut (impl Future<Output = ()> + Unpin),
    ) -> Result<(Ended, Option<Held>), SinkError> {
        let started = Instant::now();
        let stored = offsets::load(&self.db, &self.config.consumer_group, partitions).await?;
        let linger = self.config.batch_linger;
        let limit = self.config.max_catch_up_records;
        let mut unit = Filling::default();
        let mut replayed = 0u64;
        let mut filling = true;
        let mut held: Option<Held> = None;
        let mut gap_end = (Deadline::now() + linger).min(catch_up_end);
        // Short lanes load their rows one at a time, in the order they start (longest first): when the fill ends
        // and hundreds start at once, the long lanes' statements are not queued behind all of theirs on the
        // unit's connection (the busiest calendar's intents waited 0.36 s in the scale benchmark). Long lanes
        // (a head start's worth of items) do not wait for this turn: one that starts after the rest, its calendar
        // check answered last, waited 1.16 s for it.
        let loads = tokio::sync::Mutex::new(());
        let mut rounds: FuturesUnordered<Round<'_>> = FuturesUnordered::new();
        let (db, graph, config) = (&self.db, &self.graph, &self.config);
        let mut first = records.into_iter();
        let mut intake = Intake::start(self.consumer.clone(), self.codec.clone(), self.topics.clone());
        loop {
            if filling && unit.records >= limit {
                filling = false;
            }
            if !filling && held.is_none() {
                debug!(records = unit.records, ms = started.elapsed().as_millis() as u64, "catching-up unit filled");
                // What the intake received beyond the unit starts the next one, after what is already waiting.
                let later = intake.stop().await;
                self.pending.extend(later);
                // From here on what arrives is the next unit's, as while any unit runs.
                held = Some(self.consumer.hold(unit.records.max(self.config.max_batch_records).max(1)));
                unit.look_at_every_lane();
                self.clean.send(graph);
            }
            for batch in ready(&mut unit, &mut self.clean, graph, config, filling) {
                debug!(mailbox = %batch.mailbox, items = batch.items.len(), filling, "lane round");
                unit.rounds += 1;
                rounds.push(Box::pin(lane_round(db, graph, config, &loads, batch)));
            }
            if filling {
                if let Some(record) = first.next().or_else(|| self.pending.pop_front()) {
                    if let Took::Refused(record) =
                        self.take(&mut unit, record, None, partitions, &stored, &mut replayed).await?
                    {
                        // It and every record after it, in order, start the next unit.
                        for later in first.by_ref().rev() {
                            self.pending.push_front(later);
                        }
                        self.pending.push_front(record);
                        filling = false;
                    }
                    continue;
                }
            } else if rounds.is_empty() && unit.lanes.values().all(|lane| lane.queued.is_empty()) {
                break;
            }
            let checking = self.clean.checking();
            tokio::select! {
                biased;
                () = &mut *shutdown => return Ok((Ended::Interrupted, held)),
                Some(done) = rounds.next(), if !rounds.is_empty() => {
                    let works = done?;
                    if let Some(mailbox) = works.first().map(|w| w.mailbox.clone()) {
                        if let Some(lane) = unit.lanes.get_mut(&mailbox) {
                            lane.busy = false;
                        }
                        unit.dirty.insert(mailbox);
                    }
                    unit.works.extend(works);
                }
                Some(()) = self.clean.next_answer(), if checking => unit.look_at_every_lane(),
                () = tokio::time::sleep_until(unit.checks_due.unwrap_or_else(Deadline::now)), if unit.checks_due.is_some() => {
                    unit.checks_due = None;
                    self.clean.send(graph);
                }
                next = next_record(&mut intake, &self.consumer, gap_end, linger, catch_up_end), if filling => match next {
                    Next::Record(record, decoded) => {
                        gap_end = (Deadline::now() + linger).min(catch_up_end);
                        if let Took::Refused(record) = self.take(&mut unit, record, Some(decoded), partitions, &stored, &mut replayed).await? {
                            self.pending.push_front(record);
                            filling = false;
                        }
                    }
                    Next::Failed(err) => return Err(err),
                    Next::End => filling = false,
                },
                // Nothing runs, nothing is awaited: look at every lane again (a check that ended without an
                // answer leaves its lanes to look their items up).
                else => unit.look_at_every_lane(),
            }
        }
        drop(rounds);
        if replayed > 0 {
            metrics::counter!(crate::metrics::RECORDS_REPLAYED).increment(replayed);
        }
        debug!(
            records = unit.records,
            items = unit.works.len(),
            rounds = unit.rounds,
            settled = unit.works.iter().filter(|w| w.is_done()).count(),
            ms = started.elapsed().as_millis() as u64,
            "catching-up unit filled and its lanes ran"
        );
        if unit.next.is_empty() {
            return Ok((Ended::Committed, held));
        }
        let prepared = Prepared {
            works: unit.works,
            imports: unit.imports,
            letters: unit.letters,
            stored,
            next: unit.next,
            started,
            planned: started.elapsed(),
        };
        let ended = self.finish(prepared, shutdown).await?;
        Ok((ended, held))
    }

    /// Takes one record into the filling unit.
    async fn take(
        &self,
        unit: &mut Filling,
        record: Source,
        decoded: Option<Result<Record, SinkError>>,
        partitions: &[Partition],
        stored: &HashMap<Partition, i64>,
        replayed: &mut u64,
    ) -> Result<Took, SinkError> {
        let partition = (record.topic.clone(), record.partition);
        if partitions.binary_search(&partition).is_err() {
            return Ok(Took::Refused(record));
        }
        if offsets::applied(stored, &partition, record.offset) {
            *replayed += 1;
            return Ok(Took::Taken);
        }
        let decoded = match decoded {
            Some(decoded) => decoded,
            None => decode_record(&self.codec, &self.topics, &record).await,
        };
        let decoded = decoded?;
        if let Record::Item(key, _) = &decoded {
            if unit.handed.contains(key) {
                return Ok(Took::Refused(record));
            }
        }
        advance(&mut unit.next, &record);
        match decoded {
            Record::Item((mailbox, item), desired) => {
                unit.seen += 1;
                let seen = unit.seen;
                let lane = unit.lanes.entry(mailbox.clone()).or_default();
                let earlier = lane.queued.remove(&item);
                let first_seen = earlier.as_ref().map_or(seen, |q| q.first_seen);
                let desired = supersede(earlier.as_ref().map(|q| &q.desired), desired);
                lane.queued.insert(item, Queued { first_seen, desired, source: record });
                unit.dirty.insert(mailbox);
            }
            Record::Import(import) => unit.imports.push((import, record)),
            Record::Letter(letter) => unit.letters.push(letter),
            Record::Nothing => {}
        }
        unit.records += 1;
        Ok(Took::Taken)
    }
}

/// The lanes that can start a round now, with their items (earliest first) and whether their calendar was checked
/// clean; their calendars' checks are queued first (`clean`). While the unit fills, a lane starts only with
/// [`HEAD_START_CALLS`] whole `$batch` calls and takes whole calls only (20 items each; the rest waits for more), so
/// the unit sends no more calls than if it wrote everything at its end.
fn ready(
    unit: &mut Filling,
    checks: &mut clean::CleanMailboxes,
    graph: &graph_client::GraphClient,
    config: &crate::Config,
    filling: bool,
) -> Vec<Batch> {
    let call = graph_client::MAX_BATCH;
    let mut out = Vec::new();
    for mailbox in std::mem::take(&mut unit.dirty) {
        let Some(lane) = unit.lanes.get_mut(&mailbox) else { continue };
        if lane.busy || lane.queued.is_empty() {
            continue;
        }
        let verdict = match config.lookups {
            Lookups::Always => Verdict::LookUp,
            Lookups::Checked => {
                checks.foresee(graph, &mailbox);
                checks.verdict(&mailbox)
            }
        };
        let clean = match verdict {
            Verdict::Clean => true,
            Verdict::LookUp => false,
            // Queued with fewer mailboxes than a call holds: sent once the fill ends, or a linger after this lane
            // could start (meanwhile more calendars usually join the call).
            Verdict::Pending { sent: false } if !filling => {
                checks.send(graph);
                continue;
            }
            Verdict::Pending { sent: false } => {
                if lane.queued.len() >= HEAD_START && unit.checks_due.is_none() {
                    unit.checks_due = Some(Deadline::now() + CHECK_LINGER);
                }
                continue;
            }
            // A check that ended without an answer: its items are looked up.
            Verdict::Pending { sent: true } if !checks.checking() => false,
            Verdict::Pending { .. } => continue,
        };
        let n = match (filling, lane.queued.len()) {
            (true, queued) if queued >= HEAD_START => queued / call * call,
            (true, _) => 0,
            (false, queued) => queued,
        };
        if n == 0 {
            continue;
        }
        let mut items: Vec<(String, Queued)> = lane.queued.drain().collect();
        items.sort_by_key(|(_, q)| q.first_seen);
        let rest = items.split_off(n);
        lane.queued.extend(rest);
        lane.busy = true;
        let batch = items
            .into_iter()
            .map(|(item, q)| {
                unit.handed.insert((mailbox.clone(), item.clone()));
                (item, q.desired, q.source)
            })
            .collect();
        out.push(Batch { mailbox, items: batch, clean });
    }
    // Busiest first: their rows and intents lead the connection's queue (a lane's first round is a first load's
    // critical path).
    out.sort_by_key(|batch| std::cmp::Reverse(batch.items.len()));
    out
}

/// Waits for the next record until `gap_end`, and past it while the broker still holds records beyond those
/// received (a large fetch on its way), up to `catch_up_end`.
async fn next_record(
    intake: &mut Intake,
    consumer: &SinkConsumer,
    gap_end: Deadline,
    linger: Duration,
    catch_up_end: Deadline,
) -> Next {
    let mut gap_end = gap_end;
    loop {
        match tokio::time::timeout_at(gap_end, intake.records.recv()).await {
            Ok(Some(next)) => return next,
            Ok(None) => return Next::End,
            Err(_) if Deadline::now() < catch_up_end && consumer.behind().await => {
                gap_end = (Deadline::now() + linger).min(catch_up_end);
            }
            Err(_) => return Next::End,
        }
    }
}

/// One round of a lane's items: their rows, the clean calendar's verdict, lookups, intents and writes.
async fn lane_round(
    db: &tokio_postgres::Client,
    graph: &graph_client::GraphClient,
    config: &crate::Config,
    loads: &tokio::sync::Mutex<()>,
    batch: Batch,
) -> Result<Vec<Work>, SinkError> {
    let Batch { mailbox, items: batch, clean } = batch;
    let keys: Vec<String> = batch.iter().map(|(item, _, _)| item.clone()).collect();
    let mut rows: HashMap<String, mapping::MappingRow> = {
        let _turn = if keys.len() < HEAD_START { Some(loads.lock().await) } else { None };
        mapping::load(db, &mailbox, &keys).await?.into_iter().collect()
    };
    let mut works: Vec<Work> = batch
        .into_iter()
        .map(|(item, desired, source)| {
            let row = rows.remove(&item);
            Work::new(mailbox.clone(), item, desired, row, source)
        })
        .collect();
    if clean {
        clean::skip_in_clean(&mut works);
    }
    mailbox_round(db, graph, config, &mut works).await?;
    Ok(works)
}
