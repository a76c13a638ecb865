//! Rooms from the Places API.
//!
//! Invariant: all pages are read (Graph pages rooms by 100), following nextLink verbatim.

use reqwest::Method;

use crate::error::GraphError;
use crate::model::Room;
use crate::paths;
use crate::transport::Call;
use crate::GraphClient;

impl GraphClient {
    /// Every room in the tenant.
    pub async fn list_rooms(&self) -> Result<Vec<Room>, GraphError> {
        let url = self.transport.url(&paths::rooms());
        self.collect_pages(Call::new(Method::GET, url, None)).await
    }
}
