//! Topic names of the pipeline, in one place.
//!
//! Every name starts with a configurable prefix (default `roomsync`), so several installations (or the tests,
//! which use a unique prefix each) can share one cluster without seeing each other's records. Record values are
//! registered under the Confluent TopicNameStrategy subjects `<topic>-key` and `<topic>-value`.
//!
//! ```text
//!  <prefix>.cdc.<schema>.<table>   CDC envelopes, key = primary key          (cdc-reader  -> resolver)
//!  <prefix>.cdc.transactions       END of each source transaction: its record count per topic (cdc-reader -> resolver)
//!  <prefix>.graph.events           Outlook events, key = room + event id     (graph-source -> resolver)   compacted
//!  <prefix>.reservations           reservations (stage 1 changelog), key = resource (resolver -> resolver, analytics)
//!  <prefix>.sync.desired           desired room-calendar item, key = room + item (resolver -> graph-sink) compacted
//!  <prefix>.sync.imports           Outlook-origin bookings to import         (resolver -> mapping sink)   compacted
//!  <prefix>.deadletter             records that could not be processed, with the reason
//! ```
//! The cleanup policy of each topic is decided here ([`Topics::cleanup`]): every stage that creates a missing
//! topic creates it the same way, whichever starts first.

/// The default topic prefix.
pub const DEFAULT_PREFIX: &str = "roomsync";

/// Builds the names of the pipeline's topics under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
}

impl Default for Topics {
    fn default() -> Self {
        Topics::new(DEFAULT_PREFIX)
    }
}

impl Topics {
    /// Topic names under `prefix` (no trailing dot).
    pub fn new(prefix: impl Into<String>) -> Self {
        Topics { prefix: prefix.into() }
    }

    /// The prefix these names start with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The CDC topic of one table: `<prefix>.cdc.<schema>.<table>`.
    pub fn cdc(&self, schema: &str, table: &str) -> String {
        format!("{}.cdc.{schema}.{table}", self.prefix)
    }

    /// The END record of each source transaction (Debezium-style transaction metadata: commit LSN, record count
    /// per topic), after its data records.
    pub fn transactions(&self) -> String {
        format!("{}.cdc.transactions", self.prefix)
    }

    /// Outlook room-calendar events as the Graph source saw them.
    pub fn graph_events(&self) -> String {
        format!("{}.graph.events", self.prefix)
    }

    /// Assembled reservations, one record per (reservation, resource), keyed by resource.
    pub fn reservations(&self) -> String {
        format!("{}.reservations", self.prefix)
    }

    /// What each room calendar must hold, keyed by room + item (compacted).
    pub fn desired(&self) -> String {
        format!("{}.sync.desired", self.prefix)
    }

    /// Outlook-origin bookings to import into the booking system.
    pub fn imports(&self) -> String {
        format!("{}.sync.imports", self.prefix)
    }

    /// Records that could not be processed, with the reason.
    pub fn dead_letter(&self) -> String {
        format!("{}.deadletter", self.prefix)
    }

    /// The consumer group of a stage: `<prefix>-<stage>`, so deployments sharing a Kafka cluster (a test and a
    /// demo, two municipalities) never share a group; the default prefix gives the names of earlier releases
    /// (`roomsync-resolver`, `roomsync-graph-sink`).
    pub fn group(&self, stage: &str) -> String {
        format!("{}-{stage}", self.prefix)
    }
}

/// How a topic keeps its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleanup {
    /// By time (Kafka's `delete` policy): a log of changes.
    Delete,
    /// The latest record per key (`compact`): a state.
    Compact,
}

impl Topics {
    /// The cleanup policy of `topic`: the states (Outlook events, desired items, imports) are compacted, the
    /// change logs (CDC, transactions, reservations, dead letters) are not.
    pub fn cleanup(&self, topic: &str) -> Cleanup {
        if topic == self.graph_events() || topic == self.desired() || topic == self.imports() {
            Cleanup::Compact
        } else {
            Cleanup::Delete
        }
    }
}

/// The partition of `<prefix>.cdc.transactions` every END marker goes to, whatever the topic's partition count:
/// their order is the commit order, which the resolver's transaction assembler relies on (a transaction not seen
/// when a later one is released is taken for late). Keyed records would spread over the partitions and be read
/// out of order.
pub const TRANSACTIONS_PARTITION: i32 = 0;

/// The schema-registry subject of a topic's record values (Confluent TopicNameStrategy).
pub fn value_subject(topic: &str) -> String {
    format!("{topic}-value")
}

/// The schema-registry subject of a topic's record keys (Confluent TopicNameStrategy).
pub fn key_subject(topic: &str) -> String {
    format!("{topic}-key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_documented_layout() {
        let topics = Topics::default();
        assert_eq!(topics.cdc("public", "bb_event"), "roomsync.cdc.public.bb_event");
        assert_eq!(topics.graph_events(), "roomsync.graph.events");
        assert_eq!(topics.reservations(), "roomsync.reservations");
        assert_eq!(topics.desired(), "roomsync.sync.desired");
        assert_eq!(topics.imports(), "roomsync.sync.imports");
        assert_eq!(topics.dead_letter(), "roomsync.deadletter");
        assert_eq!(topics.group("resolver"), "roomsync-resolver");
        assert_eq!(value_subject("roomsync.graph.events"), "roomsync.graph.events-value");
    }

    #[test]
    fn a_prefix_separates_installations() {
        assert_eq!(Topics::new("t_1").cdc("public", "bb_booking"), "t_1.cdc.public.bb_booking");
    }
}
