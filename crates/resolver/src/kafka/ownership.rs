//! Sharing the rooms between resolver instances through the consumer group.
//!
//! The instances are members of one consumer group subscribed to the resolver's own output topics
//! (`<prefix>.sync.desired`, partitioned by room, and `<prefix>.reservations`, partitioned by resource, with
//! the same partition count and the range assignor, so partition p of both lands on the same member). A
//! member owns the rooms and resources whose partition it is assigned. It reads its partitions from the
//! beginning (offsets are never committed), which loads the last state emitted for every key it owns: the
//! ledger that makes the output idempotent across restarts and rebalances.
//!
//! Invariant: a partition counts as owned only once it has been read up to the high watermark it had when
//! it was assigned, so an instance never emits for a room before it knows what that room's calendar already
//! holds.
//!
//! The driver looks at the assignment every 250 ms, but the consumer starts reading a partition the moment it
//! is assigned: a small partition can be read to its end before the driver first sees it assigned. Loading is
//! therefore judged by the consumer's position (the offset after the last record handed to the driver), not
//! only by the records read after the targets were taken: counting only those left a restarted instance, whose
//! assignment arrived while it idled, without any room for ever (issue #18).

use std::collections::BTreeSet;
use std::sync::Arc;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use tracing::info;

use crate::error::ResolverError;
use crate::kafka::inputs::{high_watermark, Progress};

/// The group membership and the loading state of the assigned partitions.
#[derive(Debug, Default)]
pub struct Membership {
    assigned: BTreeSet<i32>,
    loading: Progress,
    topics: Vec<String>,
}

impl Membership {
    /// Membership over `topics` (desired and reservations).
    pub fn new(topics: Vec<String>) -> Self {
        Membership { topics, ..Membership::default() }
    }

    /// Re-reads the assignment and the consumer's positions; returns true when the assignment changed.
    pub async fn refresh(&mut self, consumer: &Arc<StreamConsumer>) -> Result<bool, ResolverError> {
        let kafka = |context: &str| {
            let context = context.to_owned();
            move |e| ResolverError::Stream(streams::StreamError::Kafka { context, source: e })
        };
        let list = consumer.assignment().map_err(kafka("reading the assignment"))?;
        let assigned: BTreeSet<i32> = list.elements().iter().map(|e| e.partition()).collect();
        if assigned == self.assigned {
            if !self.loading.caught_up() {
                self.reached(&consumer.position().map_err(kafka("reading the positions"))?);
            }
            return Ok(false);
        }
        info!(partitions = ?assigned, "resolver partitions assigned");
        let mut loading = Progress::default();
        for partition in &assigned {
            for topic in &self.topics {
                loading.target(topic, *partition, high_watermark(consumer, topic, *partition).await?);
            }
        }
        self.assigned = assigned;
        self.loading = loading;
        self.reached(&consumer.position().map_err(kafka("reading the positions"))?);
        Ok(true)
    }

    /// Counts the records the consumer has already handed over (its position is the offset after the last
    /// one), also those read before the targets were taken.
    fn reached(&mut self, positions: &TopicPartitionList) {
        for element in positions.elements() {
            if let Offset::Offset(next) = element.offset() {
                self.loading.read(element.topic(), element.partition(), next - 1);
            }
        }
    }

    /// Whether a record of `partition` is part of loading what is already there (to be recorded in the
    /// ledger) rather than the instance's own output read back (to be ignored: the ledger is ahead of it).
    pub fn loading(&self, topic: &str, partition: i32) -> bool {
        !self.assigned.contains(&partition) || !self.loading.done(topic, partition)
    }

    /// Notes a record read from an owned topic.
    pub fn read(&mut self, topic: &str, partition: i32, offset: i64) {
        self.loading.read(topic, partition, offset);
    }

    /// How many partitions are assigned (loaded or not).
    pub fn assigned_count(&self) -> usize {
        self.assigned.len()
    }

    /// The partitions that are assigned and fully loaded.
    pub fn owned(&self) -> BTreeSet<i32> {
        self.assigned.iter().copied().filter(|p| self.topics.iter().all(|t| self.loading.done(t, *p))).collect()
    }
}
