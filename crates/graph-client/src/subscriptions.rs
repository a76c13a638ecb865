//! Change-notification subscriptions: create, renew, delete.
//!
//! Invariant: deleting a subscription that no longer exists is success, as with events.

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Method;
use serde_json::json;

use crate::error::{ErrorClass, GraphError};
use crate::model::Subscription;
use crate::paths;
use crate::transport::Call;
use crate::GraphClient;

impl GraphClient {
    /// POST /subscriptions (Graph validates the notification URL before answering).
    pub async fn create_subscription(&self, subscription: &Subscription) -> Result<Subscription, GraphError> {
        let body = serde_json::to_value(subscription).map_err(|e| GraphError::InvalidRequest(e.to_string()))?;
        let call = Call::new(Method::POST, self.transport.url(&paths::subscriptions()), None).json(body);
        self.transport.send(&call).await?.json()
    }

    /// PATCH /subscriptions/{id} with a new expiry.
    pub async fn renew_subscription(&self, id: &str, expires: DateTime<Utc>) -> Result<Subscription, GraphError> {
        let url = self.transport.url(&paths::subscription(id));
        let body = json!({"expirationDateTime": expires.to_rfc3339_opts(SecondsFormat::Secs, true)});
        self.transport.send(&Call::new(Method::PATCH, url, None).json(body)).await?.json()
    }

    /// POST /subscriptions/{id}/reauthorize, the answer to a `reauthorizationRequired` lifecycle event.
    pub async fn reauthorize_subscription(&self, id: &str) -> Result<(), GraphError> {
        let url = self.transport.url(&paths::reauthorize(id));
        let mut call = Call::new(Method::POST, url, None);
        call.idempotent = true;
        self.transport.send(&call).await?;
        Ok(())
    }

    /// DELETE /subscriptions/{id}; a missing subscription is fine.
    pub async fn delete_subscription(&self, id: &str) -> Result<(), GraphError> {
        let url = self.transport.url(&paths::subscription(id));
        match self.transport.send(&Call::new(Method::DELETE, url, None)).await {
            Ok(_) => Ok(()),
            Err(e) if e.classify() == ErrorClass::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}
