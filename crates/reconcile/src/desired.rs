//! The desired state: `<prefix>.sync.desired` read from the beginning up to the high watermarks fetched first.
//!
//! Invariants: the snapshot is complete up to those watermarks (a run that cannot reach them fails rather than
//! compare against part of the desired state); the last record of a key wins, and a tombstone or an
//! `op = delete` record means "not desired"; a key whose last record cannot be decoded is `unknown`, and the
//! reconciler never deletes anything for an unknown key. The reader is assign-based and commits nothing, so
//! it never disturbs a consumer group.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use schema_registry::AvroCodec;
use streams::KafkaSettings;
use tracing::{debug, warn};
use vocabulary::keys::split_room_item_key;
use vocabulary::records::{AvroRecord, DesiredItem, UpsertOrDelete};

use crate::error::Error;

/// How long a read may go without any progress before the run gives up.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout of one metadata or watermark request.
const META_TIMEOUT: Duration = Duration::from_secs(10);

/// One record as stored in the topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawRecord {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key (`<mailbox>/<item key>`).
    pub key: String,
    /// Confluent-framed Avro bytes; `None` for a tombstone.
    pub value: Option<Vec<u8>>,
}

/// A desired upsert with the bytes it was stored as (re-produced verbatim by a repair).
#[derive(Debug, Clone)]
pub(crate) struct DesiredEntry {
    /// The decoded record.
    pub item: DesiredItem,
    /// The record as read.
    pub raw: RawRecord,
}

/// The desired state of the rooms, as of the watermarks.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// High watermark of every partition when the read began.
    pub high: BTreeMap<i32, i64>,
    /// Desired upserts by mailbox, then item key.
    pub rooms: HashMap<String, BTreeMap<String, DesiredEntry>>,
    /// `(mailbox, item key)` whose last record could not be decoded.
    pub unknown: HashSet<(String, String)>,
}

impl Snapshot {
    /// The desired upserts of one room.
    pub fn room(&self, mailbox: &str) -> BTreeMap<String, DesiredEntry> {
        self.rooms.get(mailbox).cloned().unwrap_or_default()
    }

    /// Whether the last record of the item could not be decoded.
    pub fn is_unknown(&self, mailbox: &str, item_key: &str) -> bool {
        self.unknown.contains(&(mailbox.to_owned(), item_key.to_owned()))
    }
}

fn consumer(settings: &KafkaSettings) -> Result<BaseConsumer, Error> {
    settings
        .consumer_config(&format!("roomsync-reconcile-{}", uuid::Uuid::new_v4()))
        .set("enable.partition.eof", "true")
        .create()
        .map_err(Error::kafka("creating the desired-state reader"))
}

/// Reads `[from, to)` of each listed partition (blocking). Every `to` must be at most a high watermark seen.
fn read_ranges_blocking(
    settings: &KafkaSettings,
    topic: &str,
    ranges: &[(i32, i64, i64)],
) -> Result<Vec<RawRecord>, Error> {
    let mut open: HashMap<i32, (i64, i64)> =
        ranges.iter().filter(|(_, from, to)| to > from).map(|&(p, from, to)| (p, (from, to))).collect();
    if open.is_empty() {
        return Ok(Vec::new());
    }
    let consumer = consumer(settings)?;
    let mut list = TopicPartitionList::new();
    for (&partition, &(from, _)) in &open {
        list.add_partition_offset(topic, partition, Offset::Offset(from))
            .map_err(Error::kafka("building the assignment"))?;
    }
    consumer.assign(&list).map_err(Error::kafka("assigning the desired partitions"))?;
    let mut records = Vec::new();
    let mut progress = Instant::now();
    while !open.is_empty() {
        if progress.elapsed() > IDLE_TIMEOUT {
            return Err(Error::ReadTimeout { topic: topic.to_owned(), seconds: IDLE_TIMEOUT.as_secs() });
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                // Everything the partition holds has been read, and every `to` was at most its watermark.
                open.remove(&partition);
            }
            Some(Err(err)) => return Err(Error::Kafka { context: "reading the desired state", source: err }),
            Some(Ok(message)) => {
                progress = Instant::now();
                let partition = message.partition();
                let Some(&(_, to)) = open.get(&partition) else { continue };
                if message.offset() >= to {
                    open.remove(&partition);
                    continue;
                }
                match message.key().map(std::str::from_utf8) {
                    Some(Ok(key)) => records.push(RawRecord {
                        partition,
                        offset: message.offset(),
                        key: key.to_owned(),
                        value: message.payload().map(<[u8]>::to_vec),
                    }),
                    _ => warn!(partition, offset = message.offset(), "desired record without a utf-8 key ignored"),
                }
                if message.offset() + 1 >= to {
                    open.remove(&partition);
                }
            }
        }
    }
    Ok(records)
}

