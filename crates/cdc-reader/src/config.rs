//! Configuration of the reader: where PostgreSQL and Kafka are, what is captured and what never leaves the
//! database.
//!
//! Invariant: defaults live here and only here ([`Config::new`] and the serde defaults use the same functions).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::error::CdcError;

/// The tables captured unless configured otherwise (schema `public`).
pub const DEFAULT_TABLES: &[&str] = &[
    "bb_event",
    "bb_event_resource",
    "bb_booking",
    "bb_booking_resource",
    "bb_allocation",
    "bb_allocation_resource",
    "bb_resource",
    "bb_building",
    "bb_organization",
    "bb_group",
    "bb_season",
    "bb_resource_outlook_item",
    "outlook_calendar_mapping",
    crate::backfill::SIGNAL_TABLE,
];

/// Columns that never leave the database, in any captured table (`name`) or one table (`table.name`).
pub const DEFAULT_EXCLUDED_COLUMNS: &[&str] = &["secret", "customer_ssn"];

/// Settings of the CDC reader. Its `Debug` output hides the password in `database_url`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// PostgreSQL connection URL (`postgres://user:password@host:port/database`) of a role with REPLICATION.
    pub database_url: String,
    /// Logical replication slot name: lowercase letters, digits and `_`, at most 63 characters.
    #[serde(default = "default_slot")]
    pub slot: String,
    /// Publication name (same rules as the slot name).
    #[serde(default = "default_publication")]
    pub publication: String,
    /// Schema of the captured tables.
    #[serde(default = "default_schema")]
    pub schema: String,
    /// Captured tables. Tables that do not exist yet are reported and added once they exist (at the next start).
    #[serde(default = "default_tables")]
    pub tables: Vec<String>,
    /// Columns left out of the publication: `column` (every table) or `table.column`.
    #[serde(default = "default_excluded")]
    pub excluded_columns: Vec<String>,
    /// Kafka settings.
    pub kafka: KafkaConfig,
    /// Base URL of the Confluent-compatible schema registry.
    #[serde(default = "default_registry")]
    pub schema_registry_url: String,
    /// How often the confirmed position is reported to PostgreSQL.
    #[serde(default = "default_status_interval", with = "humantime_serde")]
    pub status_interval: Duration,
    /// Rows fetched per round trip while copying the initial snapshot (bounds the snapshot's memory).
    #[serde(default = "default_snapshot_batch")]
    pub snapshot_batch_rows: i32,
    /// Records produced but not yet acknowledged by Kafka before the reader stops reading (backpressure).
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// First wait before reconnecting after a transient failure; doubles up to `retry_max`.
    #[serde(default = "default_retry_min", with = "humantime_serde")]
    pub retry_min: Duration,
    /// Longest wait between reconnection attempts.
    #[serde(default = "default_retry_max", with = "humantime_serde")]
    pub retry_max: Duration,
    /// After each committed transaction (and after the snapshot), produce an END record with the count of
    /// records per topic to `<prefix>.cdc.transactions`, so consumers can apply whole transactions.
    #[serde(default = "default_transaction_metadata")]
    pub transaction_metadata: bool,
}

/// Kafka settings of the reader.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers.
    pub bootstrap: String,
    /// Topic prefix (`<prefix>.cdc.<schema>.<table>`).
    #[serde(default = "default_prefix")]
    pub topic_prefix: String,
    /// Partitions of topics the reader creates.
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    /// Replication factor of topics the reader creates.
    #[serde(default = "default_replication_factor")]
    pub replication_factor: i32,
    /// Largest record (key + value) the reader produces; larger rows go to the dead-letter topic. Keep it at or
    /// below the broker's and topic's `max.message.bytes` (the producer's `message.max.bytes` is set from it).
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Extra librdkafka settings (e.g. security). Idempotence and acks=all are always on.
    #[serde(default)]
    pub client: BTreeMap<String, String>,
}

fn default_slot() -> String {
    "roomsync_cdc".to_owned()
}
fn default_publication() -> String {
    "roomsync_cdc".to_owned()
}
fn default_schema() -> String {
    "public".to_owned()
}
fn default_tables() -> Vec<String> {
    DEFAULT_TABLES.iter().map(|t| (*t).to_owned()).collect()
}
fn default_excluded() -> Vec<String> {
    DEFAULT_EXCLUDED_COLUMNS.iter().map(|t| (*t).to_owned()).collect()
}
fn default_registry() -> String {
    "http://127.0.0.1:8081".to_owned()
}
fn default_status_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_snapshot_batch() -> i32 {
    1000
}
fn default_max_in_flight() -> usize {
    50_000
}
fn default_retry_min() -> Duration {
    Duration::from_millis(200)
}
fn default_retry_max() -> Duration {
    Duration::from_secs(30)
}
fn default_prefix() -> String {
    vocabulary::topics::DEFAULT_PREFIX.to_owned()
}
fn default_partitions() -> i32 {
    1
}
fn default_replication_factor() -> i32 {
    1
}
fn default_transaction_metadata() -> bool {
    true
}
fn default_max_message_bytes() -> usize {
    1_000_000
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_url(&self.database_url))
            .field("slot", &self.slot)
            .field("publication", &self.publication)
            .field("schema", &self.schema)
            .field("tables", &self.tables)
            .field("excluded_columns", &self.excluded_columns)
            .field("kafka", &self.kafka)
            .field("schema_registry_url", &self.schema_registry_url)
            .field("status_interval", &self.status_interval)
            .field("snapshot_batch_rows", &self.snapshot_batch_rows)
            .field("max_in_flight", &self.max_in_flight)
            .field("retry_min", &self.retry_min)
            .field("retry_max", &self.retry_max)
            .field("transaction_metadata", &self.transaction_metadata)
            .finish()
    }
}

