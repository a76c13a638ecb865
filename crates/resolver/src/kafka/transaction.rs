//! Regrouping CDC records into their source transactions, so that a transaction is applied as one step.
//!
//! The records of one PostgreSQL transaction are spread over several CDC topics (a save rewrites bb_event and
//! bb_event_resource). Applying them one by one would show a link rewrite (DELETE + INSERT of the same links)
//! as a cancellation followed by a new reservation. The assembler buffers records by commit LSN and releases a
//! transaction only when it is complete:
//!
//! ```text
//!  data records (any topic) --push--> pending[commit_lsn] --+
//!  END {commit_lsn, counts per topic} --end-------------------+--> complete prefix, in commit order --> apply
//!  quiet period / buffer full (fallback) --release_all/overflow--^
//! ```
//!
//! Invariants: transactions are released in commit-LSN order and never before every earlier one (a later
//! transaction may touch the same key); the initial snapshot (all its records carry the slot's consistent
//! point as commit LSN) is one transaction, complete when anything after it arrives or the input goes quiet;
//! the number of buffered records is bounded by the caller's limit (beyond it the oldest transactions are
//! applied as they are).
//!
//! Replays: after a reconnect or a crash the cdc-reader produces the transactions it had not confirmed again,
//! so the topics may hold a transaction's records and END twice, the first copy possibly incomplete, the copies
//! interleaved with other records in any order across topics. Hence a record is counted once per (topic,
//! position in the transaction), so copies never stand in for a record not yet read. Anything arriving for a
//! commit LSN at or below the last one released never opens a new pending transaction (it would wait at the
//! head for ever, holding back every later one). What it is depends on what became of its transaction:
//! - released complete: every record it counts was applied, so the arrival is a copy and is skipped;
//! - released incomplete (the buffer bound, the stall timeout, a snapshot without END): a record at a position
//!   not seen yet is *late*, not a copy. It is handed on alone and applied (the state keeps the newest position
//!   per key, so applying it late is safe), counted and reported with its transaction's commit LSN;
//! - never seen at all (neither a record nor its END had arrived when the buffer bound released a later
//!   transaction: a rebuild reads the topics at very different speeds): late as well, and remembered from now on
//!   like a transaction released incomplete.
//!
//! Nothing is ever dropped for arriving late: the transactions released complete and those released incomplete
//! are remembered up to [`RELEASED_EARLY_KEPT`] each, the oldest forgotten beyond, and anything arriving for a
//! commit LSN at or below the newest forgotten one is handed on unclassified (the state tells copies by
//! position).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::kafka::cdc::CdcRecord;

/// The END marker of one source transaction (Debezium's transaction metadata, as the cdc-reader emits it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxEnd {
    /// Commit LSN of the transaction (equals `source.commit_lsn` of its records).
    pub commit_lsn: i64,
    /// Data records of the transaction over all topics.
    pub event_count: i64,
    /// Data records per topic.
    pub counts: BTreeMap<String, i64>,
}

#[derive(Debug, Default)]
struct Pending {
    records: Vec<CdcRecord>,
    /// Distinct records per topic (by position in the transaction): replayed copies are not counted twice.
    per_topic: BTreeMap<String, BTreeSet<i64>>,
    end: Option<TxEnd>,
}

/// What [`TransactionAssembler::push`] made of a record.
#[derive(Debug, Default)]
pub struct Pushed {
    /// Transactions (or late records alone) ready to apply, in order.
    pub ready: Vec<Vec<CdcRecord>>,
    /// The record was a copy of one already taken (a replay): skipped.
    pub duplicate: bool,
    /// The record belongs to a transaction released incomplete before it arrived: its commit LSN. It is in
    /// `ready`, alone, applied late.
    pub late: Option<i64>,
}

/// Transactions released before they were complete, and transactions released complete, that are remembered
/// (each), so late records are told from copies (bounds memory; see the module documentation for what happens
/// beyond it).
pub const RELEASED_EARLY_KEPT: usize = 10_000;

impl Pending {
    fn is_snapshot(&self) -> bool {
        self.end.is_none() && self.records.first().is_some_and(|r| r.snapshot)
    }

    fn complete(&self, consumed: &HashSet<String>) -> bool {
        let Some(end) = &self.end else { return false };
        end.counts
            .iter()
            .filter(|(topic, _)| consumed.contains(*topic))
            .all(|(topic, expected)| self.per_topic.get(topic).map_or(0, |seen| seen.len() as i64) >= *expected)
    }
}

/// Buffers CDC records until their transaction is complete.
#[derive(Debug)]
pub struct TransactionAssembler {
    consumed: HashSet<String>,
    pending: BTreeMap<i64, Pending>,
    buffered: usize,
    /// Commit LSN of the last transaction released: everything pending is above it.
    released: Option<i64>,
    /// Transactions released incomplete, by commit LSN: the positions seen and the END if any.
    released_early: BTreeMap<i64, Pending>,
    /// Transactions released complete, by commit LSN: an arrival for one of them is a copy.
    released_complete: BTreeSet<i64>,
    /// The newest commit LSN forgotten from `released_early` or `released_complete`.
    forgotten_up_to: Option<i64>,
    /// The last transaction released incomplete (and reported) since [`TransactionAssembler::take_incomplete`].
    incomplete: Option<i64>,
    /// Commit LSN of the initial snapshot, once one of its records arrived.
    snapshot: Option<i64>,
}

