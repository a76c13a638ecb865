//! calendarView delta rounds.
//!
//! ```text
//! Initial{window} --GET--> page --nextLink--> page ... --> page with deltaLink => DeltaRound{items, delta_link}
//! Link(delta_link) --GET--> ... (only what changed, deletions as @removed)
//! ```
//! Invariants: a round is returned only when a deltaLink was reached (a partial round is never mistaken for a
//! complete one, so callers never infer deletions from it); links are followed verbatim; an expired token surfaces
//! as [`crate::ErrorClass::SyncStateGone`] so the caller restarts with a full round.

use chrono::{DateTime, Utc};
use reqwest::Method;

use crate::error::GraphError;
use crate::model::Event;
use crate::paging::{Page, MAX_PAGES};
use crate::paths;
use crate::transport::Call;
use crate::GraphClient;

/// Where a round starts.
#[derive(Debug, Clone)]
pub enum DeltaStart {
    /// A full round over a window.
    Initial {
        /// Window start.
        start: DateTime<Utc>,
        /// Window end.
        end: DateTime<Utc>,
    },
    /// The deltaLink stored from the previous round.
    Link(String),
}

/// A completed round.
#[derive(Debug, Clone)]
pub struct DeltaRound {
    /// Changed items (occurrences as stubs) and `@removed` markers, in arrival order (duplicates possible).
    pub items: Vec<Event>,
    /// Store this; the next round starts from it.
    pub delta_link: String,
    /// Pages fetched (useful for tests and metrics).
    pub pages: usize,
}

impl DeltaRound {
    /// The last report per id, in order of last appearance: Graph may report an item more than once in a round,
    /// and the last report is the newest state (including `@removed`).
    pub fn latest_per_id(&self) -> Vec<&Event> {
        let mut last = std::collections::HashMap::new();
        for (i, item) in self.items.iter().enumerate() {
            if let Some(id) = &item.id {
                last.insert(id.as_str(), i);
            }
        }
        self.items
            .iter()
            .enumerate()
            .filter(|(i, item)| item.id.as_deref().and_then(|id| last.get(id)) == Some(i))
            .map(|(_, item)| item)
            .collect()
    }
}

impl GraphClient {
    /// Runs one delta round for `mailbox`; `page_size` is sent as `Prefer: odata.maxpagesize`.
    pub async fn delta_round(
        &self,
        mailbox: &str,
        start: DeltaStart,
        page_size: Option<usize>,
    ) -> Result<DeltaRound, GraphError> {
        let url = match start {
            DeltaStart::Initial { start, end } => self.transport.url(&paths::calendar_view_delta(mailbox, start, end)),
            DeltaStart::Link(link) => link,
        };
        let mut call = Call::new(Method::GET, url, Some(mailbox));
        if let Some(n) = page_size {
            call.prefer.push(format!("odata.maxpagesize={n}"));
        }
        let mut items = Vec::new();
        for pages in 1..=MAX_PAGES {
            let page: Page<Event> = self.transport.send(&call).await?.json()?;
            items.extend(page.value);
            if let Some(delta_link) = page.delta_link {
                return Ok(DeltaRound { items, delta_link, pages });
            }
            call.url =
                page.next_link.ok_or_else(|| GraphError::Decode("delta page without nextLink or deltaLink".into()))?;
        }
        Err(GraphError::Decode("too many delta pages".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, subject: &str) -> Event {
        Event { id: Some(id.into()), subject: Some(subject.into()), ..Event::default() }
    }

    #[test]
    fn the_latest_report_of_each_item_wins() {
        let round = DeltaRound {
            items: vec![item("a", "1"), item("b", "1"), item("a", "2"), Event::default()],
            delta_link: String::new(),
            pages: 1,
        };
        let latest: Vec<(Option<&str>, Option<&str>)> =
            round.latest_per_id().iter().map(|e| (e.id.as_deref(), e.subject.as_deref())).collect();
        assert_eq!(latest, vec![(Some("b"), Some("1")), (Some("a"), Some("2"))]);
    }
}
