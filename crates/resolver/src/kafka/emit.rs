//! Sending what the core decided: reservations keyed by resource, desired items keyed by room item and
//! partitioned by room, imports keyed by room and event, conflicts into PostgreSQL.
//!
//! Invariant: the records of each output are enqueued in decision order (reservations, desired items, imports)
//! and their acknowledgements are handed to the [`AckWatcher`]; a failed one restarts the driver, which rebuilds
//! its state from the topics, so nothing is skipped and nothing is emitted twice with different content. Records
//! are not awaited one by one: that capped the resolver at one record per producer linger plus broker round trip
//! (see benches/README.md).

use vocabulary::keys::{room_item_key, room_partition};
use vocabulary::topics::Topics;

use crate::core::Output;
use crate::error::ResolverError;
use crate::kafka::acks::AckWatcher;
use crate::postgres::conflicts::ConflictStore;

/// Where the output goes.
#[derive(Debug)]
pub struct Emitter {
    /// The producer.
    pub producer: streams::RecordProducer,
    /// Topic names.
    pub topics: Topics,
    /// Partitions of the output topics.
    pub partitions: i32,
    /// The conflicts table.
    pub conflicts: ConflictStore,
    /// Waits for the acknowledgements.
    pub acks: AckWatcher,
}

impl Emitter {
    /// Enqueues everything in `output`, in order; the acknowledgements are awaited by the watcher.
    pub async fn send(&self, output: &Output) -> Result<(), ResolverError> {
        let mut batch = self.producer.batch();
        for reservation in &output.reservations {
            let key = reservation.resource_id.to_string();
            let partition = Some(room_partition(&key, self.partitions));
            batch.push(&self.topics.reservations(), &key, partition, Some(reservation)).await?;
        }
        for item in &output.desired {
            let key = room_item_key(&item.mailbox, &item.item_key);
            let partition = Some(room_partition(&item.mailbox, self.partitions));
            batch.push(&self.topics.desired(), &key, partition, Some(item)).await?;
        }
        for import in &output.imports {
            let key = room_item_key(&import.mailbox, &format!("outlook:{}", import.event_id));
            let partition = Some(room_partition(&import.mailbox, self.partitions));
            batch.push(&self.topics.imports(), &key, partition, Some(import)).await?;
        }
        self.acks.watch(batch.detach()).await?;
        count(output);
        for conflict in &output.conflicts {
            self.conflicts.record(conflict).await?;
        }
        Ok(())
    }
}

/// Counts what was emitted.
fn count(output: &Output) {
    use vocabulary::records::UpsertOrDelete;
    let op = |upsert: bool| if upsert { "upsert" } else { "delete" };
    for reservation in &output.reservations {
        let op = op(reservation.op == UpsertOrDelete::Upsert);
        ::metrics::counter!(crate::metrics::RESERVATIONS_EMITTED, "op" => op).increment(1);
    }
    for item in &output.desired {
        let op = op(item.op == UpsertOrDelete::Upsert);
        ::metrics::counter!(crate::metrics::DESIRED_EMITTED, "op" => op).increment(1);
    }
    ::metrics::counter!(crate::metrics::REVERTS_EMITTED).increment(output.reverts.len() as u64);
}
