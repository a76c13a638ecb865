//! Dead letters: what the sink could not apply, kept with the reason on `<prefix>.deadletter`.
//!
//! Invariant: a dead letter is acknowledged by Kafka before the transaction that parks its item commits, so a
//! parked item always has its dead letter (a crash in between may write it twice, never zero times).

use std::collections::BTreeMap;

use streams::RecordProducer;
use vocabulary::records::DeadLetter;

use crate::error::SinkError;
use crate::work::Source;

/// The stage name in dead letters.
pub const STAGE: &str = "graph-sink";

/// Builds a dead letter for the record `source`.
pub fn letter(source: &Source, kind: &str, reason: &str, context: BTreeMap<String, String>) -> DeadLetter {
    DeadLetter {
        stage: STAGE.to_owned(),
        error_kind: kind.to_owned(),
        reason: reason.to_owned(),
        source_topic: Some(source.topic.clone()),
        source_partition: Some(source.partition),
        source_offset: Some(source.offset),
        source_key: source.key.clone(),
        source_value: source.value.clone(),
        context,
        occurred_at: chrono::Utc::now().timestamp_millis(),
    }
}

/// Sends dead letters and waits for Kafka's acknowledgement of each.
pub async fn send(producer: &RecordProducer, topic: &str, letters: &[(String, DeadLetter)]) -> Result<(), SinkError> {
    for (key, letter) in letters {
        producer.send(topic, key, None, Some(letter)).await?;
        metrics::counter!(crate::metrics::DEAD_LETTERS).increment(1);
    }
    Ok(())
}