impl TransactionAssembler {
    /// An assembler for a consumer that reads `consumed` topics (counts of other topics are not waited for).
    pub fn new(consumed: impl IntoIterator<Item = String>) -> Self {
        TransactionAssembler {
            consumed: consumed.into_iter().collect(),
            pending: BTreeMap::new(),
            buffered: 0,
            released: None,
            released_early: BTreeMap::new(),
            released_complete: BTreeSet::new(),
            forgotten_up_to: None,
            incomplete: None,
            snapshot: None,
        }
    }

    /// Whether the initial snapshot was released in parts (larger than the buffer, or its END still to come) and
    /// some of its records or its END have not arrived yet. Expected on a first start with a large booking
    /// database; the driver decides nothing meanwhile (see [`crate::kafka::consume`]).
    pub fn snapshot_incomplete(&self) -> bool {
        self.snapshot.is_some_and(|lsn| self.released_early.contains_key(&lsn))
    }

    /// Whether `commit_lsn` is the initial snapshot's.
    pub fn is_snapshot(&self, commit_lsn: i64) -> bool {
        self.snapshot == Some(commit_lsn)
    }

    /// Records waiting for their transaction.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Commit LSN of the oldest transaction waiting (every later one waits behind it).
    pub fn oldest_pending(&self) -> Option<i64> {
        self.pending.first_key_value().map(|(lsn, _)| *lsn)
    }

    /// The last transaction applied incomplete (buffer bound, stall timeout) since the last call.
    pub fn take_incomplete(&mut self) -> Option<i64> {
        self.incomplete.take()
    }

    /// Adds a data record read from `topic`; says what became ready.
    pub fn push(&mut self, topic: &str, record: CdcRecord) -> Pushed {
        let lsn = record.commit_lsn;
        if record.snapshot {
            self.snapshot = Some(lsn);
        }
        if self.is_released(lsn) {
            if self.released_complete.contains(&lsn) {
                // Its transaction was released complete: this is a copy.
                return Pushed { duplicate: true, ..Pushed::default() };
            }
            if !self.released_early.contains_key(&lsn) {
                if self.forgotten_up_to.is_some_and(|forgotten| lsn <= forgotten) {
                    // Perhaps a late record of a forgotten transaction: never dropped on a guess.
                    return Pushed { ready: vec![vec![record]], ..Pushed::default() };
                }
                // Never seen before a later transaction was released: late from its first record on.
                self.remember_early(lsn, Pending::default());
            }
            let Some(early) = self.released_early.get_mut(&lsn) else {
                return Pushed { ready: vec![vec![record]], ..Pushed::default() };
            };
            if !early.per_topic.entry(topic.to_owned()).or_default().insert(record.tx_position) {
                return Pushed { duplicate: true, ..Pushed::default() };
            }
            if early.complete(&self.consumed) {
                self.released_early.remove(&lsn);
                self.remember_complete(lsn);
            }
            return Pushed { ready: vec![vec![record]], late: Some(lsn), ..Pushed::default() };
        }
        let pending = self.pending.entry(lsn).or_default();
        if !pending.per_topic.entry(topic.to_owned()).or_default().insert(record.tx_position) {
            // A replayed copy of a record already buffered.
            return Pushed { duplicate: true, ..Pushed::default() };
        }
        pending.records.push(record);
        self.buffered += 1;
        Pushed { ready: self.release_complete(), ..Pushed::default() }
    }

    /// Adds an END marker; returns the transactions that are now complete.
    pub fn end(&mut self, end: TxEnd) -> Vec<Vec<CdcRecord>> {
        let lsn = end.commit_lsn;
        if self.is_released(lsn) {
            // A replayed END of a transaction already applied, or the END of one released early or not seen yet:
            // it says how many late records to expect.
            let known = self.released_complete.contains(&lsn) || self.released_early.contains_key(&lsn);
            if !known && self.forgotten_up_to.is_none_or(|forgotten| lsn > forgotten) {
                self.remember_early(lsn, Pending::default());
            }
            if let Some(early) = self.released_early.get_mut(&lsn) {
                early.end = Some(end);
                if early.complete(&self.consumed) {
                    self.released_early.remove(&lsn);
                    self.remember_complete(lsn);
                }
            }
            return Vec::new();
        }
        self.pending.entry(lsn).or_default().end = Some(end);
        self.release_complete()
    }

    /// Whether the transaction at `commit_lsn` (or a later one) was released already.
    fn is_released(&self, commit_lsn: i64) -> bool {
        self.released.is_some_and(|released| commit_lsn <= released)
    }

