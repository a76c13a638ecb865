//! Repairs, all through the machinery that already writes Graph exactly once.
//!
//! ```text
//! Missing / Changed: compare-and-set the mapping row as read (content_hash := null; Missing also forgets the
//!                    event id and becomes 'deleted', so the sink creates the next generation with the next
//!                    transactionId) -> produce the same desired bytes again (same key, same partition)
//!                    -> the sink applies it like any record: PATCH, or look up by tags then adopt or create
//! Stale:             re-check the rows -> DELETE through graph-client (404 = already gone) -> rows 'deleted'
//! fence:             a record the resolver produced meanwhile that our copy overtook is produced once more
//! ```
//! Invariants: a row the sink changed since it was read is left alone (the compare-and-set matches nothing);
//! the reconciler never writes an event's content itself; after the fence, the newest desired record of every
//! repaired key is again the last one in its partition.

use graph_sink::mapping;
use std::collections::{BTreeMap, HashMap, HashSet};

use graph_client::{DeleteOutcome, GraphClient};
use streams::{KafkaSettings, RecordProducer};
use tokio_postgres::GenericClient;
use tracing::{info, warn};

use crate::actual::mapping_rows;
use crate::desired::{read_ranges, watermarks, RawRecord};
use crate::drift::{Action, Finding};
use crate::error::Error;
use crate::report::Outcome;

/// Rounds of the fence before giving up (each round only re-produces what was overtaken in the last one).
const FENCE_ROUNDS: usize = 5;

/// Copies produced by repairs: key -> (partition, offset of our copy).
#[derive(Debug, Default)]
pub(crate) struct Produced {
    copies: BTreeMap<String, (i32, i64)>,
}

impl Produced {
    /// Notes our copy of `key` at (partition, offset).
    pub(crate) fn insert(&mut self, key: String, partition: i32, offset: i64) {
        self.copies.insert(key, (partition, offset));
    }
}

/// Resets the row (compare-and-set) and produces the desired record again.
pub(crate) async fn rewrite(
    db: &impl GenericClient,
    producer: &RecordProducer,
    topic: &str,
    mailbox: &str,
    finding: &Finding,
    produced: &mut Produced,
) -> Result<Outcome, Error> {
    let Action::Rewrite { vanished, row_event, row_hash, raw } = &finding.action else {
        return Ok(Outcome::Skipped("nothing to rewrite".to_owned()));
    };
    let item_key = finding.drift.item_key.as_str();
    let read = (row_event.as_deref(), row_hash.as_deref());
    let changed = mapping::reset_for_rewrite(db, mailbox, item_key, read, *vanished)
        .await
        .map_err(Error::pg("resetting a mapping row"))?;
    if changed == 0 {
        return Ok(Outcome::Skipped("the mapping row changed since it was read".to_owned()));
    }
    // The row now asks for a write; if producing fails, the next run finds the reset row and produces again.
    let (partition, offset) = producer.send_bytes(topic, &raw.key, Some(raw.partition), raw.value.as_deref()).await?;
    produced.insert(raw.key.clone(), partition, offset);
    Ok(Outcome::Reproduced { partition, offset })
}

/// Deletes a stale event after checking once more that no mapping row has claimed it meanwhile.
pub(crate) async fn delete_stale(
    db: &impl GenericClient,
    graph: &GraphClient,
    mailbox: &str,
    finding: &Finding,
) -> Result<Outcome, Error> {
    let Some(event_id) = finding.drift.event_id.as_deref() else {
        return Ok(Outcome::Skipped("no event id".to_owned()));
    };
    let rows = mapping_rows(db, mailbox).await?;
    let key = finding.drift.item_key.as_str();
    if rows.iter().any(|r| r.claims(event_id) || (r.item_key == key && r.busy())) {
        return Ok(Outcome::Skipped("the sink took the event or its item meanwhile".to_owned()));
    }
    let outcome = match graph.delete_event(mailbox, event_id).await {
        Ok(DeleteOutcome::Deleted) => Outcome::Deleted,
        Ok(DeleteOutcome::AlreadyGone) => Outcome::AlreadyGone,
        Err(err) => return Ok(Outcome::Failed(err.to_string())),
    };
    mapping::forget_stale_event(db, mailbox, event_id)
        .await
        .map_err(Error::pg("marking a stale event's row deleted"))?;
    Ok(outcome)
}

