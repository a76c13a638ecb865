//! Sending what the core decided: reservations keyed by resource, desired items keyed by room item and
//! partitioned by room, imports keyed by room and event, conflicts into PostgreSQL.
//!
//! Invariant: every send waits for the broker's acknowledgement; a failure is returned (transient), and the
//! driver rebuilds its state from the topics, so nothing is skipped and nothing is emitted twice with
//! different content.

use vocabulary::keys::{room_item_key, room_partition};
use vocabulary::topics::Topics;

use crate::conflicts::ConflictStore;
use crate::core::Output;
use crate::error::ResolverError;

/// Where the output goes.
#[derive(Debug)]
pub struct Emitter {
    /// The producer.
    pub producer: streams::RecordProducer,
    /// Topic names.
    pub topics: Topics,
    /// Partitions of the output topics.
    pub partitions: i32,
    /// The conflicts table, when configured.
    pub conflicts: Option<ConflictStore>,
}

impl Emitter {
    /// Sends everything in `output`, in order.
    pub async fn send(&self, output: &Output) -> Result<(), ResolverError> {
        for reservation in &output.reservations {
            let key = reservation.resource_id.to_string();
            let partition = Some(room_partition(&key, self.partitions));
            self.producer.send(&self.topics.reservations(), &key, partition, Some(reservation)).await?;
            let op = if reservation.op == vocabulary::records::UpsertOrDelete::Upsert { "upsert" } else { "delete" };
            ::metrics::counter!(crate::metrics::RESERVATIONS_EMITTED, "op" => op).increment(1);
        }
        if let Some(store) = &self.conflicts {
            for (mailbox, item_key) in &output.reverts {
                store.forget_written_content(mailbox, item_key).await?;
            }
        } else if !output.reverts.is_empty() {
            tracing::warn!(
                reverts = output.reverts.len(),
                "outlook edits to revert but no database configured: the sink will not rewrite them"
            );
        }
        for item in &output.desired {
            let key = room_item_key(&item.mailbox, &item.item_key);
            let partition = Some(room_partition(&item.mailbox, self.partitions));
            self.producer.send(&self.topics.desired(), &key, partition, Some(item)).await?;
            let op = if item.op == vocabulary::records::UpsertOrDelete::Upsert { "upsert" } else { "delete" };
            ::metrics::counter!(crate::metrics::DESIRED_EMITTED, "op" => op).increment(1);
        }
        for import in &output.imports {
            let key = room_item_key(&import.mailbox, &format!("outlook:{}", import.event_id));
            let partition = Some(room_partition(&import.mailbox, self.partitions));
            self.producer.send(&self.topics.imports(), &key, partition, Some(import)).await?;
        }
        if let Some(store) = &self.conflicts {
            for conflict in &output.conflicts {
                store.record(conflict).await?;
            }
        } else if !output.conflicts.is_empty() {
            tracing::warn!(
                conflicts = output.conflicts.len(),
                "conflicts found but no database configured to record them"
            );
        }
        Ok(())
    }
}
