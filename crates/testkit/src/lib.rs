//! Test harness for roomsync's integration tests.
//!
//! Tests run against the local stack that `scripts/stack up` starts (real PostgreSQL with `wal_level=logical`,
//! a real Kafka-protocol broker, the schema registry, the Graph emulator). Every test gets its own database
//! (cloned from `bb_template`, which holds the PorticoEstate schema and sample data), and its own slot,
//! publication and topic names from [`unique_name`], so tests run in parallel without seeing each other.
//!
//! Where the stack lives comes from the environment that `scripts/stack env` prints; the defaults are the
//! stack's default ports, so `scripts/stack up && cargo test` works without exporting anything.

pub mod database;
pub mod desired;
mod kafka;
pub mod municipality;
pub mod oracle;
mod wait;

pub use database::TestDatabase;
pub use kafka::{committed_offsets, consume_all, kafka_bootstrap, read_to_end, GroupPosition, Record};
pub use wait::{wait_until, wait_until_every};

use std::sync::atomic::{AtomicU32, Ordering};

/// Connection settings of the local stack, from the environment with the stack's defaults.
#[derive(Debug, Clone)]
pub struct Stack {
    /// An administrator connection to the server (database `postgres`).
    pub database_url: String,
    /// Kafka bootstrap servers.
    pub kafka: String,
    /// Base URL of the Confluent-compatible schema registry.
    pub registry_url: String,
    /// Base URL of the Graph emulator.
    pub graph_url: String,
}

impl Stack {
    /// The stack as the environment describes it.
    pub fn from_env() -> Self {
        let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        Stack {
            database_url: var("ROOMSYNC_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:15432/postgres"),
            kafka: var("ROOMSYNC_TEST_KAFKA", "127.0.0.1:19092"),
            registry_url: var("ROOMSYNC_TEST_REGISTRY_URL", "http://127.0.0.1:18081"),
            graph_url: var("ROOMSYNC_TEST_GRAPH_URL", "http://127.0.0.1:18080"),
        }
    }
}

/// A name no other test in this run or an earlier one uses: lowercase ASCII, digits and `_`, so it is a valid
/// PostgreSQL identifier, slot name and Kafka topic name.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let salt: u32 = rand::random();
    format!("{prefix}_{}_{n}_{salt:08x}", std::process::id())
}
