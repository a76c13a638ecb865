//! Configuration of the reader: where PostgreSQL and Kafka are, what is captured and what never leaves the
//! database.
//!
//! Invariant: defaults live here and only here: [`Config::new`] sets them, and `roomsync`'s `[cdc]` section takes
//! its defaults from the constants below, so the library and `roomsync run` never disagree.

use std::time::Duration;

use streams::Connections;

use crate::error::CdcError;

/// The tables captured unless configured otherwise (schema `public`): the whole table catalogue,
/// [`vocabulary::tables::TABLES`].
pub fn default_tables() -> Vec<String> {
    vocabulary::tables::TABLES.iter().map(|t| t.name.to_owned()).collect()
}

/// The default logical replication slot.
pub const DEFAULT_SLOT: &str = "roomsync";

/// The default publication.
pub const DEFAULT_PUBLICATION: &str = "roomsync";

/// The default schema of the captured tables.
pub const DEFAULT_SCHEMA: &str = "public";

/// The default [`Config::snapshot_batch_rows`].
pub const DEFAULT_SNAPSHOT_BATCH_ROWS: i32 = 1000;

/// The default [`Config::max_message_bytes`]: Kafka's own default `message.max.bytes`.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1_000_000;

/// Columns that never leave the database, in any captured table (`name`) or one table (`table.name`).
pub const DEFAULT_EXCLUDED_COLUMNS: &[&str] = &["secret", "customer_ssn"];

/// Settings of the CDC reader. Its `Debug` output hides the database password (`tokio_postgres::Config` prints it as
/// `_`).
#[derive(Clone)]
pub struct Config {
    /// Kafka (`partitions` and `replication_factor` are those of the topics the reader creates; `properties`
    /// are extra librdkafka settings such as security, while idempotence and acks=all are always on), the schema
    /// registry, the topic names (`<prefix>.cdc.<schema>.<table>`), and the database: host, port, database, a
    /// role with REPLICATION and its password.
    pub connections: Connections,
    /// Logical replication slot name: lowercase letters, digits and `_`, at most 63 characters.
    pub slot: String,
    /// Publication name (same rules as the slot name).
    pub publication: String,
    /// Schema of the captured tables.
    pub schema: String,
    /// Captured tables. Tables that do not exist yet are reported and added once they exist (at the next start).
    pub tables: Vec<String>,
    /// Columns left out of the publication: `column` (every table) or `table.column`.
    pub excluded_columns: Vec<String>,
    /// Largest record (key + value) the reader produces; larger rows go to the dead-letter topic. Keep it at or
    /// below the broker's and topic's `max.message.bytes` (the producer's `message.max.bytes` is set from it).
    pub max_message_bytes: usize,
    /// How often the confirmed position is reported to PostgreSQL.
    pub status_interval: Duration,
    /// Rows fetched per round trip while copying the initial snapshot (bounds the snapshot's memory).
    pub snapshot_batch_rows: i32,
    /// Records produced but not yet acknowledged by Kafka before the reader stops reading (backpressure).
    pub max_in_flight: usize,
    /// First wait before reconnecting after a transient failure; doubles up to `retry_max`.
    pub retry_min: Duration,
    /// Longest wait between reconnection attempts.
    pub retry_max: Duration,
    /// After each committed transaction (and after the snapshot), produce an END record with the count of
    /// records per topic to `<prefix>.cdc.transactions`, so consumers can apply whole transactions.
    pub transaction_metadata: bool,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("connections", &self.connections)
            .field("slot", &self.slot)
            .field("publication", &self.publication)
            .field("schema", &self.schema)
            .field("tables", &self.tables)
            .field("excluded_columns", &self.excluded_columns)
            .field("max_message_bytes", &self.max_message_bytes)
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
    /// A configuration with every default, for `connections`.
    pub fn new(connections: Connections) -> Self {
        Config {
            connections,
            slot: DEFAULT_SLOT.to_owned(),
            publication: DEFAULT_PUBLICATION.to_owned(),
            schema: DEFAULT_SCHEMA.to_owned(),
            tables: default_tables(),
            excluded_columns: DEFAULT_EXCLUDED_COLUMNS.iter().map(|c| (*c).to_owned()).collect(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            status_interval: Duration::from_secs(1),
            snapshot_batch_rows: DEFAULT_SNAPSHOT_BATCH_ROWS,
            max_in_flight: 50_000,
            retry_min: Duration::from_millis(200),
            retry_max: Duration::from_secs(30),
            transaction_metadata: true,
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

    fn pg(url: &str) -> tokio_postgres::Config {
        url.parse().unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    fn connections(database: tokio_postgres::Config) -> Connections {
        Connections::new(streams::KafkaSettings::new("k:1"), "http://r", database)
    }

    #[test]
    fn slot_names_that_could_inject_commands_are_refused() {
        assert!(validate_name("slot", "roomsync_cdc").is_ok());
        for bad in ["", "a b", "x;DROP", "Upper", "x'", &"a".repeat(64)] {
            assert!(validate_name("slot", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn sensitive_columns_are_excluded_everywhere_or_per_table() {
        let mut config = Config::new(connections(pg("postgres://x@y/z")));
        config.excluded_columns.push("bb_group.contact_primary".into());
        assert!(config.is_excluded("bb_event", "secret"));
        assert!(config.is_excluded("bb_organization", "customer_ssn"));
        assert!(config.is_excluded("bb_group", "contact_primary"));
        assert!(!config.is_excluded("bb_event", "contact_primary"));
        assert!(!config.is_excluded("bb_event", "name"));
    }

    #[test]
    fn debug_output_never_shows_the_database_password() {
        let config = Config::new(connections(pg("postgres://cdc:s3cret@db:5432/booking")));
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret") && shown.contains("\"cdc\"") && shown.contains("\"booking\""), "{shown}");
        assert_eq!(redact_url("host=db password=s3cret user=x"), "host=db password=*** user=x");
    }
}
