//! The assembler against the record patterns the cdc-reader produces, replays after a reconnect included.

use super::*;
use crate::kafka::cdc::{Op, Row};

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
    assert!(tx.push("t.link", record("link", 10, 1)).ready.is_empty());
    assert!(tx.end(end(10, &[("t.event", 1), ("t.link", 2)])).is_empty());
    assert!(tx.push("t.event", record("event", 10, 0)).ready.is_empty());
    let ready = tx.push("t.link", record("link", 10, 2)).ready;
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
        assert!(tx.push("t.event", snap).ready.is_empty());
    }
    let ready = tx.push("t.event", record("event", 9, 0)).ready;
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
    assert_eq!(tx.push("t.link", link).ready.len(), 1);
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

#[test]
fn a_replayed_end_of_a_released_transaction_does_not_hold_back_later_transactions() {
    let mut tx = assembler();
    tx.push("t.event", record("event", 10, 0));
    assert_eq!(tx.end(end(10, &[("t.event", 1)])).len(), 1);
    // The reader lost its connection before confirming 10 and produced it again.
    assert!(tx.end(end(10, &[("t.event", 1)])).is_empty());
    tx.push("t.event", record("event", 20, 0));
    let ready = tx.end(end(20, &[("t.event", 1)]));
    assert_eq!(ready.len(), 1, "20 released without waiting for the stall timeout");
    assert_eq!(ready[0][0].commit_lsn, 20);
}

#[test]
fn replayed_copies_of_records_do_not_stand_in_for_a_record_not_yet_read() {
    let mut tx = assembler();
    // First copy: the connection dropped after one of the two links.
    tx.push("t.link", record("link", 10, 0));
    // Second copy: its first link and its END are read before its second link.
    assert!(tx.push("t.link", record("link", 10, 0)).ready.is_empty());
    assert!(tx.end(end(10, &[("t.link", 2)])).is_empty(), "link 1 is still missing");
    let ready = tx.push("t.link", record("link", 10, 1)).ready;
    assert_eq!(ready.len(), 1);
    let positions: Vec<i64> = ready[0].iter().map(|r| r.tx_position).collect();
    assert_eq!(positions, vec![0, 1], "each record once");
    assert_eq!(tx.buffered(), 0);
}

#[test]
fn a_late_copy_of_a_transaction_released_complete_is_skipped_and_holds_nothing_back() {
    let mut tx = assembler();
    tx.push("t.event", record("event", 10, 0));
    assert_eq!(tx.end(end(10, &[("t.event", 1)])).len(), 1);
    let copy = tx.push("t.event", record("event", 10, 0));
    assert!(copy.duplicate && copy.ready.is_empty() && copy.late.is_none(), "a copy: {copy:?}");
    assert_eq!(tx.buffered(), 0);
    tx.push("t.link", record("link", 20, 0));
    assert_eq!(tx.end(end(20, &[("t.link", 1)])).len(), 1);
}

#[test]
fn a_snapshot_released_before_its_end_was_read_does_not_hold_back_what_follows() {
    // A rebuild reads the topics interleaved: a streamed record from one topic before the rest of the snapshot
    // and its END from the others.
    let mut tx = assembler();
    let snap = |table: &str, position| CdcRecord { snapshot: true, ..record(table, 5, position) };
    tx.push("t.event", snap("event", 0));
    assert_eq!(tx.push("t.event", record("event", 9, 0)).ready.len(), 1, "the snapshot, released early");
    let late = tx.push("t.link", snap("link", 1));
    assert_eq!(late.ready.len(), 1, "a late snapshot record, handed on alone");
    assert_eq!(late.late, Some(5));
    assert!(tx.end(end(5, &[("t.event", 1), ("t.link", 1)])).is_empty());
    let ready = tx.end(end(9, &[("t.event", 1)]));
    assert_eq!(ready.len(), 1, "9 released without waiting for the stall timeout");
    assert_eq!(tx.buffered(), 0);
}

/// Deterministic pseudo-random numbers (xorshift) for the interleavings below.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn transactions_replayed_after_reconnects_are_each_released_once_whole_in_commit_order_whatever_the_read_order() {
    // What the reader leaves in the topics when it reconnects twice: transaction 20 cut after its first
    // record, transaction 30 cut between its records and its END, both produced again in full.
    let produced: Vec<(&str, i64, Option<i64>)> = vec![
        ("t.event", 10, Some(0)),
        ("t.link", 10, Some(1)),
        ("t.tx", 10, None),
        ("t.event", 20, Some(0)),
        ("t.event", 20, Some(0)),
        ("t.link", 20, Some(1)),
        ("t.link", 20, Some(2)),
        ("t.tx", 20, None),
        ("t.event", 30, Some(0)),
        ("t.link", 30, Some(1)),
        ("t.tx", 30, None),
        ("t.event", 30, Some(0)),
        ("t.link", 30, Some(1)),
        ("t.tx", 30, None),
        ("t.event", 40, Some(0)),
        ("t.tx", 40, None),
    ];
    let counts = |lsn: i64| match lsn {
        10 | 30 => end(lsn, &[("t.event", 1), ("t.link", 1)]),
        20 => end(lsn, &[("t.event", 1), ("t.link", 2)]),
        _ => end(lsn, &[("t.event", 1)]),
    };
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..500 {
        // A consumer reads each topic in order, the topics interleaved in any way.
        let mut queues: BTreeMap<&str, std::collections::VecDeque<(i64, Option<i64>)>> = BTreeMap::new();
        for (topic, lsn, position) in &produced {
            queues.entry(topic).or_default().push_back((*lsn, *position));
        }
        let mut tx = assembler();
        let mut released: Vec<Vec<CdcRecord>> = Vec::new();
        while queues.values().any(|q| !q.is_empty()) {
            let open: Vec<&str> = queues.iter().filter(|(_, q)| !q.is_empty()).map(|(t, _)| *t).collect();
            let topic = open[(next(&mut seed) % open.len() as u64) as usize];
            let Some((lsn, position)) = queues.get_mut(topic).and_then(|q| q.pop_front()) else { continue };
            released.extend(match position {
                Some(position) => {
                    let table = if topic == "t.event" { "event" } else { "link" };
                    tx.push(topic, record(table, lsn, position)).ready
                }
                None => tx.end(counts(lsn)),
            });
        }
        assert_eq!(tx.buffered(), 0, "nothing left waiting for the stall timeout");
        // Late copies come alone; every transaction was first released whole, in commit order.
        let mut first: Vec<(i64, usize)> = Vec::new();
        for group in &released {
            let lsn = group[0].commit_lsn;
            if first.last().is_none_or(|(last, _)| *last < lsn) {
                first.push((lsn, group.len()));
            } else {
                assert_eq!(group.len(), 1, "a late copy is one record");
            }
        }
        assert_eq!(first, vec![(10, 2), (20, 3), (30, 2), (40, 1)]);
    }
}

