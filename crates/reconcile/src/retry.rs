//! Retrying parked items: an operator fixed what made the sink park them (a mailbox permission, a bad room
//! address, a Graph outage that outlasted the retries) and asks for another attempt.
//!
//! ```text
//! rows with sync_status parked|error (filtered by room / item key)
//!   --> their current desired upsert from the compacted topic (to the high watermarks)
//!   --> compare-and-set the row as read (content_hash := null) --> produce the same desired bytes again
//!   --> the sink sees a hash it has not written and writes the item (PATCH, or look up by tags and create)
//!   --> fence: a newer record of a retried key that our copy overtook is produced once more
//! ```
//! Invariants: the same exactly-once path as every write (mapping row, intents, transactionIds); a row the
//! sink changed since it was read is left alone; an item the booking system no longer wants is not retried
//! (its event, if any, is stale drift for reconciliation); a dry run changes nothing anywhere.

use graph_sink::mapping;
use std::collections::HashSet;
use std::fmt;

use schema_registry::{AvroCodec, RegistryClient};
use streams::RecordProducer;
use tracing::info;

use crate::desired::read_snapshot;
use crate::error::Error;
use crate::repair::{fence, Produced};
use crate::report::Outcome;
use crate::Config;

/// Which parked items to retry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryOptions {
    /// Room mailboxes; empty = every room.
    pub rooms: Vec<String>,
    /// Item keys (`booking:201`); empty = every parked item of the rooms.
    pub items: Vec<String>,
    /// Only list what would be retried.
    pub dry_run: bool,
}

/// One parked item and what the retry did with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Retried {
    /// Room mailbox.
    pub mailbox: String,
    /// Item key.
    pub item_key: String,
    /// `parked` or `error`.
    pub status: String,
    /// Why the sink parked it.
    pub error: Option<String>,
    /// What the retry did (`None` in a dry run).
    pub outcome: Option<Outcome>,
}

/// The result of a retry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetryReport {
    /// Nothing was changed.
    pub dry_run: bool,
    /// The parked items found, with their outcomes.
    pub items: Vec<Retried>,
    /// Newer desired records produced again after the retries (see the fence).
    pub superseded: usize,
}

impl RetryReport {
    /// Items whose desired record was produced again.
    pub fn retried(&self) -> usize {
        self.items.iter().filter(|i| matches!(i.outcome, Some(Outcome::Reproduced { .. }))).count()
    }
}

impl fmt::Display for RetryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let suffix = if self.dry_run { " (dry run: nothing changed)" } else { "" };
        writeln!(f, "{} parked items, {} retried{suffix}", self.items.len(), self.retried())?;
        for item in &self.items {
            let error = item.error.as_deref().unwrap_or("no error recorded");
            write!(f, "{:<7} {} {}: {error}", item.status, item.mailbox, item.item_key)?;
            match &item.outcome {
                Some(outcome) => writeln!(f, " -> {outcome}")?,
                None => writeln!(f)?,
            }
        }
        Ok(())
    }
}

/// A parked row as read.
struct ParkedRow {
    mailbox: String,
    item_key: String,
    status: String,
    error: Option<String>,
    content_hash: Option<String>,
}

/// Retries the parked items `options` selects.
pub async fn retry_parked(config: &Config, options: &RetryOptions) -> Result<RetryReport, Error> {
    let session = crate::session(config).await?;
    retry_with(config, options, &session.client).await
}

async fn parked_rows(db: &tokio_postgres::Client, options: &RetryOptions) -> Result<Vec<ParkedRow>, Error> {
    let rows = db
        .query(
            "select outlook_item_id, item_key, sync_status, error_message, content_hash
               from outlook_calendar_mapping
              where sync_status in ('parked', 'error') and intent = 'none'
                and (cardinality($1::text[]) = 0 or outlook_item_id = any($1))
                and (cardinality($2::text[]) = 0 or item_key = any($2))
              order by outlook_item_id, item_key",
            &[&options.rooms, &options.items],
        )
        .await
        .map_err(Error::pg("reading parked items"))?;
    Ok(rows
        .iter()
        .map(|r| ParkedRow {
            mailbox: r.get(0),
            item_key: r.get(1),
            status: r.get(2),
            error: r.get(3),
            content_hash: r.get(4),
        })
        .collect())
}

async fn retry_with(
    config: &Config,
    options: &RetryOptions,
    db: &tokio_postgres::Client,
) -> Result<RetryReport, Error> {
    let parked = parked_rows(db, options).await?;
    let mut report = RetryReport { dry_run: options.dry_run, ..RetryReport::default() };
    if parked.is_empty() {
        return Ok(report);
    }
    let topic = config.connections.topics.desired();
    let codec = AvroCodec::new(RegistryClient::new(&config.connections.registry_url));
    let rooms: HashSet<String> = parked.iter().map(|r| r.mailbox.clone()).collect();
    let snapshot = read_snapshot(&config.connections.kafka, &codec, &topic, &rooms).await?;
    let producer = if options.dry_run { None } else { Some(RecordProducer::new(&config.connections.kafka, codec)?) };
    let mut produced = Produced::default();
    for row in parked {
        let entry = snapshot.rooms.get(&row.mailbox).and_then(|room| room.get(&row.item_key));
        let outcome = match (&producer, entry) {
            (None, _) => None,
            (Some(_), None) => Some(Outcome::Skipped("the booking system no longer wants this item".into())),
            (Some(producer), Some(entry)) => {
                let changed = mapping::reset_parked(db, &row.mailbox, &row.item_key, row.content_hash.as_deref())
                    .await
                    .map_err(Error::pg("resetting a parked row"))?;
                if changed == 0 {
                    Some(Outcome::Skipped("the mapping row changed since it was read".into()))
                } else {
                    let raw = &entry.raw;
                    let (partition, offset) =
                        producer.send_bytes(&topic, &raw.key, Some(raw.partition), raw.value.as_deref()).await?;
                    produced.insert(raw.key.clone(), partition, offset);
                    Some(Outcome::Reproduced { partition, offset })
                }
            }
        };
        report.items.push(Retried {
            mailbox: row.mailbox,
            item_key: row.item_key,
            status: row.status,
            error: row.error,
            outcome,
        });
    }
    if let Some(producer) = &producer {
        report.superseded = fence(&config.connections.kafka, producer, &topic, &snapshot.high, produced).await?;
    }
    info!(parked = report.items.len(), retried = report.retried(), dry_run = options.dry_run, "parked items retried");
    Ok(report)
}