/// Keys of every record written to the desired topic since the snapshot's watermarks.
pub(crate) async fn keys_written_since(
    kafka: &KafkaSettings,
    topic: &str,
    snapshot_high: &BTreeMap<i32, i64>,
) -> Result<HashSet<String>, Error> {
    let marks = watermarks(kafka, topic).await?;
    let ranges: Vec<(i32, i64, i64)> =
        marks.iter().map(|(&p, &(low, high))| (p, snapshot_high.get(&p).copied().unwrap_or(low), high)).collect();
    Ok(read_ranges(kafka, topic, ranges).await?.into_iter().map(|r| r.key).collect())
}

/// The newest record of each copied key that precedes our copy in its partition (records of other keys, and
/// records after our copy, which are newer than it anyway, do not count).
fn overtaken(records: Vec<RawRecord>, copies: &BTreeMap<String, (i32, i64)>) -> HashMap<String, RawRecord> {
    let mut out: HashMap<String, RawRecord> = HashMap::new();
    for record in records {
        let Some(&(partition, ours)) = copies.get(&record.key) else { continue };
        if record.partition != partition || record.offset >= ours {
            continue;
        }
        if out.get(&record.key).is_none_or(|seen| seen.offset < record.offset) {
            out.insert(record.key.clone(), record);
        }
    }
    out
}

/// Makes sure no repair copy overtook a newer record: any record of a repaired key that arrived after the
/// snapshot and before our copy is produced once more (bytes as they are, tombstones too). Returns how many.
pub(crate) async fn fence(
    kafka: &KafkaSettings,
    producer: &RecordProducer,
    topic: &str,
    snapshot_high: &BTreeMap<i32, i64>,
    produced: Produced,
) -> Result<usize, Error> {
    let mut copies = produced.copies;
    let mut scan_from: BTreeMap<i32, i64> = snapshot_high.clone();
    let mut again = 0;
    for _ in 0..FENCE_ROUNDS {
        if copies.is_empty() {
            return Ok(again);
        }
        let mut until: BTreeMap<i32, i64> = BTreeMap::new();
        for &(partition, offset) in copies.values() {
            let end = until.entry(partition).or_insert(offset);
            *end = (*end).max(offset);
        }
        let marks = watermarks(kafka, topic).await?;
        let ranges: Vec<(i32, i64, i64)> = until
            .iter()
            .map(|(&p, &last)| {
                let high = marks.get(&p).map_or(last + 1, |&(_, high)| high);
                (p, scan_from.get(&p).copied().unwrap_or(0), (last + 1).min(high))
            })
            .collect();
        let records = read_ranges(kafka, topic, ranges).await?;
        let overtaken = overtaken(records, &copies);
        for (&p, &last) in &until {
            scan_from.insert(p, last + 1);
        }
        let mut next = BTreeMap::new();
        for (key, record) in overtaken {
            let (partition, offset) =
                producer.send_bytes(topic, &key, Some(record.partition), record.value.as_deref()).await?;
            info!(partition, offset, "a newer desired record was overtaken by a repair; produced it once more");
            next.insert(key, (partition, offset));
            again += 1;
        }
        copies = next;
    }
    if !copies.is_empty() {
        warn!(keys = copies.len(), "the resolver kept writing repaired items; left to the next run");
    }
    Ok(again)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, offset: i64, value: Option<u8>) -> RawRecord {
        RawRecord { partition: 0, offset, key: key.into(), value: value.map(|v| vec![v]) }
    }

    #[test]
    fn only_the_newest_record_before_our_copy_of_the_same_key_is_overtaken() {
        let copies: BTreeMap<String, (i32, i64)> =
            [("r/a".to_owned(), (0, 10)), ("r/b".to_owned(), (0, 11))].into_iter().collect();
        let records = vec![
            record("r/a", 5, Some(1)),
            record("r/a", 7, None),
            record("r/c", 8, Some(3)),
            record("r/a", 10, Some(9)),
            record("r/b", 11, Some(9)),
            record("r/b", 12, Some(4)),
        ];
        let found = overtaken(records, &copies);
        assert_eq!(found.len(), 1);
        assert_eq!(found.get("r/a"), Some(&record("r/a", 7, None)), "a tombstone counts as the newest state");
    }
}