#[test]
fn a_record_of_a_transaction_released_by_the_buffer_bound_is_late_not_a_copy() {
    let mut tx = assembler();
    tx.push("t.event", record("event", 10, 0));
    tx.push("t.event", record("event", 20, 0));
    let released = tx.release_overflow(1);
    assert_eq!(released.len(), 1, "transaction 10 released as it is");
    let late = tx.push("t.link", record("link", 10, 1));
    assert_eq!(late.late, Some(10));
    assert_eq!(late.ready.len(), 1, "handed on alone, to be applied");
    let copy = tx.push("t.link", record("link", 10, 1));
    assert!(copy.duplicate && copy.ready.is_empty(), "its copy is a copy: {copy:?}");
    // Its END says nothing more is missing: a further copy of the first record is a copy too.
    assert!(tx.end(end(10, &[("t.event", 1), ("t.link", 1)])).is_empty());
    assert!(tx.push("t.event", record("event", 10, 0)).duplicate);
}

#[test]
fn an_oldest_transaction_released_for_waiting_too_long_lets_the_complete_ones_behind_it_go() {
    let mut tx = assembler();
    tx.push("t.event", record("event", 10, 0));
    assert!(tx.end(end(10, &[("t.event", 2)])).is_empty(), "10 waits for a record that never comes");
    tx.push("t.event", record("event", 20, 0));
    assert!(tx.end(end(20, &[("t.event", 1)])).is_empty(), "20 is complete but waits behind 10");
    let ready = tx.release_head();
    let lsns: Vec<i64> = ready.iter().map(|t| t[0].commit_lsn).collect();
    assert_eq!(lsns, vec![10, 20]);
    assert_eq!(tx.take_incomplete(), Some(10), "reported");
    let late = tx.push("t.event", record("event", 10, 1));
    assert_eq!((late.late, late.ready.len()), (Some(10), 1), "the missing record, applied late");
}

#[test]
fn a_record_of_a_forgotten_incomplete_transaction_is_still_handed_on() {
    let mut tx = assembler();
    let last = i64::try_from(RELEASED_EARLY_KEPT).unwrap_or(i64::MAX) + 2;
    for lsn in 1..=last {
        tx.push("t.event", record("event", lsn, 0));
        tx.end(end(lsn, &[("t.event", 1), ("t.link", 1)]));
        tx.release_overflow(0);
    }
    let forgotten = tx.push("t.link", record("link", 1, 1));
    assert_eq!(forgotten.ready.len(), 1, "handed on unclassified, never dropped on a guess: {forgotten:?}");
    let remembered = tx.push("t.link", record("link", last, 1));
    assert_eq!(remembered.late, Some(last));
}

#[test]
fn releasing_everything_in_the_quiet_period_mode_reports_nothing() {
    // Without END markers no transaction is ever known complete: releasing them is the design, not a fault.
    let mut tx = assembler();
    tx.push("t.event", record("event", 10, 0));
    tx.push("t.event", record("event", 20, 0));
    assert_eq!(tx.release_all().len(), 2);
    assert_eq!(tx.take_incomplete(), None);
}

/// A rebuild reads the topics at different speeds: the buffer bound releases a later transaction while an
/// earlier one has not shown a single record or its END yet (its topic is still deep in the snapshot). Its
/// records arrive after the bound released a later commit LSN; they were never taken, so they are late, not
/// copies.
#[test]
fn a_transaction_not_yet_seen_when_a_later_one_was_released_by_the_bound_is_late_not_a_copy() {
    let mut tx = assembler();
    tx.push("t.event", record("event", 20, 0));
    tx.push("t.event", record("event", 20, 1));
    assert_eq!(tx.release_overflow(1).len(), 1, "the bound releases transaction 20");
    let pushed = tx.push("t.link", record("link", 10, 0));
    assert!(!pushed.duplicate, "never seen before: not a copy");
    assert_eq!(pushed.ready.len(), 1, "applied late");
    let again = tx.push("t.link", record("link", 10, 0));
    assert!(again.ready.iter().flatten().count() <= 1, "a copy of it is at most handed on again (the state tells)");
}
