//! Reading the input topics whole: every instance reads every partition of the CDC topics and the Graph events
//! from the beginning (state is rebuilt from the topics at start), by manual assignment, never committing.
//!
//! Invariant: [`Progress::caught_up`] becomes true once every partition has been read up to the high
//! watermark it had when reading started; before that the resolver only builds state (emitting intermediate
//! states of a replay would flap room calendars).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::error::ResolverError;

fn kafka(context: &str) -> impl FnOnce(rdkafka::error::KafkaError) -> ResolverError + '_ {
    move |err| ResolverError::Stream(streams::StreamError::Kafka { context: context.to_owned(), source: err })
}

/// Partitions of `topic` (0 when it does not exist yet).
pub async fn partition_count(consumer: &Arc<StreamConsumer>, topic: &str) -> Result<i32, ResolverError> {
    let consumer = Arc::clone(consumer);
    let name = topic.to_owned();
    // fetch_metadata blocks on the network: keep it off the async executor.
    let metadata = tokio::task::spawn_blocking(move || consumer.fetch_metadata(Some(&name), Duration::from_secs(10)))
        .await
        .map_err(|e| ResolverError::Config(format!("metadata task: {e}")))?
        .map_err(kafka("reading topic metadata"))?;
    Ok(metadata.topics().first().map(|t| t.partitions().len()).unwrap_or(0).try_into().unwrap_or(0))
}

/// The high watermark of a partition.
pub async fn high_watermark(consumer: &Arc<StreamConsumer>, topic: &str, partition: i32) -> Result<i64, ResolverError> {
    let consumer = Arc::clone(consumer);
    let name = topic.to_owned();
    let (_, high) =
        tokio::task::spawn_blocking(move || consumer.fetch_watermarks(&name, partition, Duration::from_secs(10)))
            .await
            .map_err(|e| ResolverError::Config(format!("watermark task: {e}")))?
            .map_err(kafka("reading watermarks"))?;
    Ok(high)
}

/// Read positions against the targets of a catch-up.
#[derive(Debug, Default)]
pub struct Progress {
    targets: HashMap<(String, i32), i64>,
}

impl Progress {
    /// Sets the offset `partition` must reach (its high watermark when reading began).
    pub fn target(&mut self, topic: &str, partition: i32, high: i64) {
        if high > 0 {
            self.targets.insert((topic.to_owned(), partition), high);
        } else {
            self.targets.remove(&(topic.to_owned(), partition));
        }
    }

    /// Notes that the record at `offset` was read.
    pub fn read(&mut self, topic: &str, partition: i32, offset: i64) {
        let key = (topic.to_owned(), partition);
        if self.targets.get(&key).is_some_and(|high| offset + 1 >= *high) {
            self.targets.remove(&key);
        }
    }

    /// Whether `partition` of `topic` is read up to its target.
    pub fn done(&self, topic: &str, partition: i32) -> bool {
        !self.targets.contains_key(&(topic.to_owned(), partition))
    }

    /// Whether every partition is read up to its target.
    pub fn caught_up(&self) -> bool {
        self.targets.is_empty()
    }
}

/// Assigns every partition of `topics` from the beginning; returns the catch-up targets.
pub async fn assign_all(consumer: &Arc<StreamConsumer>, topics: &[String]) -> Result<Progress, ResolverError> {
    let mut list = TopicPartitionList::new();
    let mut progress = Progress::default();
    for topic in topics {
        for partition in 0..partition_count(consumer, topic).await? {
            list.add_partition_offset(topic, partition, Offset::Beginning).map_err(kafka("building the assignment"))?;
            progress.target(topic, partition, high_watermark(consumer, topic, partition).await?);
        }
    }
    consumer.assign(&list).map_err(kafka("assigning the input partitions"))?;
    Ok(progress)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catch_up_is_done_when_every_partition_reached_its_start_watermark() {
        let mut progress = Progress::default();
        progress.target("a", 0, 3);
        progress.target("b", 0, 0);
        assert!(!progress.caught_up());
        assert!(progress.done("b", 0), "an empty partition has nothing to read");
        progress.read("a", 0, 1);
        assert!(!progress.done("a", 0));
        progress.read("a", 0, 2);
        assert!(progress.caught_up());
    }
}