/// `postgres://user:secret@host/db` -> `postgres://user:***@host/db` (and `password=` in key-value form).
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((credentials, host)) = rest.rsplit_once('@') {
            if let Some((user, _password)) = credentials.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
        return url.to_owned();
    }
    url.split_whitespace()
        .map(|part| if part.starts_with("password=") { "password=***" } else { part })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Config {
    /// A configuration with every default, for `database_url` and Kafka at `bootstrap`.
    pub fn new(database_url: impl Into<String>, bootstrap: impl Into<String>) -> Self {
        Config {
            database_url: database_url.into(),
            slot: default_slot(),
            publication: default_publication(),
            schema: default_schema(),
            tables: default_tables(),
            excluded_columns: default_excluded(),
            kafka: KafkaConfig {
                bootstrap: bootstrap.into(),
                topic_prefix: default_prefix(),
                partitions: default_partitions(),
                replication_factor: default_replication_factor(),
                max_message_bytes: default_max_message_bytes(),
                client: BTreeMap::new(),
            },
            schema_registry_url: default_registry(),
            status_interval: default_status_interval(),
            snapshot_batch_rows: default_snapshot_batch(),
            max_in_flight: default_max_in_flight(),
            retry_min: default_retry_min(),
            retry_max: default_retry_max(),
            transaction_metadata: default_transaction_metadata(),
        }
    }

    /// Checks names that end up in replication commands, where they cannot be quoted.
    pub fn validate(&self) -> Result<(), CdcError> {
        validate_name("slot", &self.slot)?;
        validate_name("publication", &self.publication)?;
        if self.tables.is_empty() {
            return Err(CdcError::Config("no tables to capture".into()));
        }
        if self.snapshot_batch_rows <= 0 || self.max_in_flight == 0 {
            return Err(CdcError::Config("snapshot_batch_rows and max_in_flight must be positive".into()));
        }
        Ok(())
    }

    /// Whether `column` of `table` is kept out of the publication.
    pub fn is_excluded(&self, table: &str, column: &str) -> bool {
        self.excluded_columns.iter().any(|rule| match rule.split_once('.') {
            Some((t, c)) => t == table && c == column,
            None => rule == column,
        })
    }
}

/// Slot and publication names go unquoted into START_REPLICATION: only `[a-z0-9_]{1,63}` is accepted, which is
/// also what PostgreSQL allows for slot names.
pub fn validate_name(what: &str, name: &str) -> Result<(), CdcError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(CdcError::Config(format!("{what} name {name:?} must be 1 to 63 characters of a-z, 0-9 and _")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_names_that_could_inject_commands_are_refused() {
        assert!(validate_name("slot", "roomsync_cdc").is_ok());
        for bad in ["", "a b", "x;DROP", "Upper", "x'", &"a".repeat(64)] {
            assert!(validate_name("slot", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn sensitive_columns_are_excluded_everywhere_or_per_table() {
        let mut config = Config::new("postgres://x@y/z", "k:1");
        config.excluded_columns.push("bb_group.contact_primary".into());
        assert!(config.is_excluded("bb_event", "secret"));
        assert!(config.is_excluded("bb_organization", "customer_ssn"));
        assert!(config.is_excluded("bb_group", "contact_primary"));
        assert!(!config.is_excluded("bb_event", "contact_primary"));
        assert!(!config.is_excluded("bb_event", "name"));
    }

    #[test]
    fn debug_output_never_shows_the_database_password() {
        let config = Config::new("postgres://cdc:s3cret@db:5432/booking", "k:1");
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret") && shown.contains("cdc:***@db:5432/booking"), "{shown}");
        assert_eq!(redact_url("host=db password=s3cret user=x"), "host=db password=*** user=x");
    }

    #[test]
    fn a_minimal_toml_like_config_takes_the_defaults() {
        let config: Config = serde_json::from_str(
            r#"{"database_url":"postgres://r@h/db","kafka":{"bootstrap":"k:9092"},"status_interval":"5s"}"#,
        )
        .expect("valid config");
        assert_eq!(config.slot, "roomsync_cdc");
        assert_eq!(config.status_interval, Duration::from_secs(5));
        assert_eq!(config.tables.len(), DEFAULT_TABLES.len());
    }
}
