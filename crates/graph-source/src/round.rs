//! One delta round of one room, from Graph to acknowledged Kafka records to stored progress.
//!
//! ```text
//! stored link (or window) --delta--> latest state per id --$batch GET--> records --Kafka ack--> link + known ids
//! ```
//! Invariants:
//! - the delta link and the known ids are stored only after Kafka acknowledged every record of the round; a
//!   crash in between replays the round from the old link (duplicates, which consumers drop by changeKey),
//!   never a gap;
//! - an item counts as deleted in a full round only when that full round completed without it (delete records
//!   for known ids not seen); an incremental round deletes only what Graph reported `@removed` (or 404);
//! - an expired token (410) turns the round into a full one in place.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::try_join_all;
use graph_client::{DeltaRound, DeltaStart, ErrorClass, GraphClient};
use streams::RecordProducer;
use tracing::{debug, warn};
use vocabulary::keys::{room_item_key, room_partition};
use vocabulary::records::{GraphEvent, UpsertOrDelete};

use crate::enrich::{fetch, Fetched};
use crate::error::Error;
use crate::metrics;
use crate::normalize::{delete_record, upsert_record};
use crate::store::{RoundCommit, Store};

/// What a round needs, shared by every room task.
#[derive(Debug)]
pub struct RoundContext {
    /// Graph.
    pub graph: GraphClient,
    /// roomsync's tables.
    pub store: Store,
    /// The producer.
    pub producer: RecordProducer,
    /// `<prefix>.graph.events`.
    pub topic: String,
    /// Partitions of the topic.
    pub partitions: i32,
    /// Window before now.
    pub window_past: Duration,
    /// Window after now.
    pub horizon: Duration,
    /// Age of a window after which a full round starts over a fresh one.
    pub window_refresh: Duration,
    /// Page size for delta.
    pub page_size: Option<usize>,
}

/// What a round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundReport {
    /// Whether it was a full round.
    pub full: bool,
    /// Upsert records produced.
    pub upserts: usize,
    /// Delete records produced.
    pub deletes: usize,
}

fn span(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl RoundContext {
    fn window(&self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        (now - span(self.window_past), now + span(self.horizon))
    }

    /// Runs one round for `mailbox`; `force_full` asks for a full round (missed notifications, recreated
    /// subscription).
    pub async fn run(&self, mailbox: &str, force_full: bool) -> Result<RoundReport, Error> {
        let now = Utc::now();
        let state = self.store.delta_state(mailbox).await?;
        let (fresh_start, fresh_end) = self.window(now);
        let link = state.as_ref().and_then(|s| {
            let stale = s.window_start + span(self.window_refresh) < fresh_start;
            if stale {
                debug!(mailbox, "sync window moved on: starting a full round");
            }
            s.delta_link.clone().filter(|_| !force_full && !stale)
        });
        let (round, full, window) = match link {
            Some(link) => {
                let window = state.as_ref().map(|s| (s.window_start, s.window_end)).unwrap_or((fresh_start, fresh_end));
                match self.graph.delta_round(mailbox, DeltaStart::Link(link), self.page_size).await {
                    Ok(round) => (round, false, window),
                    Err(err) if err.classify() == ErrorClass::SyncStateGone => {
                        warn!(mailbox, "delta token expired: starting a full round");
                        ::metrics::counter!(metrics::TOKEN_EXPIRED, "mailbox" => mailbox.to_string()).increment(1);
                        (self.full_round(mailbox, fresh_start, fresh_end).await?, true, (fresh_start, fresh_end))
                    }
                    Err(err) => return Err(err.into()),
                }
            }
            None => (self.full_round(mailbox, fresh_start, fresh_end).await?, true, (fresh_start, fresh_end)),
        };
        self.publish(mailbox, &round, full, window).await
    }

    async fn full_round(&self, mailbox: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<DeltaRound, Error> {
        Ok(self.graph.delta_round(mailbox, DeltaStart::Initial { start, end }, self.page_size).await?)
    }

    async fn publish(
        &self,
        mailbox: &str,
        round: &DeltaRound,
        full: bool,
        window: (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<RoundReport, Error> {
        let observed = Utc::now();
        let latest = round.latest_per_id();
        let mut gone: Vec<String> = Vec::new();
        let mut changed: Vec<String> = Vec::new();
        for item in latest {
            let Some(id) = item.id.clone() else { continue };
            if item.is_removed() {
                gone.push(id);
            } else {
                changed.push(id);
            }
        }
        let mut records: Vec<GraphEvent> = Vec::new();
        let mut present: Vec<String> = Vec::new();
        for (id, fetched) in fetch(&self.graph, mailbox, &changed).await? {
            match fetched {
                Fetched::Found(event) => match upsert_record(mailbox, &id, &event, observed) {
                    Ok(record) => {
                        records.push(record);
                        present.push(id);
                    }
                    Err(err) => {
                        // Publishing invented times would be worse than leaving the item out; it stays known so
                        // a full round does not delete it.
                        warn!(mailbox, error = %err, "skipping an event graph sent in an unreadable form");
                        ::metrics::counter!(metrics::ITEMS_SKIPPED, "mailbox" => mailbox.to_string()).increment(1);
                        present.push(id);
                    }
                },
                Fetched::Gone => gone.push(id),
            }
        }
        if full {
            let seen: HashSet<&String> = present.iter().chain(gone.iter()).collect();
            let missing: Vec<String> =
                self.store.known_ids(mailbox).await?.into_iter().filter(|id| !seen.contains(id)).collect();
            gone.extend(missing);
        }
        gone.sort();
        gone.dedup();
        records.extend(gone.iter().map(|id| delete_record(mailbox, id, observed)));
        self.produce(mailbox, &records).await?;
        self.store
            .commit_round(&RoundCommit {
                mailbox,
                delta_link: &round.delta_link,
                window_start: window.0,
                window_end: window.1,
                full,
                present: &present,
                gone: &gone,
            })
            .await?;
        let upserts = records.len() - gone.len();
        Ok(RoundReport { full, upserts, deletes: gone.len() })
    }

    /// Sends every record and waits for all acknowledgements. Each key occurs once per round, so sending them
    /// concurrently cannot reorder two states of one item.
    async fn produce(&self, mailbox: &str, records: &[GraphEvent]) -> Result<(), Error> {
        let partition = Some(room_partition(mailbox, self.partitions));
        for chunk in records.chunks(256) {
            try_join_all(chunk.iter().map(|record| {
                let key = room_item_key(mailbox, &record.event_id);
                async move { self.producer.send(&self.topic, &key, partition, Some(record)).await }
            }))
            .await?;
        }
        let deletes = records.iter().filter(|r| r.op == UpsertOrDelete::Delete).count() as u64;
        let upserts = records.len() as u64 - deletes;
        ::metrics::counter!(metrics::RECORDS_PRODUCED, "mailbox" => mailbox.to_string(), "op" => "upsert")
            .increment(upserts);
        ::metrics::counter!(metrics::RECORDS_PRODUCED, "mailbox" => mailbox.to_string(), "op" => "delete")
            .increment(deletes);
        Ok(())
    }
}
