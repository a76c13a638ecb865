//! Enrichment: delta hands out occurrence stubs and events without extended properties, so every changed item is
//! fetched again, with roomsync's properties expanded, in `$batch` calls of up to 20 GETs.
//!
//! Invariants: one answer per asked id, in the order asked; an item Graph no longer has (404) is reported as gone,
//! not as an error (it was deleted between the delta page and the GET); any other failure fails the whole
//! enrichment, so the round is retried instead of publishing an item without its tags.

use graph_client::properties::ROOMSYNC_PROPERTIES;
use graph_client::{expand_extended, BatchRequest, ErrorClass, Event, GraphClient, Method};

use crate::error::Error;

/// The fresh state of one item.
#[derive(Debug, Clone)]
pub enum Fetched {
    /// The item with its details and tags.
    Found(Box<Event>),
    /// Graph answered 404: the item no longer exists.
    Gone,
}

/// Percent-encodes one URL path segment or query value.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The relative URL of one GET with roomsync's properties expanded.
pub fn item_url(mailbox: &str, id: &str) -> String {
    format!(
        "/users/{}/events/{}?$expand={}",
        encode(mailbox),
        encode(id),
        encode(&expand_extended(&ROOMSYNC_PROPERTIES))
    )
}

/// Fetches `ids` of `mailbox`; answers in the order of `ids`.
pub async fn fetch(client: &GraphClient, mailbox: &str, ids: &[String]) -> Result<Vec<(String, Fetched)>, Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let requests: Vec<BatchRequest> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| BatchRequest::new(n.to_string(), Method::GET, item_url(mailbox, id)))
        .collect();
    let answers = client.batch(mailbox, requests).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_urls_escape_ids_and_ask_for_all_four_properties() {
        let url = item_url("room@example.org", "AAMk/x+y=");
        assert!(url.starts_with("/users/room%40example.org/events/AAMk%2Fx%2By%3D?$expand="), "{url}");
        assert_eq!(url.matches("id%20eq%20").count(), 4);
    }
}
