//! Reading the input topics whole: every instance reads every partition of the CDC topics and the Graph events,
//! by manual assignment, from its checkpoint's positions ([`crate::checkpoint`]) or from the beginning (state is
//! rebuilt from the topics at start).
//!
//! Invariant: [`Progress::caught_up`] becomes true once every partition has been read up to the high
//! watermark it had when reading started; before that the resolver only builds state (emitting intermediate
//! states of a replay would flap room calendars).
//!
//! How far the resolver has handled each partition ([`Positions`]) is committed to the group
//! [`input_group`] and reported as the gauge `roomsync_resolver_input_lag_records`, so Kafka tooling and
//! dashboards show the resolver's lag like any consumer's. Those committed offsets are for monitoring only: the
//! resolver resumes from its checkpoint's positions, which are written with the state they stand for.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};
use tracing::warn;

use crate::checkpoint::{Positions as CheckpointPositions, Watermarks};
use crate::error::ResolverError;

fn kafka(context: &str) -> impl FnOnce(rdkafka::error::KafkaError) -> ResolverError + '_ {
    move |err| ResolverError::Stream(streams::StreamError::Kafka { context: context.to_owned(), source: err })
}

/// The group under which the resolver of group `group` commits its input positions (monitoring only).
pub fn input_group(group: &str) -> String {
    format!("{group}-inputs")
}

/// How often the input positions are committed and the lag is measured.
pub const REPORT_EVERY: Duration = Duration::from_secs(5);

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
    let (_, high) = streams::watermarks(consumer, topic, partition, Duration::from_secs(10)).await?;
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

/// Low and high watermarks of every partition of `topics`.
pub async fn watermarks(consumer: &Arc<StreamConsumer>, topics: &[String]) -> Result<Watermarks, ResolverError> {
    let mut out = Watermarks::new();
    for topic in topics {
        for partition in 0..partition_count(consumer, topic).await? {
            let low_high = streams::watermarks(consumer, topic, partition, Duration::from_secs(10)).await?;
            out.insert((topic.clone(), partition), low_high);
        }
    }
    Ok(out)
}

/// Assigns every partition of `watermarks` at its position in `start` (a checkpoint's), or from the beginning;
/// returns the catch-up targets: the high watermarks, where they lie beyond the start.
pub fn assign_all(
    consumer: &StreamConsumer,
    watermarks: &Watermarks,
    start: &CheckpointPositions,
) -> Result<Progress, ResolverError> {
    let mut list = TopicPartitionList::new();
    let mut progress = Progress::default();
    for ((topic, partition), (_, high)) in watermarks {
        let from = start.get(&(topic.clone(), *partition)).copied();
        let offset = from.map_or(Offset::Beginning, Offset::Offset);
        list.add_partition_offset(topic, *partition, offset).map_err(kafka("building the assignment"))?;
        if from.is_none_or(|from| from < *high) {
            progress.target(topic, *partition, *high);
        }
    }
    consumer.assign(&list).map_err(kafka("assigning the input partitions"))?;
    Ok(progress)
}

/// The next offset to handle per input partition: what the resolver has handed to its core (records of a
/// transaction still waiting for its END count as handled: they are in the assembler).
#[derive(Debug, Default)]
pub struct Positions {
    next: BTreeMap<(String, i32), i64>,
    uncommitted: bool,
}

impl Positions {
    /// Positions read from a checkpoint: reading goes on there.
    pub fn starting_at(start: &CheckpointPositions) -> Self {
        Positions { next: start.clone(), uncommitted: false }
    }

    /// The next offset to handle per partition (only partitions something was handled in, or a checkpoint named).
    pub fn next(&self) -> &CheckpointPositions {
        &self.next
    }

    /// Notes that the record at `offset` was handled.
    pub fn handled(&mut self, topic: &str, partition: i32, offset: i64) {
        self.next.insert((topic.to_owned(), partition), offset + 1);
        self.uncommitted = true;
    }

    /// The positions as a partition list (empty when nothing was handled).
    fn list(&self) -> TopicPartitionList {
        let mut list = TopicPartitionList::new();
        for ((topic, partition), next) in &self.next {
            // Only fails for an invalid offset kind; `Offset::Offset` is always valid.
            let _ = list.add_partition_offset(topic, *partition, Offset::Offset(*next));
        }
        list
    }

