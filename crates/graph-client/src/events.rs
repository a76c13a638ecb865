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
use crate::transport::{encode, Call};
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

/// `$expand` for extended properties by id.
pub fn expand_extended(ids: &[&str]) -> String {
    let clauses: Vec<String> = ids.iter().map(|id| format!("id eq '{}'", id.replace('\'', "''"))).collect();
    format!("singleValueExtendedProperties($filter={})", clauses.join(" or "))
}

/// `$filter` matching events whose extended property `id` equals `value`.
pub fn filter_extended(id: &str, value: &str) -> String {
    format!(
        "singleValueExtendedProperties/Any(ep: ep/id eq '{}' and ep/value eq '{}')",
        id.replace('\'', "''"),
        value.replace('\'', "''")
    )
}

fn serialize(event: &Event) -> Result<serde_json::Value, GraphError> {
    serde_json::to_value(event).map_err(|e| GraphError::InvalidRequest(e.to_string()))
}

impl GraphClient {
    fn events_url(&self, mailbox: &str) -> String {
        format!("{}/users/{}/events", self.transport.base(), encode(mailbox))
    }

    fn event_url(&self, mailbox: &str, id: &str) -> String {
        format!("{}/{}", self.events_url(mailbox), encode(id))
    }

    /// POST /users/{mailbox}/events. Set `event.transaction_id` for exactly-once creates.
    pub async fn create_event(&self, mailbox: &str, event: &Event) -> Result<Event, GraphError> {
        let call = Call::new(Method::POST, self.events_url(mailbox), Some(mailbox)).json(serialize(event)?);
        self.transport.send(&call).await?.json()
    }

    /// GET one event, with the listed extended properties expanded.
    pub async fn get_event(&self, mailbox: &str, id: &str, extended: &[&str]) -> Result<Event, GraphError> {
        let mut url = self.event_url(mailbox, id);
        if !extended.is_empty() {
            url = format!("{url}?$expand={}", encode(&expand_extended(extended)));
        }
        self.transport.send(&Call::new(Method::GET, url, Some(mailbox))).await?.json()
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
        self.respond(mailbox, id, "accept", comment, send_response).await
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
        self.respond(mailbox, id, "decline", comment, send_response).await
    }

    async fn respond(
        &self,
        mailbox: &str,
        id: &str,
        action: &str,
        comment: Option<&str>,
        send_response: bool,
    ) -> Result<ResponseOutcome, GraphError> {
        let mut body = serde_json::json!({ "sendResponse": send_response });
        if let (Some(text), Some(object)) = (comment, body.as_object_mut()) {
            object.insert("comment".into(), serde_json::Value::String(text.to_owned()));
        }
        let url = format!("{}/{action}", self.event_url(mailbox, id));
        let mut call = Call::new(Method::POST, url, Some(mailbox)).json(body);
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
        let url = format!("{}?$filter={}", self.events_url(mailbox), encode(&filter_extended(id, value)));
        self.collect_pages(Call::new(Method::GET, url, Some(mailbox))).await
    }

    /// calendarView: occurrences, exceptions and single instances overlapping `[start, end)`, in UTC.
    pub async fn calendar_view(
        &self,
        mailbox: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<Event>, GraphError> {
        let url = format!(
            "{}/users/{}/calendarView?startDateTime={}&endDateTime={}",
            self.transport.base(),
            encode(mailbox),
            encode(&start.to_rfc3339()),
            encode(&end.to_rfc3339()),
        );
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
        let url = format!(
            "{}/instances?startDateTime={}&endDateTime={}",
            self.event_url(mailbox, master_id),
            encode(&start.to_rfc3339()),
            encode(&end.to_rfc3339()),
        );
        self.collect_pages(Call::new(Method::GET, url, Some(mailbox))).await
    }
}
