//! Enrichment: delta hands out occurrence stubs and events without extended properties, so every changed item is
//! fetched again, with roomsync's properties expanded, in `$batch` calls of up to 20 GETs.
//!
//! Invariants: one answer per asked id, in the order asked; an item Graph no longer has (404) is reported as gone,
//! not as an error (it was deleted between the delta page and the GET); any other failure fails the whole
//! enrichment, so the round is retried instead of publishing an item without its tags.

use graph_client::properties::ROOMSYNC_PROPERTIES;
use graph_client::{paths, BatchRequest, ErrorClass, Event, GraphClient, Method};

use crate::error::Error;

/// The fresh state of one item.
#[derive(Debug, Clone)]
pub enum Fetched {
    /// The item with its details and tags.
    Found(Box<Event>),
    /// Graph answered 404: the item no longer exists.
    Gone,
}

/// One GET per id with roomsync's properties expanded, named by its position in `ids`.
fn tagged_gets(mailbox: &str, ids: &[String]) -> Vec<BatchRequest> {
    ids.iter()
        .enumerate()
        .map(|(n, id)| {
            let path = paths::event(mailbox, id).expand_properties(&ROOMSYNC_PROPERTIES);
            BatchRequest::new(n.to_string(), Method::GET, path)
        })
        .collect()
}

/// Fetches `ids` of `mailbox`; answers in the order of `ids`.
pub async fn fetch(client: &GraphClient, mailbox: &str, ids: &[String]) -> Result<Vec<(String, Fetched)>, Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let answers = client.batch(mailbox, tagged_gets(mailbox, ids)).await?;
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
    fn item_gets_escape_ids_and_ask_for_all_four_properties() {
        let gets = tagged_gets("room@example.org", &["AAMk/x+y=".to_owned(), "b".to_owned()]);
        let urls: Vec<&str> = gets.iter().map(|r| r.url.as_str()).collect();
        assert_eq!(gets.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["0", "1"]);
        let first = urls.first().copied().unwrap_or_default();
        assert!(first.starts_with("/users/room@example.org/events/AAMk%2Fx%2By%3D?$expand="), "{first}");
        assert_eq!(first.matches("id%20eq%20").count(), 4);
    }

    #[test]
    fn an_item_get_names_the_mailbox_as_every_stage_does() {
        let gets = tagged_gets("room a+b/c@example.org", &["AAMk/x+y=".to_owned()]);
        let url = gets.first().map(|r| r.url.as_str()).unwrap_or_default();
        let expected = "/users/room%20a%2Bb%2Fc@example.org/events/AAMk%2Fx%2By%3D?$expand=";
        assert!(url.starts_with(expected), "\n  sent: {url}\n  want: {expected}...");
    }
}
