//! The tenant's directory and mailbox contents.
//!
//! Invariant: a mailbox is found by id or by email, case-insensitively, and both lead to the same mailbox, so
//! throttling, logs and events are keyed by the mailbox id whatever form the client used.

use std::collections::HashMap;

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
    /// Rooms first, then users; fixed once built, so `index` stays true.
    mailboxes: Vec<Mailbox>,
    /// Position in `mailboxes` by lowercased id and email: every request looks its mailbox up under the tenant's
    /// one lock, and a scan of 450 mailboxes was 5 % of the emulator's CPU in a first load.
    index: HashMap<String, usize>,
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
        let mailboxes: Vec<Mailbox> = rooms.chain(users).collect();
        let mut index = HashMap::new();
        for (i, m) in mailboxes.iter().enumerate().rev() {
            index.insert(m.email.to_ascii_lowercase(), i);
            index.insert(m.id.to_ascii_lowercase(), i);
        }
        Self { mailboxes, index }
    }

    /// Every mailbox, rooms first.
    pub fn mailboxes(&self) -> &[Mailbox] {
        &self.mailboxes
    }

    /// Where the mailbox `key` (id or email, any case) is.
    fn position(&self, key: &str) -> Option<usize> {
        self.index.get(&key.to_ascii_lowercase()).copied()
    }

    /// Finds a mailbox by id or email.
    pub fn find(&self, key: &str) -> Option<&Mailbox> {
        self.mailboxes.get(self.position(key)?)
    }

    /// Finds a mailbox by id or email, mutably.
    pub fn find_mut(&mut self, key: &str) -> Option<&mut Mailbox> {
        let i = self.position(key)?;
        self.mailboxes.get_mut(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mailbox_is_found_by_id_or_email_in_any_case() {
        let mut config = TenantConfig::default();
        for n in 0..5 {
            let (id, email) = (format!("6f1c2d1e-0000-0000-0000-00000000000{n}"), format!("Room-{n}@Example.org"));
            config.users.push(crate::config::UserConfig { id, email, display_name: format!("Room {n}") });
        }
        let mut tenant = Tenant::from_config(&config);
        let configured: Vec<(String, String)> =
            tenant.mailboxes().iter().map(|m| (m.id.clone(), m.email.clone())).collect();
        assert!(!configured.is_empty());
        for (id, email) in &configured {
            assert_eq!(tenant.find(&email.to_ascii_uppercase()).map(|m| &m.id), Some(id));
            assert_eq!(tenant.find(&id.to_ascii_uppercase()).map(|m| &m.email), Some(email));
            assert_eq!(tenant.find_mut(&email.to_ascii_lowercase()).map(|m| &m.id), Some(id));
        }
        assert!(tenant.find("nobody@example.org").is_none());
    }
}