    /// Takes the first pending transaction out, remembering that it was released.
    fn pop_first(&mut self) -> Option<(i64, Pending)> {
        let (lsn, pending) = self.pending.pop_first()?;
        self.released = Some(self.released.map_or(lsn, |released| released.max(lsn)));
        self.buffered = self.buffered.saturating_sub(pending.records.len());
        Some((lsn, pending))
    }

    /// Releases everything buffered, in commit order, without reporting (the quiet-period mode, where no END
    /// ever says a transaction is complete, and a snapshot without END: both by design).
    pub fn release_all(&mut self) -> Vec<Vec<CdcRecord>> {
        let mut out = Vec::new();
        while let Some((lsn, pending)) = self.pop_first() {
            out.extend(self.released_as_it_is(lsn, pending, false));
        }
        out
    }

    /// The records of a transaction released without waiting for completeness; an incomplete one is
    /// remembered, so its late records are told from copies, and reported when `report` (it should have been
    /// complete: the buffer bound or the stall timeout released it).
    fn released_as_it_is(&mut self, lsn: i64, mut pending: Pending, report: bool) -> Option<Vec<CdcRecord>> {
        let records = std::mem::take(&mut pending.records);
        if !pending.complete(&self.consumed) {
            // A snapshot larger than the buffer is released in parts by design, not for a fault.
            let report = report && !self.is_snapshot(lsn);
            if report {
                tracing::warn!(
                    commit_lsn = lsn,
                    records = records.len(),
                    end_seen = pending.end.is_some(),
                    "transaction applied before all its records arrived; records arriving later are applied late"
                );
                ::metrics::counter!(crate::metrics::RELEASED_INCOMPLETE).increment(1);
                self.incomplete = Some(lsn);
            }
            self.remember_early(lsn, pending);
        } else {
            self.remember_complete(lsn);
        }
        (!records.is_empty()).then(|| sorted(records))
    }

    /// Remembers a transaction released before it was complete (or never seen before a later one was released).
    fn remember_early(&mut self, lsn: i64, pending: Pending) {
        self.released_early.insert(lsn, pending);
        while self.released_early.len() > RELEASED_EARLY_KEPT {
            if let Some((forgotten, _)) = self.released_early.pop_first() {
                self.forget_up_to(forgotten);
            }
        }
    }

    /// Remembers a transaction released complete.
    fn remember_complete(&mut self, lsn: i64) {
        self.released_complete.insert(lsn);
        while self.released_complete.len() > RELEASED_EARLY_KEPT {
            if let Some(forgotten) = self.released_complete.pop_first() {
                self.forget_up_to(forgotten);
            }
        }
    }

    fn forget_up_to(&mut self, lsn: i64) {
        self.forgotten_up_to = Some(self.forgotten_up_to.map_or(lsn, |f| f.max(lsn)));
    }

    /// Releases the oldest transaction as it is (it waited too long for its END or records), and whatever is
    /// complete behind it.
    pub fn release_head(&mut self) -> Vec<Vec<CdcRecord>> {
        let mut out = Vec::new();
        if let Some((lsn, pending)) = self.pop_first() {
            out.extend(self.released_as_it_is(lsn, pending, true));
        }
        out.extend(self.release_complete());
        out
    }

    /// Releases the initial snapshot when it is all that is buffered (an idle database after the snapshot sends
    /// nothing that would mark its end).
    pub fn release_snapshot(&mut self) -> Vec<Vec<CdcRecord>> {
        if self.pending.len() == 1 && self.pending.first_key_value().is_some_and(|(_, p)| p.is_snapshot()) {
            return self.release_all();
        }
        Vec::new()
    }

    /// Releases the oldest transactions until at most `limit` records stay buffered (bounded memory).
    pub fn release_overflow(&mut self, limit: usize) -> Vec<Vec<CdcRecord>> {
        let mut out = Vec::new();
        while self.buffered > limit {
            let Some((lsn, pending)) = self.pop_first() else { break };
            out.extend(self.released_as_it_is(lsn, pending, true));
        }
        out
    }

    fn release_complete(&mut self) -> Vec<Vec<CdcRecord>> {
        let mut out = Vec::new();
        loop {
            let mut entries = self.pending.iter();
            let Some((_, first)) = entries.next() else { break };
            // The snapshot has no END marker; it is complete once anything after it has arrived (the
            // cdc-reader streams only after every snapshot record was acknowledged).
            let snapshot_done = first.is_snapshot() && entries.next().is_some();
            if !(snapshot_done || first.complete(&self.consumed)) {
                break;
            }
            let Some((lsn, pending)) = self.pop_first() else { break };
            // A snapshot released this way is done by design; its END and the records of other topics may
            // still come (the topics are read interleaved): they are late, not copies.
            out.extend(self.released_as_it_is(lsn, pending, false));
        }
        out
    }
}

fn sorted(mut records: Vec<CdcRecord>) -> Vec<CdcRecord> {
    records.sort_by_key(CdcRecord::position);
    records
}

#[cfg(test)]
#[path = "transaction_tests.rs"]
mod tests;
