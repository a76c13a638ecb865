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
//! Replays: after a reconnect the cdc-reader produces the transactions it had not confirmed again, so the
//! topics may hold a transaction's records and END twice, the copies interleaved with other records in any
//! order across topics. Hence a record is counted once per (topic, position in the transaction), so copies never
//! stand in for a record not yet read; and anything arriving for a commit LSN at or below the last one released
//! never opens a new pending transaction (it would wait at the head for ever, holding back every later one):
//! an END is dropped, a record is handed on alone at once (a replayed copy changes nothing in the state, which
//! ignores records at or below a key's applied position; a record of a transaction the fallback released
//! early is applied late rather than never).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::cdc::CdcRecord;

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
}

impl TransactionAssembler {
    /// An assembler for a consumer that reads `consumed` topics (counts of other topics are not waited for).
    pub fn new(consumed: impl IntoIterator<Item = String>) -> Self {
        TransactionAssembler {
            consumed: consumed.into_iter().collect(),
            pending: BTreeMap::new(),
            buffered: 0,
            released: None,
        }
    }

    /// Records waiting for their transaction.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Adds a data record read from `topic`; returns the transactions that are now complete.
    pub fn push(&mut self, topic: &str, record: CdcRecord) -> Vec<Vec<CdcRecord>> {
        if self.is_released(record.commit_lsn) {
            return vec![vec![record]];
        }
        let pending = self.pending.entry(record.commit_lsn).or_default();
        if !pending.per_topic.entry(topic.to_owned()).or_default().insert(record.tx_position) {
            // A replayed copy of a record already buffered.
            return Vec::new();
        }
        pending.records.push(record);
        self.buffered += 1;
        self.release_complete()
    }

    /// Adds an END marker; returns the transactions that are now complete.
    pub fn end(&mut self, end: TxEnd) -> Vec<Vec<CdcRecord>> {
        let lsn = end.commit_lsn;
        if self.is_released(lsn) {
            // A replayed END of a transaction already applied: nothing to wait for.
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
    fn pop_first(&mut self) -> Option<Pending> {
        let (lsn, pending) = self.pending.pop_first()?;
        self.released = Some(self.released.map_or(lsn, |released| released.max(lsn)));
        self.buffered = self.buffered.saturating_sub(pending.records.len());
        Some(pending)
    }

    /// Releases everything buffered, in commit order (quiet-period fallback, shutdown).
    pub fn release_all(&mut self) -> Vec<Vec<CdcRecord>> {
        let mut out = Vec::new();
        while let Some(pending) = self.pop_first() {
            if !pending.records.is_empty() {
                out.push(sorted(pending.records));
            }
        }
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
            let Some(pending) = self.pop_first() else { break };
            if !pending.records.is_empty() {
                out.push(sorted(pending.records));
            }
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
            let Some(pending) = self.pop_first() else { break };
            if !pending.records.is_empty() {
                out.push(sorted(pending.records));
            }
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