    /// Commits what changed since the last commit, without waiting (a failure is only a stale lag view).
    pub fn commit(&mut self, consumer: &StreamConsumer) {
        if !self.uncommitted {
            return;
        }
        self.uncommitted = false;
        if let Err(err) = consumer.commit(&self.list(), CommitMode::Async) {
            warn!(error = %err, "committing the resolver's input positions failed (lag monitoring only)");
        }
    }

    /// Measures the lag of every assigned partition (high watermark minus the next offset to handle) and sets
    /// the gauge per topic. Watermarks are a request per partition: the future runs on a blocking thread and
    /// owns what it needs, so the caller can spawn it and go on.
    pub fn lag_report(&self, consumer: &Arc<StreamConsumer>) -> impl std::future::Future<Output = ()> + Send + 'static {
        let consumer = Arc::clone(consumer);
        let next = self.next.clone();
        async move {
            let measured = tokio::task::spawn_blocking(move || -> Result<BTreeMap<String, i64>, String> {
                let assignment = consumer.assignment().map_err(|e| e.to_string())?;
                let mut watermarks = BTreeMap::new();
                for element in assignment.elements() {
                    let (topic, partition) = (element.topic(), element.partition());
                    let low_high = consumer
                        .fetch_watermarks(topic, partition, Duration::from_secs(5))
                        .map_err(|e| format!("{topic}/{partition}: {e}"))?;
                    watermarks.insert((topic.to_owned(), partition), low_high);
                }
                Ok(lag_per_topic(&next, &watermarks))
            })
            .await;
            match measured {
                Ok(Ok(lag)) => {
                    for (topic, records) in lag {
                        ::metrics::gauge!(crate::metrics::INPUT_LAG, "topic" => topic).set(records as f64);
                    }
                }
                Ok(Err(err)) => warn!(error = %err, "measuring the resolver's input lag failed"),
                Err(err) => warn!(error = %err, "the input lag task failed"),
            }
        }
    }

    /// Commits every position and waits for the answer (graceful stop).
    pub async fn commit_now(&self, consumer: &Arc<StreamConsumer>) {
        let consumer = Arc::clone(consumer);
        let list = self.list();
        if list.count() == 0 {
            return;
        }
        let done = tokio::task::spawn_blocking(move || consumer.commit(&list, CommitMode::Sync)).await;
        if let Ok(Err(err)) = done {
            warn!(error = %err, "committing the resolver's input positions failed (lag monitoring only)");
        }
    }
}

/// Records not yet handled per topic: for each partition, its high watermark minus the next offset to handle
/// (its low watermark when nothing was handled yet: what retention removed cannot be read).
fn lag_per_topic(
    next: &BTreeMap<(String, i32), i64>,
    watermarks: &BTreeMap<(String, i32), (i64, i64)>,
) -> BTreeMap<String, i64> {
    let mut lag: BTreeMap<String, i64> = BTreeMap::new();
    for ((topic, partition), (low, high)) in watermarks {
        let from = next.get(&(topic.clone(), *partition)).copied().unwrap_or(*low).max(*low);
        *lag.entry(topic.clone()).or_default() += (high - from).max(0);
    }
    lag
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

    #[test]
    fn positions_are_the_offset_after_the_last_handled_record() {
        let mut positions = Positions::default();
        positions.handled("a", 0, 4);
        positions.handled("a", 1, 0);
        positions.handled("a", 0, 5);
        let list = positions.list();
        let offsets: Vec<(i32, Offset)> = list.elements().iter().map(|e| (e.partition(), e.offset())).collect();
        assert_eq!(offsets, vec![(0, Offset::Offset(6)), (1, Offset::Offset(1))]);
    }

    #[test]
    fn lag_counts_what_is_left_to_read_in_every_partition_of_a_topic() {
        let key = |t: &str, p: i32| (t.to_owned(), p);
        let next = BTreeMap::from([(key("a", 0), 6), (key("a", 1), 1), (key("b", 0), 10)]);
        let watermarks = BTreeMap::from([
            (key("a", 0), (0, 10)),
            (key("a", 1), (0, 1)),
            (key("a", 2), (3, 7)),
            (key("b", 0), (0, 10)),
        ]);
        let lag = lag_per_topic(&next, &watermarks);
        assert_eq!(lag, BTreeMap::from([("a".to_owned(), 4 + 4), ("b".to_owned(), 0)]), "a/2 from its low watermark");
    }
}
