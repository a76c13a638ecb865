//! Connection settings of the Kafka cluster, shared by every client a stage creates.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;

/// Where the cluster is and how to talk to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    /// Bootstrap servers, comma separated.
    pub bootstrap_servers: String,
    /// Extra librdkafka properties (security, timeouts).
    pub properties: BTreeMap<String, String>,
    /// Partitions of topics created by [`ensure_topics`](crate::ensure_topics).
    pub partitions: i32,
    /// Replication factor of created topics.
    pub replication_factor: i32,
}

impl KafkaSettings {
    /// Settings for `bootstrap_servers` with one partition, replication factor one and no extra properties.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        KafkaSettings {
            bootstrap_servers: bootstrap_servers.into(),
            properties: BTreeMap::new(),
            partitions: 1,
            replication_factor: 1,
        }
    }

    /// A librdkafka client configuration with the bootstrap servers and the extra properties.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config.set("bootstrap.servers", &self.bootstrap_servers);
        config
    }
}
