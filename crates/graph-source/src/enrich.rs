//! Enrichment: delta hands out occurrence stubs and events without extended properties, so every changed item is
//! fetched again, with roomsync's properties expanded, in `$batch` calls of up to 20 GETs.
//!
//! Invariants: one answer per asked id, in the order asked; an item Graph no longer has (404) is reported as gone,
//! not as an error (it was deleted between the delta page and the GET); any other failure fails the whole
//! enrichment, so the round is retried instead of publishing an item without its tags.

use graph_client::{BatchRequest, ErrorClass, Event, GraphClient};

use crate::error::Error;

/// The fresh state of one item.
#[derive(Debug, Clone)]
pub enum Fetched {
    /// The item with its details and tags.
    Found(Box<Event>),
    /// Graph answered 404: the item no longer exists.
    Gone,
}

/// Fetches `ids` of `mailbox`; answers in the order of `ids`.
pub async fn fetch(client: &GraphClient, mailbox: &str, ids: &[String]) -> Result<Vec<(String, Fetched)>, Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let answers = client.batch(mailbox, BatchRequest::tagged_gets(mailbox, ids)).await?;
    let mut out = Vec::with_capacity(ids.len());
    for (id, answer) in ids.iter().zip(answers) {
        match answer.error() {
            None => out.push((id.clone(), Fetched::Found(Box::new(answer.json::<Event>()?)))),
            Some(err) if err.classify() == ErrorClass::NotFound => out.push((id.clone(), Fetched::Gone)),
            Some(err) => return Err(err.into()),
        }
    }
    Ok(out)
}
