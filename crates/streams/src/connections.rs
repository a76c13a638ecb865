//! How a stage reaches the systems around it: the Kafka cluster, the schema registry, the names of the pipeline's
//! topics and the booking database. Every stage takes this one type; `roomsync run` builds it once from its
//! configuration and hands each stage a copy.
//!
//! Invariant: no secret is printed. The database password travels in the `tokio_postgres::Config` beside the
//! address (never inside a URL string), and its `Debug` shows it as `_`; Kafka security settings belong in
//! [`KafkaSettings::properties`].

use vocabulary::topics::Topics;

use crate::KafkaSettings;

/// Where the Kafka cluster, the schema registry and the booking database are, and the topic names in use.
#[derive(Debug, Clone, PartialEq)]
pub struct Connections {
    /// The Kafka cluster.
    pub kafka: KafkaSettings,
    /// Base URL of the Confluent-compatible schema registry.
    pub registry_url: String,
    /// The pipeline's topic names (their prefix).
    pub topics: Topics,
    /// The booking database, which holds roomsync's tables too.
    pub database: tokio_postgres::Config,
}

impl Connections {
    /// Connections to `kafka`, the registry at `registry_url` and `database`, with the default topic prefix.
    pub fn new(kafka: KafkaSettings, registry_url: impl Into<String>, database: tokio_postgres::Config) -> Self {
        Connections { kafka, registry_url: registry_url.into(), topics: Topics::default(), database }
    }
}
