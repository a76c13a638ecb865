//! The one Microsoft Graph client: token cache, throttling, batch, paging, delta, errors.
//!
//! ```text
//! GraphClient (cheap to clone, one per process)
//!   events / delta / batch / places / subscriptions   -- typed operations, on paths from `paths`
//!          |
//!   Transport: mailbox limiter (<= 4 in flight) -> token cache -> HTTP -> retry on 429/5xx honouring Retry-After
//! ```
//! Invariants: one token cache per client; every request sends `Prefer: IdType="ImmutableId"`; at most
//! `mailbox_concurrency` requests per mailbox are in flight; paging and delta follow the server's links verbatim;
//! callers decide on errors only through [`GraphError::classify`]; every Graph path (the client's own and the
//! `$batch` inner urls of the stages) comes from [`paths`], the one place that percent-encodes a mailbox. Tokens
//! and personal data are never logged above debug.

#![warn(missing_docs)]

mod batch;
mod config;
mod delta;
mod error;
mod events;
mod limiter;
pub mod metrics;
mod model;
mod notification;
mod paging;
pub mod paths;
mod places;
pub mod properties;
mod retry;
mod subscriptions;
mod token;
mod transport;

#[cfg(test)]
mod fuzz_tests;

use std::sync::Arc;

pub use batch::{BatchRequest, BatchResponse, MAX_BATCH};
pub use config::{ClientConfig, Secret};
pub use delta::{DeltaRound, DeltaStart};
pub use error::{ErrorClass, GraphError};
pub use events::{DeleteOutcome, ResponseOutcome};
pub use model::{
    Attendee, DateTimeTimeZone, EmailAddress, Event, EventType, ExtendedProperty, ItemBody, Location, Recipient,
    Removed, ResponseStatus, Room, Sensitivity, ShowAs, Subscription,
};
pub use notification::{
    client_state_matches, parse_change_notifications, parse_lifecycle_notifications, ChangeNotification,
    LifecycleNotification, ResourceData,
};
pub use paths::GraphPath;
pub use reqwest::Method;
pub use retry::{backoff, parse_retry_after};

/// A Graph client. Clones share the token cache and the mailbox limiter.
#[derive(Debug, Clone)]
pub struct GraphClient {
    transport: Arc<transport::Transport>,
}

impl GraphClient {
    /// Builds a client; fails only on an unusable config.
    pub fn new(config: ClientConfig) -> Result<Self, GraphError> {
        Ok(Self { transport: Arc::new(transport::Transport::new(config)?) })
    }
}
