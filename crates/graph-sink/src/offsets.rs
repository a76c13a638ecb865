//! Consumer offsets in PostgreSQL (`roomsync_consumer_offsets`), the only offsets the sink trusts.
//!
//! Invariants: the offsets move only in the transaction that commits the effects of the records before them,
//! only from the value the unit started from (`fence`), and never backwards; a record below the stored offset of its partition was applied already and is dropped
//! (Kafka's own committed offsets are only a hint, sent after PostgreSQL's commit, so they are never ahead).
//!
//! Consumer groups follow the topic prefix (`<prefix>-graph-sink`); before they did, every deployment used
//! [`LEGACY_GROUP`]. A partition without offsets of its own group takes that group's offsets for the same topic:
//! topic names carry the prefix, so they are this deployment's, and an upgrade does not replay the whole desired
//! topic.

use std::collections::{BTreeMap, HashMap};

use tokio_postgres::GenericClient;

use crate::error::SinkError;

/// A topic partition.
pub type Partition = (String, i32);

/// The group every deployment's sink used before groups followed the topic prefix.
pub const LEGACY_GROUP: &str = "roomsync-graph-sink";

/// Whether the record at `offset` of `partition` was applied already: below the partition's stored offset.
pub fn applied(stored: &HashMap<Partition, i64>, partition: &Partition, offset: i64) -> bool {
    stored.get(partition).is_some_and(|next| offset < *next)
}

/// The stored next offsets of `partitions` (absent: nothing applied yet); the [`LEGACY_GROUP`]'s when `group`
/// has none for a partition.
pub async fn load(
    db: &impl GenericClient,
    group: &str,
    partitions: &[Partition],
) -> Result<HashMap<Partition, i64>, SinkError> {
    let mut out = HashMap::new();
    for (topic, partition) in partitions {
        let row = db
            .query_opt(
                "select next_offset from roomsync_consumer_offsets
                 where consumer_group in ($1, $4) and topic = $2 and partition = $3
                 order by consumer_group = $1 desc limit 1",
                &[&group, topic, partition, &LEGACY_GROUP],
            )
            .await
            .map_err(SinkError::pg("loading consumer offsets"))?;
        if let Some(row) = row {
            out.insert((topic.clone(), *partition), row.get::<_, i64>(0));
        }
    }
    Ok(out)
}

/// Moves the stored offsets from `started` (what the unit found when it began; absent: nothing stored) to `next`
/// (per partition, the offset after the last applied record). A compare-and-set: if another member moved a
/// partition's offsets meanwhile, nothing is stored and the unit is fenced (`fence`).
pub async fn store(
    db: &impl GenericClient,
    group: &str,
    started: &HashMap<Partition, i64>,
    next: &BTreeMap<Partition, i64>,
) -> Result<(), SinkError> {
    for (partition, offset) in next {
        let expected = started.get(partition).copied();
        let (topic, number) = partition;
        // A row of the legacy group only (`load`) is not this group's: inserting is right then.
        let stored = db
            .execute(
                "insert into roomsync_consumer_offsets (consumer_group, topic, partition, next_offset, updated_at)
                 values ($1, $2, $3, $4, now())
                 on conflict (consumer_group, topic, partition) do update set
                     next_offset = excluded.next_offset, updated_at = now()
                 where roomsync_consumer_offsets.next_offset = $5",
                &[&group, topic, number, offset, &expected],
            )
            .await
            .map_err(SinkError::pg("storing consumer offsets"))?;
        if stored == 0 {
            return Err(SinkError::Fenced { topic: topic.clone(), partition: *number, expected });
        }
    }
    Ok(())
}