/// Reads `[from, to)` of each listed partition.
pub(crate) async fn read_ranges(
    settings: &KafkaSettings,
    topic: &str,
    ranges: Vec<(i32, i64, i64)>,
) -> Result<Vec<RawRecord>, Error> {
    let settings = settings.clone();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || read_ranges_blocking(&settings, &topic, &ranges))
        .await
        .map_err(|err| Error::Task(err.to_string()))?
}

/// The partitions' `(low, high)` watermarks (blocking); an absent topic is an error, never "nothing desired".
fn watermarks_blocking(settings: &KafkaSettings, topic: &str) -> Result<BTreeMap<i32, (i64, i64)>, Error> {
    let consumer = consumer(settings)?;
    let metadata =
        consumer.fetch_metadata(Some(topic), META_TIMEOUT).map_err(Error::kafka("fetching the desired metadata"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(Error::Kafka {
            context: "the desired topic has no partitions (does it exist?)",
            source: KafkaError::MetadataFetch(rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition),
        });
    }
    let mut marks = BTreeMap::new();
    for partition in partitions {
        let mark = consumer
            .fetch_watermarks(topic, partition, META_TIMEOUT)
            .map_err(Error::kafka("fetching the desired watermarks"))?;
        marks.insert(partition, mark);
    }
    Ok(marks)
}

/// The partitions' current `(low, high)` watermarks.
pub(crate) async fn watermarks(settings: &KafkaSettings, topic: &str) -> Result<BTreeMap<i32, (i64, i64)>, Error> {
    let settings = settings.clone();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || watermarks_blocking(&settings, &topic))
        .await
        .map_err(|err| Error::Task(err.to_string()))?
}

/// Reads the whole desired topic up to the current high watermarks and keeps the desired upserts of `rooms`
/// (all rooms when `rooms` is empty).
pub(crate) async fn read_snapshot(
    settings: &KafkaSettings,
    codec: &AvroCodec,
    topic: &str,
    rooms: &HashSet<String>,
) -> Result<Snapshot, Error> {
    let marks = watermarks(settings, topic).await?;
    let ranges: Vec<(i32, i64, i64)> = marks.iter().map(|(&p, &(low, high))| (p, low, high)).collect();
    let records = read_ranges(settings, topic, ranges).await?;
    debug!(records = records.len(), partitions = marks.len(), "desired state read");
    let mut latest: HashMap<String, RawRecord> = HashMap::new();
    for record in records {
        // Offsets grow within a partition and a key lives in one partition: the later record wins.
        match latest.get(&record.key) {
            Some(seen) if (seen.partition, seen.offset) > (record.partition, record.offset) => {}
            _ => {
                latest.insert(record.key.clone(), record);
            }
        }
    }
    let mut snapshot =
        Snapshot { high: marks.iter().map(|(&p, &(_, high))| (p, high)).collect(), ..Snapshot::default() };
    for (key, raw) in latest {
        let Some((mailbox, item_key)) = split_room_item_key(&key) else { continue };
        if !rooms.is_empty() && !rooms.contains(mailbox) {
            continue;
        }
        let Some(bytes) = &raw.value else { continue };
        let item = match codec.decode(bytes).await {
            Ok((_, value)) => DesiredItem::from_avro(value).map_err(|err| err.to_string()),
            Err(err) if err.is_transient() => return Err(Error::Stream(err.into())),
            Err(err) => Err(err.to_string()),
        };
        match item {
            Ok(item) if item.op == UpsertOrDelete::Upsert && item.content.is_some() => {
                let entry = DesiredEntry { item, raw: raw.clone() };
                snapshot.rooms.entry(mailbox.to_owned()).or_default().insert(item_key.to_owned(), entry);
            }
            Ok(item) if item.op == UpsertOrDelete::Upsert => {
                // The sink parks an upsert without content; what the room should hold is then not known.
                warn!(partition = raw.partition, offset = raw.offset, "desired upsert without content");
                snapshot.unknown.insert((mailbox.to_owned(), item_key.to_owned()));
            }
            Ok(_) => {}
            Err(reason) => {
                warn!(partition = raw.partition, offset = raw.offset, %reason, "undecodable desired record");
                snapshot.unknown.insert((mailbox.to_owned(), item_key.to_owned()));
            }
        }
    }
    Ok(snapshot)
}
