//! Backfill requests: a row in roomsync_signals that the CDC reader acts on when it streams the row's INSERT
//! (see crates/cdc-reader/src/backfill.rs), and the outcome the reader writes back into it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

/// One backfill request and, once done, its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backfill {
    /// Signal id.
    pub id: i64,
    /// Tables to copy; empty = every captured table.
    pub tables: Vec<String>,
    /// Only the rows of these resources; empty = every row.
    pub resources: Vec<i32>,
    /// When it was asked for.
    pub requested_at: DateTime<Utc>,
    /// When the reader finished (or gave up).
    pub done_at: Option<DateTime<Utc>>,
    /// Rows copied into the topics.
    pub rows: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
}

impl Backfill {
    /// done, failed or waiting (for the CDC reader to stream the request).
    pub fn state(&self) -> &'static str {
        match (&self.done_at, &self.error) {
            (Some(_), None) => "done",
            (Some(_), Some(_)) => "failed",
            (None, _) => "waiting",
        }
    }
}

/// Why a backfill could not be requested.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// A table the reader does not capture.
    #[error("not captured, cannot backfill: {unknown}; captured tables: {captured}")]
    NotCaptured {
        /// The unknown names.
        unknown: String,
        /// What is captured.
        captured: String,
    },
    /// No bb_resource row with that id.
    #[error("resource {0} does not exist in bb_resource")]
    UnknownResource(i32),
    /// No request with that id.
    #[error("no backfill request with id {0}")]
    Unknown(i64),
    /// The database refused (is the 0007 migration applied? `roomsync migrate`).
    #[error("database: {0}")]
    Database(#[from] tokio_postgres::Error),
}

/// Records a backfill request of `tables` (each must be in `captured`; empty = all) limited to `resources`
/// (empty = all rows) in the signal table of `schema` (through the table's one writer,
/// `cdc_reader::backfill`); returns it.
pub async fn request(
    client: &Client,
    schema: &str,
    captured: &[String],
    tables: &[String],
    resources: &[i32],
) -> Result<Backfill, BackfillError> {
    let unknown: Vec<&str> = tables.iter().filter(|t| !captured.contains(t)).map(String::as_str).collect();
    if !unknown.is_empty() {
        return Err(BackfillError::NotCaptured { unknown: unknown.join(", "), captured: captured.join(", ") });
    }
    for resource in resources {
        if client.query_opt("select 1 from bb_resource where id = $1", &[resource]).await?.is_none() {
            return Err(BackfillError::UnknownResource(*resource));
        }
    }
    let id = cdc_reader::backfill::request(client, schema, tables, resources).await?;
    get(client, id).await
}

/// A request and its outcome so far.
pub async fn get(client: &Client, id: i64) -> Result<Backfill, BackfillError> {
    let row = client
        .query_opt(
            "select id, tables, resources, requested_at, done_at, rows, error from roomsync_signals
              where id = $1 and kind = 'backfill'",
            &[&id],
        )
        .await?
        .ok_or(BackfillError::Unknown(id))?;
    Ok(Backfill {
        id: row.get(0),
        tables: row.get(1),
        resources: row.get(2),
        requested_at: row.get(3),
        done_at: row.get(4),
        rows: row.get(5),
        error: row.get(6),
    })
}
