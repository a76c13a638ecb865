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

use std::collections::{BTreeMap, HashSet};

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
    per_topic: BTreeMap<String, i64>,
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
            .all(|(topic, expected)| self.per_topic.get(topic).copied().unwrap_or(0) >= *expected)
    }
}

/// Buffers CDC records until their transaction is complete.
#[derive(Debug)]
pub struct TransactionAssembler {
    consumed: HashSet<String>,
    pending: BTreeMap<i64, Pending>,
    buffered: usize,
}

impl TransactionAssembler {
    /// An assembler for a consumer that reads `consumed` topics (counts of other topics are not waited for).
    pub fn new(consumed: impl IntoIterator<Item = String>) -> Self {
        TransactionAssembler { consumed: consumed.into_iter().collect(), pending: BTreeMap::new(), buffered: 0 }
    }

    /// Records waiting for their transaction.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Adds a data record read from `topic`; returns the transactions that are now complete.
    pub fn push(&mut self, topic: &str, record: CdcRecord) -> Vec<Vec<CdcRecord>> {
        let pending = self.pending.entry(record.commit_lsn).or_default();
        *pending.per_topic.entry(topic.to_owned()).or_insert(0) += 1;
        pending.records.push(record);
        self.buffered += 1;
        self.release_complete()
    }

    /// Adds an END marker; returns the transactions that are now complete.
    pub fn end(&mut self, end: TxEnd) -> Vec<Vec<CdcRecord>> {
        let lsn = end.commit_lsn;
        self.pending.entry(lsn).or_default().end = Some(end);
        self.release_complete()
    }

    /// Releases everything buffered, in commit order (quiet-period fallback, shutdown).
    pub fn release_all(&mut self) -> Vec<Vec<CdcRecord>> {
        let pending = std::mem::take(&mut self.pending);
        self.buffered = 0;
        pending.into_values().map(|p| sorted(p.records)).filter(|r| !r.is_empty()).collect()
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
            let Some((_, pending)) = self.pending.pop_first() else { break };
            self.buffered = self.buffered.saturating_sub(pending.records.len());
            out.push(sorted(pending.records));
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
            let Some((_, pending)) = self.pending.pop_first() else { break };
            self.buffered = self.buffered.saturating_sub(pending.records.len());
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
mod tests {
    use super::*;
    use crate::cdc::{Op, Row};

    fn record(table: &str, lsn: i64, position: i64) -> CdcRecord {
        CdcRecord {
            table: table.into(),
            op: Op::Insert,
            key: Row::new(),
            after: Some(Row::new()),
            commit_lsn: lsn,
            tx_position: position,
            commit_ts_ms: 0,
            snapshot: false,
        }
    }

    fn end(lsn: i64, counts: &[(&str, i64)]) -> TxEnd {
        TxEnd {
            commit_lsn: lsn,
            event_count: counts.iter().map(|(_, n)| n).sum(),
            counts: counts.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect(),
        }
    }

    fn assembler() -> TransactionAssembler {
        TransactionAssembler::new(["t.event".to_owned(), "t.link".to_owned()])
    }

    #[test]
    fn a_transaction_is_released_only_when_its_end_and_all_counted_records_arrived() {
        let mut tx = assembler();
        assert!(tx.push("t.link", record("link", 10, 1)).is_empty());
        assert!(tx.end(end(10, &[("t.event", 1), ("t.link", 2)])).is_empty());
        assert!(tx.push("t.event", record("event", 10, 0)).is_empty());
        let ready = tx.push("t.link", record("link", 10, 2));
        assert_eq!(ready.len(), 1);
        let positions: Vec<i64> = ready[0].iter().map(|r| r.tx_position).collect();
        assert_eq!(positions, vec![0, 1, 2], "released in transaction order");
        assert_eq!(tx.buffered(), 0);
    }

    #[test]
    fn a_later_complete_transaction_waits_for_an_earlier_incomplete_one() {
        let mut tx = assembler();
        tx.push("t.event", record("event", 10, 0));
        tx.push("t.event", record("event", 20, 0));
        assert!(tx.end(end(20, &[("t.event", 1)])).is_empty());
        let ready = tx.end(end(10, &[("t.event", 1)]));
        let lsns: Vec<i64> = ready.iter().map(|t| t[0].commit_lsn).collect();
        assert_eq!(lsns, vec![10, 20]);
    }

    #[test]
    fn counts_of_topics_the_resolver_does_not_read_are_not_waited_for() {
        let mut tx = assembler();
        tx.push("t.event", record("event", 10, 0));
        let ready = tx.end(end(10, &[("t.event", 1), ("t.deadletter", 1)]));
        assert_eq!(ready.len(), 1);
    }

    #[test]
    fn the_snapshot_is_one_transaction_complete_when_streaming_begins() {
        let mut tx = assembler();
        for position in 0..3 {
            let mut snap = record("event", 5, position);
            snap.snapshot = true;
            assert!(tx.push("t.event", snap).is_empty());
        }
        let ready = tx.push("t.event", record("event", 9, 0));
        assert_eq!(ready.len(), 1, "the snapshot, released whole");
        assert_eq!(ready[0].len(), 3);
        assert_eq!(tx.end(end(9, &[("t.event", 1)])).len(), 1);
    }

    #[test]
    fn a_snapshot_alone_is_released_by_release_snapshot_and_a_pending_transaction_is_not() {
        let mut tx = assembler();
        let mut snap = record("event", 5, 0);
        snap.snapshot = true;
        tx.push("t.event", snap);
        assert_eq!(tx.release_snapshot().len(), 1);
        tx.push("t.event", record("event", 9, 0));
        assert!(tx.release_snapshot().is_empty(), "a streamed transaction waits for its END");
        assert_eq!(tx.buffered(), 1);
    }

    #[test]
    fn a_snapshot_with_an_end_marker_waits_for_all_its_counted_records() {
        let mut tx = assembler();
        let mut first = record("event", 5, 0);
        first.snapshot = true;
        tx.push("t.event", first);
        assert!(tx.end(end(5, &[("t.event", 1), ("t.link", 1)])).is_empty());
        let mut link = record("link", 5, 1);
        link.snapshot = true;
        assert_eq!(tx.push("t.link", link).len(), 1);
    }

    #[test]
    fn the_fallback_releases_everything_in_commit_order_and_overflow_bounds_the_buffer() {
        let mut tx = assembler();
        tx.push("t.event", record("event", 30, 0));
        tx.push("t.event", record("event", 10, 0));
        tx.push("t.link", record("link", 20, 0));
        let early = tx.release_overflow(2);
        assert_eq!(early.len(), 1);
        assert_eq!(early[0][0].commit_lsn, 10);
        let rest = tx.release_all();
        let lsns: Vec<i64> = rest.iter().map(|t| t[0].commit_lsn).collect();
        assert_eq!(lsns, vec![20, 30]);
        assert_eq!(tx.buffered(), 0);
    }
}
