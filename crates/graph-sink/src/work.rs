//! One item of a unit of work: the record it came from, what the table said, and where it stands.

use graph_client::Event;
use uuid::Uuid;
use vocabulary::records::DesiredItem;

use crate::mapping::{MappingRow, RowIdentity, Settled};
use crate::plan::{first_step, Step};

/// Where the record came from (for offsets and dead letters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes.
    pub value: Option<Vec<u8>>,
}

impl Source {
    /// The record's key as text (`None` without a key or when it is not UTF-8).
    pub fn key_text(&self) -> Option<&str> {
        self.key.as_deref().and_then(|k| std::str::from_utf8(k).ok())
    }

    /// The room and item of a `<mailbox>/<item_key>` key.
    pub fn room_item(&self) -> Option<(&str, &str)> {
        self.key_text().and_then(vocabulary::keys::split_room_item_key)
    }

    /// Decodes the value as `T`; `None` for a tombstone.
    pub async fn decode<T: vocabulary::records::AvroRecord>(
        &self,
        codec: &schema_registry::AvroCodec,
    ) -> Result<Option<T>, streams::StreamError> {
        match &self.value {
            None => Ok(None),
            Some(bytes) => {
                let (_, value) = codec.decode(bytes).await?;
                Ok(Some(T::from_avro(value)?))
            }
        }
    }
}

/// How an item ended (what the metrics call `op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Nothing to write.
    Skip,
    /// POSTed.
    Create,
    /// PATCHed.
    Update,
    /// An existing tagged event was taken over.
    Adopt,
    /// DELETEd (or already gone).
    Delete,
    /// Parked.
    Park,
}

impl Op {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Skip => "skip",
            Op::Create => "create",
            Op::Update => "update",
            Op::Adopt => "adopt",
            Op::Delete => "delete",
            Op::Park => "park",
        }
    }
}

/// One desired item being applied.
#[derive(Debug, Clone)]
pub struct Work {
    /// Room mailbox.
    pub mailbox: String,
    /// Item key within the room.
    pub item_key: String,
    /// The desired state; `None` for a tombstone.
    pub desired: Option<DesiredItem>,
    /// The mapping row as loaded at the start of the unit.
    pub row: Option<MappingRow>,
    /// The row's identifying columns (`None` only when there is nothing to write).
    pub identity: Option<RowIdentity>,
    /// The transactionId recorded for the item.
    pub transaction_id: Uuid,
    /// Next step.
    pub step: Step,
    /// The intent last committed for this item in this unit, with the step it announced.
    pub announced: Option<Step>,
    /// The known event disappeared under an update (404): the next create starts a new generation.
    pub vanished: bool,
    /// Transient failures so far.
    pub failures: u32,
    /// Final state, once reached.
    pub done: Option<(Op, Option<Settled>)>,
    /// Error class of a parked item (for the dead letter).
    pub park_kind: Option<&'static str>,
    /// Input record.
    pub source: Source,
}

impl Work {
    /// A work item with its first step planned.
    pub fn new(
        mailbox: String,
        item_key: String,
        desired: Option<DesiredItem>,
        row: Option<MappingRow>,
        source: Source,
    ) -> Self {
        let step = first_step(desired.as_ref(), row.as_ref());
        let identity = desired.as_ref().map(RowIdentity::of).or_else(|| row.as_ref().map(RowIdentity::from_row));
        let transaction_id = row
            .as_ref()
            .map_or_else(|| crate::identity::first_transaction_id(&mailbox, &item_key), |r| r.transaction_id);
        let done = (step == Step::Skip).then_some((Op::Skip, None));
        Work {
            mailbox,
            item_key,
            desired,
            row,
            identity,
            transaction_id,
            step,
            announced: None,
            vanished: false,
            failures: 0,
            done,
            park_kind: None,
            source,
        }
    }

    /// Whether the item reached its final state.
    pub fn is_done(&self) -> bool {
        self.done.is_some()
    }

    /// The desired content hash, if any.
    pub fn desired_hash(&self) -> Option<String> {
        self.desired.as_ref().map(|d| d.content_hash.clone())
    }

    /// Ends the item as synced with `event`.
    pub fn synced(&mut self, op: Op, event: &Event) {
        let Some(event_id) = event.id.clone() else {
            self.park("graph_decode", "graph answered without an event id".into());
            return;
        };
        let settled = Settled::Synced {
            event_id,
            change_key: event.change_key.clone(),
            ical_uid: event.ical_uid.clone(),
            content_hash: self.desired_hash().unwrap_or_default(),
        };
        self.done = Some((op, Some(settled)));
    }

    /// Ends the item as deleted.
    pub fn deleted(&mut self) {
        self.done = Some((Op::Delete, Some(Settled::Deleted)));
    }

    /// Parks the item with the reason.
    pub fn park(&mut self, kind: &'static str, reason: String) {
        self.park_kind = Some(kind);
        self.done = Some((Op::Park, Some(Settled::Parked { content_hash: self.desired_hash(), reason })));
    }

    /// The intent the current step announces, if it writes.
    pub fn intent(&self) -> Option<&'static str> {
        match self.step {
            Step::Create(_) => Some("create"),
            Step::Update(_) => Some("update"),
            Step::Delete(_) => Some("delete"),
            Step::Skip | Step::Find => None,
        }
    }
}

/// Seconds from the source commit named by `desired` to `now_ms`, for an `op` that wrote to Graph (skips and
/// parks did not; adoption took over an event that already held the content); never negative.
pub fn end_to_end_seconds(desired: Option<&DesiredItem>, op: Op, now_ms: i64) -> Option<f64> {
    if !matches!(op, Op::Create | Op::Update | Op::Delete) {
        return None;
    }
    let committed = desired?.source_committed_at?;
    // A clock step back must not record a negative latency.
    Some(now_ms.saturating_sub(committed).max(0) as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vocabulary::records::UpsertOrDelete;
    use vocabulary::ReservationKind;

    fn desired(committed: Option<i64>) -> DesiredItem {
        DesiredItem {
            op: UpsertOrDelete::Upsert,
            mailbox: "m@x".into(),
            resource_id: 1,
            item_key: "event:1".into(),
            kind: ReservationKind::Event,
            reservation_id: 1,
            priority: 1,
            content_hash: "h".into(),
            content: None,
            commit_lsn: 0,
            source_committed_at: committed,
            rewrite: false,
        }
    }

    #[test]
    fn the_end_to_end_latency_counts_graph_writes_of_committed_changes_only() {
        let item = desired(Some(10_000));
        for op in [Op::Create, Op::Update, Op::Delete] {
            assert_eq!(end_to_end_seconds(Some(&item), op, 10_250), Some(0.25), "{op:?}");
        }
        for op in [Op::Skip, Op::Adopt, Op::Park] {
            assert_eq!(end_to_end_seconds(Some(&item), op, 10_250), None, "{op:?}");
        }
        assert_eq!(end_to_end_seconds(Some(&desired(None)), Op::Create, 10_250), None, "no commit behind it");
        assert_eq!(end_to_end_seconds(None, Op::Delete, 10_250), None, "a tombstone");
        assert_eq!(end_to_end_seconds(Some(&item), Op::Create, 9_000), Some(0.0), "clock stepped back");
    }
}
