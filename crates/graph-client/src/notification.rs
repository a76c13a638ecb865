//! Webhook payloads Graph POSTs to us: change notifications and lifecycle events, and the clientState check.
//!
//! Invariants: parsing never panics on whatever arrives at the public webhook URL; a notification is trusted only
//! when its clientState matches ours (compared in constant time, so the secret cannot be guessed byte by byte);
//! notifications are a signal to run delta, never the truth about an event.

use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::error::GraphError;

/// `resourceData` of a change notification.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ResourceData {
    /// Event id.
    #[serde(default)]
    pub id: Option<String>,
    /// `W/"<changeKey>"` at the time of the change (absent for deletions).
    #[serde(rename = "@odata.etag", default)]
    pub etag: Option<String>,
}

/// One change notification (`created`, `updated`, `deleted`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeNotification {
    /// Subscription it belongs to.
    pub subscription_id: String,
    /// Echo of our secret.
    #[serde(default)]
    pub client_state: Option<String>,
    /// `created`, `updated` or `deleted`.
    #[serde(default)]
    pub change_type: String,
    /// `Users/{guid}/Events/{id}` (PascalCase).
    #[serde(default)]
    pub resource: String,
    /// Tenant.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// The event's id and etag.
    #[serde(default)]
    pub resource_data: Option<ResourceData>,
}

impl ChangeNotification {
    /// The mailbox GUID from `Users/{guid}/Events/{id}` (either case).
    pub fn mailbox(&self) -> Option<&str> {
        let mut parts = self.resource.trim_start_matches('/').split('/');
        match (parts.next(), parts.next()) {
            (Some(users), Some(id)) if users.eq_ignore_ascii_case("users") && !id.is_empty() => Some(id),
            _ => None,
        }
    }
}

/// One lifecycle notification.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleNotification {
    /// Subscription it belongs to.
    pub subscription_id: String,
    /// Echo of our secret.
    #[serde(default)]
    pub client_state: Option<String>,
    /// `reauthorizationRequired`, `subscriptionRemoved`, `missed`.
    pub lifecycle_event: String,
}

#[derive(Deserialize)]
struct Envelope<T> {
    value: Vec<T>,
}

/// Parses a change-notification POST body.
pub fn parse_change_notifications(body: &[u8]) -> Result<Vec<ChangeNotification>, GraphError> {
    serde_json::from_slice::<Envelope<ChangeNotification>>(body)
        .map(|e| e.value)
        .map_err(|e| GraphError::Decode(format!("change notification: {e}")))
}

/// Parses a lifecycle-notification POST body.
pub fn parse_lifecycle_notifications(body: &[u8]) -> Result<Vec<LifecycleNotification>, GraphError> {
    serde_json::from_slice::<Envelope<LifecycleNotification>>(body)
        .map(|e| e.value)
        .map_err(|e| GraphError::Decode(format!("lifecycle notification: {e}")))
}

/// Whether a received clientState equals ours (constant time).
pub fn client_state_matches(received: Option<&str>, expected: &str) -> bool {
    received.is_some_and(|r| bool::from(r.as_bytes().ct_eq(expected.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_graph_change_notification_parses_and_yields_its_mailbox() {
        let body = br##"{"value":[{"subscriptionId":"s","subscriptionExpirationDateTime":"2030-01-01T00:00:00Z",
            "clientState":"secret","changeType":"updated","resource":"Users/6f1c/Events/AAMk",
            "tenantId":"t","resourceData":{"@odata.type":"#Microsoft.Graph.Event","@odata.id":"Users/6f1c/Events/AAMk",
            "@odata.etag":"W/\"k\"","id":"AAMk"}}]}"##;
        let notes = parse_change_notifications(body).expect("valid");
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].mailbox(), Some("6f1c"));
        assert_eq!(notes[0].resource_data.as_ref().and_then(|d| d.id.as_deref()), Some("AAMk"));
        assert!(client_state_matches(notes[0].client_state.as_deref(), "secret"));
        assert!(!client_state_matches(notes[0].client_state.as_deref(), "secreT"));
        assert!(!client_state_matches(None, "secret"));
    }

    #[test]
    fn garbage_webhook_bodies_are_errors_not_panics() {
        for junk in [&b""[..], b"{", b"[]", b"{\"value\":5}", b"\xff\xfe", b"{\"value\":[{}]}"] {
            assert!(parse_change_notifications(junk).is_err());
            assert!(parse_lifecycle_notifications(junk).is_err());
        }
        let lifecycle = br#"{"value":[{"subscriptionId":"s","lifecycleEvent":"missed"}]}"#;
        assert_eq!(parse_lifecycle_notifications(lifecycle).expect("valid")[0].lifecycle_event, "missed");
    }
}
