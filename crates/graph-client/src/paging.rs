//! Collection paging: follow `@odata.nextLink` verbatim until there is none.
//!
//! Invariant: the client never builds a paging URL itself; it only follows links Graph handed out (checked to be
//! on the Graph origin by the transport).

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::GraphError;
use crate::transport::Call;
use crate::GraphClient;

/// One page of a collection.
#[derive(Debug, Deserialize)]
pub struct Page<T> {
    /// Items of this page (may be empty).
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    /// Next page.
    #[serde(rename = "@odata.nextLink", default)]
    pub next_link: Option<String>,
    /// End of a delta round.
    #[serde(rename = "@odata.deltaLink", default)]
    pub delta_link: Option<String>,
}

/// Upper bound on pages followed in one listing, so a server that loops links cannot spin us forever.
pub const MAX_PAGES: usize = 100_000;

impl GraphClient {
    /// GETs `first` and every following page, returning all items.
    pub(crate) async fn collect_pages<T: DeserializeOwned>(&self, first: Call) -> Result<Vec<T>, GraphError> {
        let mut items = Vec::new();
        let mut call = first;
        for _ in 0..MAX_PAGES {
            let page: Page<T> = self.transport.send(&call).await?.json()?;
            items.extend(page.value);
            match page.next_link {
                Some(link) => call.url = link,
                None => return Ok(items),
            }
        }
        Err(GraphError::Decode("too many pages".into()))
    }
}
