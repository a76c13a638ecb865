//! Streams bb_* changes from PostgreSQL logical replication into Kafka.
#![warn(missing_docs)]

pub mod config;
pub mod envelope;
pub mod error;
pub mod pgoutput;
pub mod progress;
pub mod relation;
