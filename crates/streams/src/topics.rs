//! Creating the topics a stage writes, idempotently: a topic that exists already is fine.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::{KafkaSettings, StreamError};

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Its name.
    pub name: String,
    /// Log compaction (for topics that hold the latest state per key, e.g. the desired state).
    pub compacted: bool,
}

impl TopicSpec {
    /// A topic that keeps records by time (the default retention).
    pub fn log(name: impl Into<String>) -> Self {
        TopicSpec { name: name.into(), compacted: false }
    }

    /// A topic that keeps the latest record per key.
    pub fn compacted(name: impl Into<String>) -> Self {
        TopicSpec { name: name.into(), compacted: true }
    }

    /// A topic of the pipeline, with the catalogue's cleanup policy ([`vocabulary::topics::Topics::cleanup`]).
    pub fn of(topics: &vocabulary::topics::Topics, name: impl Into<String>) -> Self {
        let name = name.into();
        let compacted = topics.cleanup(&name) == vocabulary::topics::Cleanup::Compact;
        TopicSpec { name, compacted }
    }
}

/// Creates the topics that do not exist yet, with the settings' partitions and replication factor.
pub async fn ensure_topics(settings: &KafkaSettings, topics: &[TopicSpec]) -> Result<(), StreamError> {
    let admin: AdminClient<DefaultClientContext> =
        settings.client_config().create().map_err(|err| StreamError::kafka("creating an admin client", err))?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|topic| {
            let spec =
                NewTopic::new(&topic.name, settings.partitions, TopicReplication::Fixed(settings.replication_factor));
            if topic.compacted {
                spec.set("cleanup.policy", "compact")
            } else {
                spec
            }
        })
        .collect();
    let results = admin
        .create_topics(&new, &AdminOptions::new())
        .await
        .map_err(|err| StreamError::kafka("creating topics", err))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(StreamError::kafka(
                    format!("creating topic {name}"),
                    rdkafka::error::KafkaError::AdminOp(code),
                ))
            }
        }
    }
    Ok(())
}
