//! The sink's errors and the one place that decides what each means: transient (the sink starts again after a
//! backoff, `supervision`, and resumes from PostgreSQL's offsets) or definite (the sink stops and says why).
//!
//! Per-item Graph failures are not errors of the sink: a definite one parks the item (see `writer`), a transient
//! one keeps the item pending; only infrastructure failures reach this type.

use thiserror::Error;

use crate::config::CrashPoint;

/// Why the sink stopped.
#[derive(Debug, Error)]
pub enum SinkError {
    /// PostgreSQL refused or lost the connection.
    #[error("postgres: {context}: {source}")]
    Postgres {
        /// What was being done.
        context: &'static str,
        /// The driver's error.
        source: tokio_postgres::Error,
    },
    /// Kafka or the registry failed.
    #[error(transparent)]
    Stream(#[from] streams::StreamError),
    /// The Kafka consumer failed.
    #[error("kafka: {context}: {source}")]
    Kafka {
        /// What was being done.
        context: &'static str,
        /// librdkafka's error.
        source: rdkafka::error::KafkaError,
    },
    /// The Graph client could not be built.
    #[error(transparent)]
    Graph(#[from] graph_client::GraphError),
    /// Another member moved a partition's offsets while this unit ran: it changed nothing (see `fence`), and the
    /// sink starts again, joining its group anew.
    #[error(
        "fenced: the stored offset of {topic}[{partition}] moved away from {expected:?} while a unit ran; \
         nothing of the unit was committed"
    )]
    Fenced {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The offset the unit started from.
        expected: Option<i64>,
    },
    /// A task of the sink ended without finishing (the runtime is shutting down).
    #[error("a task of the sink was cancelled: {0}")]
    Cancelled(String),
    /// The crash hook asked for a crash here (tests).
    #[error("simulated crash at {0:?}")]
    Crashed(CrashPoint),
}

impl SinkError {
    pub(crate) fn pg(context: &'static str) -> impl Fn(tokio_postgres::Error) -> SinkError {
        move |source| SinkError::Postgres { context, source }
    }

    /// Whether trying again later may succeed (a broker, registry or database outage) rather than a bug or a
    /// configuration to fix.
    pub fn is_transient(&self) -> bool {
        match self {
            SinkError::Postgres { .. }
            | SinkError::Kafka { .. }
            | SinkError::Fenced { .. }
            | SinkError::Cancelled(_) => true,
            SinkError::Stream(err) => err.is_transient(),
            SinkError::Graph(err) => err.classify().is_retryable(),
            SinkError::Crashed(_) => false,
        }
    }
}

impl supervision::Transient for SinkError {
    fn is_transient(&self) -> bool {
        SinkError::is_transient(self)
    }
}
