//! The tenant's directory and mailbox contents.
//!
//! Invariant: a mailbox is found by id or by email, case-insensitively, and both lead to the same mailbox, so
//! throttling, logs and events are keyed by the mailbox id whatever form the client used.

use serde_json::{json, Value};

use crate::config::{RoomConfig, TenantConfig};
use crate::event::StoredEvent;
use crate::responses::ResponseRecord;

/// One mailbox (room or user) and its calendar.
#[derive(Debug, Clone)]
pub struct Mailbox {
    /// Object id (GUID).
    pub id: String,
    /// SMTP address / UPN.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Room settings, for room mailboxes.
    pub room: Option<RoomConfig>,
    /// Events in creation order.
    pub events: Vec<StoredEvent>,
    /// Meeting responses the owner sent (accept, tentativelyAccept, decline), oldest first.
    pub responses: Vec<ResponseRecord>,
}

impl Mailbox {
    /// `{"emailAddress":{"name","address"}}` of the owner.
    pub fn as_recipient(&self) -> Value {
        json!({"emailAddress": {"name": self.display_name, "address": self.email}})
    }

    /// Index of an event by id.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.events.iter().position(|e| e.id == id)
    }
}

/// All mailboxes.
#[derive(Debug, Clone, Default)]
pub struct Tenant {
    /// Rooms first, then users.
    pub mailboxes: Vec<Mailbox>,
}

impl Tenant {
    /// Builds the directory from config.
    pub fn from_config(config: &TenantConfig) -> Self {
        let rooms = config.rooms.iter().map(|r| Mailbox {
            id: r.id.clone(),
            email: r.email.clone(),
            display_name: r.display_name.clone(),
            room: Some(r.clone()),
            events: Vec::new(),
            responses: Vec::new(),
        });
        let users = config.users.iter().map(|u| Mailbox {
            id: u.id.clone(),
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            room: None,
            events: Vec::new(),
            responses: Vec::new(),
        });
        Self { mailboxes: rooms.chain(users).collect() }
    }

    /// Finds a mailbox by id or email.
    pub fn find(&self, key: &str) -> Option<&Mailbox> {
        self.mailboxes.iter().find(|m| m.id.eq_ignore_ascii_case(key) || m.email.eq_ignore_ascii_case(key))
    }

    /// Finds a mailbox by id or email, mutably.
    pub fn find_mut(&mut self, key: &str) -> Option<&mut Mailbox> {
        self.mailboxes.iter_mut().find(|m| m.id.eq_ignore_ascii_case(key) || m.email.eq_ignore_ascii_case(key))
    }
}
