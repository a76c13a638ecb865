//! The reader's errors, and the one place that decides what each kind means for the operator.
//!
//! Invariant: every error is either [`Disposition::Retry`] (the reader reconnects with backoff and resumes from
//! the slot's confirmed LSN, so nothing is lost) or [`Disposition::Stop`] (a person must act: the message says
//! what). Rows that cannot be encoded are not errors of the reader: they go to the dead-letter topic.

use thiserror::Error;

/// Everything that can stop or interrupt the reader.
#[derive(Debug, Error)]
pub enum CdcError {
    /// The configuration is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A normal (SQL) PostgreSQL connection or statement failed.
    #[error("postgres: {context}: {source}")]
    Postgres {
        /// What the reader was doing.
        context: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The replication connection failed.
    #[error("replication: {context}: {source}")]
    Replication {
        /// What the reader was doing.
        context: String,
        /// The replication client's error.
        #[source]
        source: pgwire_replication::PgWireError,
    },
    /// The slot is gone or was invalidated (WAL removed): changes were lost, a new snapshot is needed.
    #[error(
        "replication slot {slot} is unusable ({reason}); changes since its last confirmed position may be lost. \
         Recovery: drop the slot if it still exists (select pg_drop_replication_slot('{slot}')), clear the \
         snapshot marker (comment on publication <publication> is null) and restart roomsync: it creates a new \
         slot and takes a fresh consistent snapshot of every published table (consumers receive every row again \
         as op r)"
    )]
    SlotLost {
        /// The slot's name.
        slot: String,
        /// What PostgreSQL reported.
        reason: String,
    },
    /// The pgoutput stream contained bytes the decoder cannot read.
    #[error("pgoutput: {0}")]
    Decode(#[from] crate::pgoutput::DecodeError),
    /// The stream referred to a relation it never described.
    #[error("pgoutput: change for unknown relation oid {0}")]
    UnknownRelation(u32),
    /// Kafka failed in a way the producer could not retry itself.
    #[error("kafka: {context}: {source}")]
    Kafka {
        /// What the reader was doing.
        context: String,
        /// The client's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// Kafka reported a record as undeliverable (after librdkafka's own retries).
    #[error("kafka delivery failed: {0}")]
    Delivery(String),
    /// The record encoder (schema registry) is unreachable or refused a schema.
    #[error("encoder: {0}")]
    Encoder(String),
}

/// What to do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Reconnect with backoff and resume from the slot's confirmed position.
    Retry,
    /// Stop and tell the operator.
    Stop,
}

impl CdcError {
    /// Wraps a tokio-postgres error with context.
    pub fn pg(context: impl Into<String>, source: tokio_postgres::Error) -> Self {
        CdcError::Postgres { context: context.into(), source }
    }

    /// Wraps a replication-client error with context.
    pub fn repl(context: impl Into<String>, source: pgwire_replication::PgWireError) -> Self {
        CdcError::Replication { context: context.into(), source }
    }

    /// Wraps a Kafka error with context.
    pub fn kafka(context: impl Into<String>, source: rdkafka::error::KafkaError) -> Self {
        CdcError::Kafka { context: context.into(), source }
    }

    /// The one classifier: transient failures (network, server restarts, broker down) are retried; lost slots,
    /// bad configuration and undecodable streams stop the reader loudly.
    pub fn disposition(&self) -> Disposition {
        match self {
            CdcError::Config(_) | CdcError::SlotLost { .. } | CdcError::Decode(_) => Disposition::Stop,
            CdcError::UnknownRelation(_) => Disposition::Retry,
            CdcError::Postgres { source, .. } => match source.code() {
                // Authentication and permission problems do not heal by retrying.
                Some(code) if code.code().starts_with("28") || code.code() == "42501" => Disposition::Stop,
                _ => Disposition::Retry,
            },
            CdcError::Replication { source, .. } => {
                if source.is_auth() || source.is_tls() || source.is_message_too_large() {
                    Disposition::Stop
                } else {
                    Disposition::Retry
                }
            }
            CdcError::Kafka { .. } | CdcError::Delivery(_) | CdcError::Encoder(_) => Disposition::Retry,
        }
    }
}

/// Recognises PostgreSQL's messages for a slot that no longer exists or can no longer be used.
pub fn slot_lost_reason(message: &str) -> Option<&'static str> {
    if message.contains("does not exist") && message.contains("replication slot") {
        Some("the slot does not exist")
    } else if message.contains("can no longer get changes from replication slot")
        || message.contains("has been invalidated")
        || message.contains("this slot has been invalidated")
    {
        Some("the slot was invalidated because the WAL it needed was removed")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_slot_messages_are_recognised() {
        assert!(slot_lost_reason("ERROR: replication slot \"x\" does not exist").is_some());
        assert!(slot_lost_reason("can no longer get changes from replication slot \"x\"").is_some());
        assert!(slot_lost_reason("connection reset").is_none());
    }

    #[test]
    fn a_lost_slot_stops_the_reader() {
        let err = CdcError::SlotLost { slot: "s".into(), reason: "gone".into() };
        assert_eq!(err.disposition(), Disposition::Stop);
        assert!(err.to_string().contains("pg_drop_replication_slot('s')"));
    }
}
