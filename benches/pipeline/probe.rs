//! Where the time goes: the Kafka timestamp (CreateTime, stamped by the producing stage) at which each change's
//! marker first appears in the cdc-reader's bb_event topic and in the resolver's desired topic. Markers are
//! found in the raw Avro bytes (strings are stored as UTF-8), so no decoding is needed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::ClientConfig;
use vocabulary::topics::Topics;

/// First appearance of each marker per topic: `(in cdc topic, in desired topic)`, Unix milliseconds.
pub type Seen = Arc<Mutex<HashMap<usize, (Option<i64>, Option<i64>)>>>;

fn markers(bytes: &[u8]) -> Vec<usize> {
    let needle = b"bench ";
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(at) = bytes.get(i..).and_then(|rest| rest.windows(needle.len()).position(|w| w == needle)) {
        let start = i + at + needle.len();
        let digits: Vec<u8> = bytes.iter().skip(start).take_while(|b| b.is_ascii_digit()).copied().collect();
        if let Ok(n) = std::str::from_utf8(&digits).unwrap_or("").parse::<usize>() {
            found.push(n);
        }
        i = start;
    }
    found
}

/// Starts a consumer of both topics that records first appearances into the returned map.
pub fn start(bootstrap: &str, prefix: &str) -> anyhow::Result<Seen> {
    let topics = Topics::new(prefix.to_owned());
    let (cdc, desired) = (topics.cdc("public", "bb_event"), topics.desired());
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("{prefix}-probe"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("topic.metadata.refresh.interval.ms", "1000")
        .create()?;
    consumer.subscribe(&[&cdc, &desired])?;
    let seen: Seen = Arc::default();
    let out = seen.clone();
    tokio::spawn(async move {
        loop {
            // Errors are transient here (e.g. a topic the stages have not created yet when the probe
            // subscribes): stopping at the first one left the stage latencies empty in some runs.
            let message = match consumer.recv().await {
                Ok(message) => message,
                Err(_) => continue,
            };
            let Some(at) = message.timestamp().to_millis() else { continue };
            let in_cdc = message.topic() == cdc;
            let mut map = out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for n in markers(message.payload().unwrap_or_default()) {
                let entry = map.entry(n).or_insert((None, None));
                let slot = if in_cdc { &mut entry.0 } else { &mut entry.1 };
                if slot.is_none_or(|t| at < t) {
                    *slot = Some(at);
                }
            }
        }
    });
    Ok(seen)
}

/// Every record the run's topics hold so far (the sum of their high watermarks): while it grows, some stage is
/// still publishing.
pub fn records(bootstrap: &str, prefix: &str) -> anyhow::Result<i64> {
    use rdkafka::consumer::BaseConsumer;
    let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", bootstrap).create()?;
    let timeout = std::time::Duration::from_secs(5);
    let metadata = consumer.fetch_metadata(None, timeout)?;
    let mut total = 0;
    for topic in metadata.topics().iter().filter(|t| t.name().starts_with(prefix)) {
        for partition in topic.partitions() {
            let (_, high) = consumer.fetch_watermarks(topic.name(), partition.id(), timeout)?;
            total += high;
        }
    }
    Ok(total)
}
