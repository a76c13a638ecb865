//! The flush-LSN tracker: which position may be reported to PostgreSQL as durably handled.
//!
//! Invariant: the released LSN is the highest commit LSN whose records (and those of every earlier
//! transaction) Kafka has all acknowledged; it only moves forward and is never ahead of Kafka. Acks may
//! arrive in any order (several partitions); release happens in commit order.
//!
//! ```text
//!   commit order ->  [tx 0/10: 3 records, 3 acked] [tx 0/20: 2 records, 1 acked] [idle 0/30]
//!                     released = 0/10 ---------------^ blocked until tx 0/20 is fully acked
//! ```
//! An idle marker (a keepalive position while no captured table changes) is an entry with no records, so the
//! slot advances on an idle database, but never past a transaction still waiting for Kafka.

use std::collections::VecDeque;

/// Handle of one tracked transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TxHandle(pub u64);

#[derive(Debug)]
struct Entry {
    lsn: u64,
    outstanding: usize,
    sealed: bool,
}

/// Tracks produced-but-unacknowledged records per transaction, in commit order.
#[derive(Debug, Default)]
pub struct Progress {
    entries: VecDeque<Entry>,
    /// Sequence number of `entries[0]`.
    base: u64,
    released: u64,
    in_flight: usize,
}

impl Progress {
    /// A tracker that has already released `confirmed` (the slot's position at start).
    pub fn new(confirmed: u64) -> Self {
        Progress { released: confirmed, ..Progress::default() }
    }

    /// Opens a transaction that will commit at `lsn`; records are added before it is sealed.
    pub fn open(&mut self, lsn: u64) -> TxHandle {
        self.entries.push_back(Entry { lsn, outstanding: 0, sealed: false });
        TxHandle(self.base + self.entries.len() as u64 - 1)
    }

    fn entry(&mut self, tx: TxHandle) -> Option<&mut Entry> {
        let index = usize::try_from(tx.0.checked_sub(self.base)?).ok()?;
        self.entries.get_mut(index)
    }

    /// One more record of `tx` handed to Kafka.
    pub fn add(&mut self, tx: TxHandle) {
        if let Some(entry) = self.entry(tx) {
            entry.outstanding += 1;
            self.in_flight += 1;
        }
    }

    /// No more records will be added to `tx`: its Commit was seen, and `lsn` (the commit's end LSN) is the
    /// position to confirm once its records are acknowledged.
    pub fn seal(&mut self, tx: TxHandle, lsn: u64) {
        if let Some(entry) = self.entry(tx) {
            entry.sealed = true;
            entry.lsn = lsn;
        }
        self.release();
    }

    /// Kafka acknowledged one record of `tx`.
    pub fn ack(&mut self, tx: TxHandle) {
        if let Some(entry) = self.entry(tx) {
            if entry.outstanding > 0 {
                entry.outstanding -= 1;
                self.in_flight -= 1;
            }
        }
        self.release();
    }

    /// The server reported position `lsn` with no transaction of ours open: it may be confirmed once
    /// everything before it is acknowledged.
    pub fn idle(&mut self, lsn: u64) {
        let tx = self.open(lsn);
        self.seal(tx, lsn);
    }

    fn release(&mut self) {
        while let Some(front) = self.entries.front() {
            if !front.sealed || front.outstanding > 0 {
                break;
            }
            self.released = self.released.max(front.lsn);
            self.entries.pop_front();
            self.base += 1;
        }
    }

    /// The LSN that may be reported as flushed.
    pub fn released(&self) -> u64 {
        self.released
    }

    /// Records handed to Kafka and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_released_before_kafka_acknowledges() {
        let mut p = Progress::new(5);
        let tx = p.open(10);
        p.add(tx);
        p.add(tx);
        p.seal(tx, 10);
        assert_eq!(p.released(), 5);
        p.ack(tx);
        assert_eq!(p.released(), 5);
        p.ack(tx);
        assert_eq!(p.released(), 10);
    }

    #[test]
    fn a_later_transaction_acknowledged_first_waits_for_the_earlier_one() {
        let mut p = Progress::new(0);
        let first = p.open(10);
        p.add(first);
        p.seal(first, 10);
        let second = p.open(20);
        p.add(second);
        p.seal(second, 20);
        p.ack(second);
        assert_eq!(p.released(), 0);
        p.ack(first);
        assert_eq!(p.released(), 20);
        assert_eq!(p.in_flight(), 0);
    }

    #[test]
    fn an_unsealed_transaction_is_not_released_even_when_all_its_records_are_acked() {
        let mut p = Progress::new(0);
        let tx = p.open(10);
        p.add(tx);
        p.ack(tx);
        assert_eq!(p.released(), 0);
        p.seal(tx, 10);
        assert_eq!(p.released(), 10);
    }

    #[test]
    fn idle_positions_advance_the_slot_but_never_past_pending_records() {
        let mut p = Progress::new(0);
        p.idle(30);
        assert_eq!(p.released(), 30);
        let tx = p.open(40);
        p.add(tx);
        p.seal(tx, 40);
        p.idle(50);
        assert_eq!(p.released(), 30);
        p.ack(tx);
        assert_eq!(p.released(), 50);
    }

    #[test]
    fn the_released_position_never_goes_backwards() {
        let mut p = Progress::new(100);
        p.idle(50);
        assert_eq!(p.released(), 100);
        let tx = p.open(80);
        p.seal(tx, 80);
        assert_eq!(p.released(), 100);
    }

    #[test]
    fn random_ack_orders_release_exactly_the_fully_acked_prefix() {
        use rand::seq::SliceRandom;
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let mut p = Progress::new(0);
            let mut records = Vec::new();
            for n in 1..=10u64 {
                let tx = p.open(n * 10);
                for _ in 0..(n % 3) {
                    p.add(tx);
                    records.push((n, tx));
                }
                p.seal(tx, n * 10);
            }
            records.shuffle(&mut rng);
            let mut unacked: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
            for (n, _) in &records {
                *unacked.entry(*n).or_default() += 1;
            }
            let mut last = 0;
            for (n, tx) in records.iter().copied() {
                p.ack(tx);
                *unacked.entry(n).or_default() -= 1;
                let released = p.released();
                assert!(released >= last, "went backwards");
                last = released;
                // Every transaction at or below the released LSN has all its records acknowledged.
                for (m, left) in &unacked {
                    assert!(m * 10 > released || *left == 0, "released {released} before tx {m} was acked");
                }
            }
            assert_eq!(p.released(), 100);
        }
    }
}
