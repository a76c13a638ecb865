//! The resolver's errors, split by what to do about them: transient ones (broker, registry or database
//! outages) are retried with backoff, definite ones (a record that cannot be understood) are parked in the
//! dead-letter topic with the reason while the stage goes on.

use thiserror::Error;

/// What went wrong in the resolver.
#[derive(Debug, Error)]
pub enum ResolverError {
    /// Kafka, the registry or the encoding of a record failed.
    #[error(transparent)]
    Stream(#[from] streams::StreamError),
    /// The schema registry codec failed.
    #[error(transparent)]
    Codec(#[from] schema_registry::CodecError),
    /// A record of our own type does not fit its schema.
    #[error(transparent)]
    Record(#[from] vocabulary::records::RecordError),
    /// An input record that cannot be understood (definite: dead-lettered).
    #[error("bad input record: {0}")]
    BadRecord(String),
    /// The conflicts table could not be written.
    #[error("postgres: {context}: {source}")]
    Postgres {
        /// What was being done.
        context: String,
        /// The driver's error.
        source: tokio_postgres::Error,
    },
    /// The configuration cannot work.
    #[error("configuration: {0}")]
    Config(String),
}

/// What the stage does about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Retry later (outage).
    Retry,
    /// Park the input in the dead-letter topic and go on.
    DeadLetter,
    /// Stop the stage: an operator must fix something.
    Stop,
}

impl ResolverError {
    /// The one place that decides what an error means for the stage.
    pub fn disposition(&self) -> Disposition {
        match self {
            ResolverError::Stream(err) if err.is_transient() => Disposition::Retry,
            ResolverError::Codec(err) if err.is_transient() => Disposition::Retry,
            ResolverError::Postgres { .. } => Disposition::Retry,
            ResolverError::Stream(_) | ResolverError::Codec(_) | ResolverError::Record(_) => Disposition::DeadLetter,
            ResolverError::BadRecord(_) => Disposition::DeadLetter,
            ResolverError::Config(_) => Disposition::Stop,
        }
    }

    /// A machine-readable class for dead letters and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ResolverError::Stream(_) => "stream",
            ResolverError::Codec(_) => "codec",
            ResolverError::Record(_) => "record",
            ResolverError::BadRecord(_) => "bad_record",
            ResolverError::Postgres { .. } => "postgres",
            ResolverError::Config(_) => "config",
        }
    }
}

impl supervision::Transient for ResolverError {
    fn is_transient(&self) -> bool {
        self.disposition() == Disposition::Retry
    }
}
