//! The stage's error type and the one place that decides whether an error is worth retrying.
//!
//! Invariant: a room task retries transient errors with backoff and keeps retrying definite ones too (slowly,
//! at the backoff ceiling), because a room whose mailbox is misconfigured today may be fixed tomorrow; neither
//! kind ever stops another room.

use graph_client::{ErrorClass, GraphError};
use streams::StreamError;

/// What can go wrong in the Graph source.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Graph answered with an error or could not be reached.
    #[error("graph: {0}")]
    Graph(#[from] GraphError),
    /// Kafka or the schema registry failed.
    #[error("kafka: {0}")]
    Kafka(#[from] StreamError),
    /// PostgreSQL failed.
    #[error("database: {0}")]
    Database(#[from] tokio_postgres::Error),
    /// The webhook listener could not be bound.
    #[error("webhook listener on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A setting is out of range.
    #[error("config: {0}")]
    Config(String),
    /// A required table is missing or has an unexpected shape.
    #[error("schema: {0}")]
    Schema(String),
    /// The database session holding the installation's Graph-source role ended while it was active.
    #[error("the graph source lost its role: its database session ended")]
    RoleLost,
}

impl Error {
    /// Whether retrying soon may succeed (outages, throttling), as opposed to errors that need an operator.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Graph(err) => matches!(
                err.classify(),
                ErrorClass::Transient { .. } | ErrorClass::Throttled { .. } | ErrorClass::SyncStateGone
            ),
            Error::Kafka(err) => err.is_transient(),
            Error::Database(_) | Error::RoleLost => true,
            // The instance that held the role on this host may still be letting the port go.
            Error::Listen { source, .. } => source.kind() == std::io::ErrorKind::AddrInUse,
            Error::Schema(_) | Error::Config(_) => false,
        }
    }

    /// A short machine-readable kind, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Graph(_) => "graph",
            Error::Kafka(_) => "kafka",
            Error::Database(_) => "database",
            Error::Listen { .. } => "listen",
            Error::Schema(_) => "schema",
            Error::Config(_) => "config",
            Error::RoleLost => "role_lost",
        }
    }
}

impl supervision::Transient for Error {
    fn is_transient(&self) -> bool {
        Error::is_transient(self)
    }
}
