//! Connection settings of the Kafka cluster, shared by every client a stage creates.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;

/// How long a consumer's fetch may wait at the broker for data (librdkafka `fetch.wait.max.ms`, default 500).
///
/// Why short: Apache Kafka answers a waiting fetch as soon as data arrives, but tansu 0.6 polls its storage and
/// sleeps half the remaining wait (all of it under 250 ms) after every poll, even one that found data (see its
/// `tansu-storage` `service/fetch.rs`): with the default, each fetch took 250 ms or more, on each of the two hops
/// between a booking commit and its Graph write. An idle consumer now fetches every 50 ms per broker, which a
/// Kafka broker handles without notice; set the property to tune it.
pub const FETCH_WAIT_MS: u32 = 50;

/// How long a producer waits to fill a batch (librdkafka `linger.ms`, default 5) in every roomsync producer; the
/// `kafka.properties` override it.
///
/// Why not librdkafka's 5 ms: an idempotent producer keeps at most 5 requests in flight per partition, and when a
/// partition has reached that limit with a batch whose linger has expired, librdkafka's broker thread wakes at once
/// again and again (`rd_kafka_toppar_producer_serve` sets the wakeup before it checks the in-flight limit) until an
/// answer comes: a busy loop whenever acknowledgements take longer than 5 x linger. With 5 ms on tansu (tens of ms per
/// acknowledged produce under load) the cdc-reader's producer thread used 29 % of a core and another producer 9 % at
/// 200 changes/s, and the machine's other work waited for them (benches/README.md, 2026-12-07). 20 ms sends a
/// quarter of the requests; the cost is at most 20 ms per produce hop.
pub const PRODUCER_LINGER_MS: u32 = 20;

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
    /// A group member that has had no partition for this long leaves its group and joins again with a new
    /// consumer (`None`, the default: it waits and warns). For single-instance deployments, where a member
    /// without partitions is never normal: tansu 0.6 can leave a member waiting for ever for its assignment
    /// after a broker crash (the chaos test's F7). Never set it where more instances than partitions run.
    pub rejoin_unassigned_after: Option<std::time::Duration>,
}

impl KafkaSettings {
    /// Settings for `bootstrap_servers` with one partition, replication factor one and no extra properties.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        KafkaSettings {
            bootstrap_servers: bootstrap_servers.into(),
            properties: BTreeMap::new(),
            partitions: 1,
            replication_factor: 1,
            rejoin_unassigned_after: None,
        }
    }

    /// A consumer configuration for `group`: manual commits, from the earliest offset when the group has none,
    /// no EOF events, and a short fetch wait ([`FETCH_WAIT_MS`]); the extra properties override all but the
    /// group and the bootstrap servers.
    pub fn consumer_config(&self, group: &str) -> ClientConfig {
        let fetch_wait = FETCH_WAIT_MS.to_string();
        let mut config = self.layered(&[
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
            ("enable.partition.eof", "false"),
            ("fetch.wait.max.ms", &fetch_wait),
        ]);
        config.set("group.id", group);
        config
    }

    /// A producer configuration: a [`PRODUCER_LINGER_MS`] linger and the caller's `defaults`, all of which the
    /// extra properties override, and the bootstrap servers.
    pub fn producer_config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let linger = PRODUCER_LINGER_MS.to_string();
        let mut layers = vec![("linger.ms", linger.as_str())];
        layers.extend_from_slice(defaults);
        self.layered(&layers)
    }

    /// A librdkafka client configuration with the bootstrap servers and the extra properties.
    pub fn client_config(&self) -> ClientConfig {
        self.layered(&[])
    }

    /// `defaults`, then the extra properties (overriding them), then the bootstrap servers.
    fn layered(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        for (key, value) in defaults {
            config.set(*key, *value);
        }
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config.set("bootstrap.servers", &self.bootstrap_servers);
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producers_linger_unless_the_properties_say_otherwise() {
        let mut settings = KafkaSettings::new("127.0.0.1:9092");
        assert_eq!(settings.producer_config(&[]).get("linger.ms"), Some(PRODUCER_LINGER_MS.to_string().as_str()));
        settings.properties.insert("linger.ms".into(), "2".into());
        assert_eq!(settings.producer_config(&[]).get("linger.ms"), Some("2"));
    }

    #[test]
    fn consumers_fetch_with_a_short_wait_unless_the_properties_say_otherwise() {
        let mut settings = KafkaSettings::new("127.0.0.1:9092");
        let config = settings.consumer_config("g");
        assert_eq!(config.get("fetch.wait.max.ms"), Some(FETCH_WAIT_MS.to_string().as_str()));
        assert_eq!(config.get("enable.auto.commit"), Some("false"));
        assert_eq!(config.get("group.id"), Some("g"));

        settings.properties.insert("fetch.wait.max.ms".into(), "200".into());
        settings.properties.insert("group.id".into(), "other".into());
        settings.properties.insert("bootstrap.servers".into(), "elsewhere:9092".into());
        let config = settings.consumer_config("g");
        assert_eq!(config.get("fetch.wait.max.ms"), Some("200"));
        assert_eq!(config.get("group.id"), Some("g"), "the stage's group is not a property to override");
        assert_eq!(config.get("bootstrap.servers"), Some("127.0.0.1:9092"));
    }
}
