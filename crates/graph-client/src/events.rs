//! Event operations on one mailbox: create, get (with extended properties), update, delete, meeting responses
//! (accept, decline), find by tag, calendarView.
//!
//! Invariants: creates carry the caller's `transactionId`, so a retried POST (after a lost answer) does not
//! create a second event; deleting (or declining) an event that is already gone is success (`AlreadyGone`),
//! because the goal state "not there" holds.

use chrono::{DateTime, Utc};
use reqwest::Method;

use crate::error::{ErrorClass, GraphError};
use crate::model::Event;
use crate::paths::{self, GraphPath};
use crate::transport::Call;
use crate::GraphClient;

/// Outcome of a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Deleted now.
    Deleted,
    /// It did not exist (404): nothing to do.
    AlreadyGone,
}

/// Outcome of a meeting response (accept, decline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseOutcome {
    /// Graph took the response (202).
    Sent,
    /// The event did not exist (404): for a decline the goal "not in the calendar" holds already.
    AlreadyGone,
}

fn serialize(event: &Event) -> Result<serde_json::Value, GraphError> {
    serde_json::to_value(event).map_err(|e| GraphError::InvalidRequest(e.to_string()))
}

impl GraphClient {
    fn url(&self, path: &GraphPath) -> String {
        self.transport.url(path)
    }

    fn event_url(&self, mailbox: &str, id: &str) -> String {
        self.url(&paths::event(mailbox, id))
    }

    /// POST /users/{mailbox}/events. Set `event.transaction_id` for exactly-once creates.
    pub async fn create_event(&self, mailbox: &str, event: &Event) -> Result<Event, GraphError> {
        let call = Call::new(Method::POST, self.url(&paths::events(mailbox)), Some(mailbox)).json(serialize(event)?);
        self.transport.send(&call).await?.json()
    }

    /// GET one event, with the listed extended properties expanded.
    pub async fn get_event(&self, mailbox: &str, id: &str, extended: &[&str]) -> Result<Event, GraphError> {
        let mut path = paths::event(mailbox, id);
        if !extended.is_empty() {
            path = path.expand_properties(extended);
        }
        self.transport.send(&Call::new(Method::GET, self.url(&path), Some(mailbox))).await?.json()
    }

    /// PATCH an event; with `if_match` (an etag) a concurrent change answers [`ErrorClass::Conflict`].
    pub async fn update_event(
        &self,
        mailbox: &str,
        id: &str,
        patch: &Event,
        if_match: Option<&str>,
    ) -> Result<Event, GraphError> {
        let mut call = Call::new(Method::PATCH, self.event_url(mailbox, id), Some(mailbox)).json(serialize(patch)?);
        call.if_match = if_match.map(str::to_string);
        self.transport.send(&call).await?.json()
    }

    /// DELETE an event; 404 is `AlreadyGone`.
    pub async fn delete_event(&self, mailbox: &str, id: &str) -> Result<DeleteOutcome, GraphError> {
        let call = Call::new(Method::DELETE, self.event_url(mailbox, id), Some(mailbox));
        match self.transport.send(&call).await {
            Ok(_) => Ok(DeleteOutcome::Deleted),
            Err(e) if e.classify() == ErrorClass::NotFound => Ok(DeleteOutcome::AlreadyGone),
            Err(e) => Err(e),
        }
    }

    /// POST .../events/{id}/accept: the mailbox owner accepts the meeting; `send_response` tells Graph whether to
    /// send the organizer a reply carrying `comment`. 404 is `AlreadyGone`.
    pub async fn accept_event(
        &self,
        mailbox: &str,
        id: &str,
        comment: Option<&str>,
        send_response: bool,
    ) -> Result<ResponseOutcome, GraphError> {
        self.respond(mailbox, paths::accept(mailbox, id), comment, send_response).await
    }

    /// POST .../events/{id}/decline: the mailbox owner declines the meeting, which removes it from the mailbox's
    /// calendar; with `send_response` the organizer gets a reply carrying `comment`. 404 is `AlreadyGone`.
    pub async fn decline_event(
        &self,
        mailbox: &str,
        id: &str,
        comment: Option<&str>,
        send_response: bool,
    ) -> Result<ResponseOutcome, GraphError> {
        self.respond(mailbox, paths::decline(mailbox, id), comment, send_response).await
    }

    async fn respond(
        &self,
        mailbox: &str,
        path: GraphPath,
        comment: Option<&str>,
        send_response: bool,
    ) -> Result<ResponseOutcome, GraphError> {
        let mut body = serde_json::json!({ "sendResponse": send_response });
        if let (Some(text), Some(object)) = (comment, body.as_object_mut()) {
            object.insert("comment".into(), serde_json::Value::String(text.to_owned()));
        }
        let mut call = Call::new(Method::POST, self.url(&path), Some(mailbox)).json(body);
        // Answering a meeting twice answers it the same (or meets 404 once it is declined).
        call.idempotent = true;
        match self.transport.send(&call).await {
            Ok(_) => Ok(ResponseOutcome::Sent),
            // An unknown mailbox is a configuration error, not an event that is gone: it stays an error.
            Err(e) if e.classify() == ErrorClass::NotFound && e.code() != Some("ErrorInvalidUser") => {
                Ok(ResponseOutcome::AlreadyGone)
            }
            Err(e) => Err(e),
        }
    }

    /// Events (single instances and series masters) whose extended property `id` equals `value`.
    pub async fn find_events_by_property(
        &self,
        mailbox: &str,
        id: &str,
        value: &str,
    ) -> Result<Vec<Event>, GraphError> {
        let url = self.url(&paths::events(mailbox).filter_property(id, value));
        self.collect_pages(Call::new(Method::GET, url, Some(mailbox))).await
    }

    /// calendarView: occurrences, exceptions and single instances overlapping `[start, end)`, in UTC.
    pub async fn calendar_view(
        &self,
        mailbox: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<Event>, GraphError> {
        let url = self.url(&paths::calendar_view(mailbox, start, end));
        self.collect_pages(Call::new(Method::GET, url, Some(mailbox))).await
    }

    /// Occurrences and exceptions of the series `master_id` overlapping `[start, end)`, in UTC.
    pub async fn instances(
        &self,
        mailbox: &str,
        master_id: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<Event>, GraphError> {
        let url = self.url(&paths::instances(mailbox, master_id, start, end));
        self.collect_pages(Call::new(Method::GET, url, Some(mailbox))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_url_names_the_mailbox_as_every_stage_does() {
        let config = crate::ClientConfig::new("t", "c", crate::Secret::new("s"))
            .with_base_urls("http://login.test", "https://graph.test/v1.0");
        let client = GraphClient::new(config).expect("client");
        let url = client.event_url("room a+b/c@example.org", "AAMk/x+y=");
        let expected = "https://graph.test/v1.0/users/room%20a%2Bb%2Fc@example.org/events/AAMk%2Fx%2By%3D";
        assert_eq!(url, expected, "\n  sent: {url}\n  want: {expected}");
    }
}
