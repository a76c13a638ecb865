//! The reconciler's errors, and the one place that says which of them a later run may get past.
//!
//! Per-item Graph failures while repairing are not errors of the run: they are recorded in the report as a
//! failed repair, and the next run finds the same drift again. Only failures that make the comparison itself
//! untrustworthy (the desired state could not be read completely, a room could not be listed) end the run.

use thiserror::Error;

/// Why a reconciliation run failed.
#[derive(Debug, Error)]
pub enum Error {
    /// PostgreSQL refused or lost the connection.
    #[error("postgres: {context}: {source}")]
    Postgres {
        /// What was being done.
        context: &'static str,
        /// The driver's error.
        source: tokio_postgres::Error,
    },
    /// Producing, encoding or decoding a record failed.
    #[error(transparent)]
    Stream(#[from] streams::StreamError),
    /// The Kafka client failed while reading the desired state.
    #[error("kafka: {context}: {source}")]
    Kafka {
        /// What was being done.
        context: &'static str,
        /// librdkafka's error.
        source: rdkafka::error::KafkaError,
    },
    /// The desired topic could not be read up to its high watermarks in time.
    #[error("reading {topic} did not reach the high watermarks within {seconds} s")]
    ReadTimeout {
        /// The topic.
        topic: String,
        /// How long was waited without progress.
        seconds: u64,
    },
    /// A room's calendar could not be read (or the client could not be built).
    #[error("graph: {0}")]
    Graph(#[from] graph_client::GraphError),
    /// A blocking task ended abnormally.
    #[error("background task: {0}")]
    Task(String),
}

impl Error {
    pub(crate) fn pg(context: &'static str) -> impl Fn(tokio_postgres::Error) -> Error {
        move |source| Error::Postgres { context, source }
    }

    pub(crate) fn kafka(context: &'static str) -> impl Fn(rdkafka::error::KafkaError) -> Error {
        move |source| Error::Kafka { context, source }
    }

    /// Whether a later run may succeed (an outage of PostgreSQL, Kafka, the registry or Graph) rather than a
    /// configuration or a bug to fix.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Postgres { .. } | Error::Kafka { .. } | Error::ReadTimeout { .. } => true,
            Error::Stream(err) => err.is_transient(),
            Error::Graph(err) => err.classify().is_retryable(),
            Error::Task(_) => false,
        }
    }
}
