//! The last desired state emitted per (room, item): what makes the output idempotent.
//!
//! Invariants: an item is emitted only when its hash differs from the last one emitted for its key, so
//! duplicate or replayed inputs produce no output; an item the room must no longer hold gets one delete
//! record, except when it left the window at its past end (then it is forgotten: Outlook keeps history).
//! At start the ledger is loaded from the compacted desired topic itself, so a restart emits only real
//! changes. Memory is bounded by the window ([`Ledger::forget_past`]).

use std::collections::{BTreeMap, HashMap};

use vocabulary::keys::room_item_key;
use vocabulary::records::{DesiredItem, UpsertOrDelete};

use crate::desired::delete_of;
use crate::window::Window;

/// Last emitted upsert per room item key.
#[derive(Debug, Default)]
pub struct Ledger {
    items: HashMap<String, DesiredItem>,
}

impl Ledger {
    /// Records an emitted (or, at start, read back) desired item.
    pub fn record(&mut self, item: &DesiredItem) {
        let key = room_item_key(&item.mailbox, &item.item_key);
        match item.op {
            UpsertOrDelete::Upsert => {
                self.items.insert(key, item.clone());
            }
            UpsertOrDelete::Delete => {
                self.items.remove(&key);
            }
        }
    }

    /// The last upsert emitted for an item.
    pub fn get(&self, mailbox: &str, item_key: &str) -> Option<&DesiredItem> {
        self.items.get(&room_item_key(mailbox, item_key))
    }

    /// Forgets an item so that the next evaluation emits it again (reverting an Outlook edit).
    pub fn forget(&mut self, mailbox: &str, item_key: &str) {
        self.items.remove(&room_item_key(mailbox, item_key));
    }

    /// Every mailbox that has items.
    pub fn mailboxes(&self) -> Vec<String> {
        let mut out: Vec<String> = self.items.values().map(|i| i.mailbox.clone()).collect();
        out.sort();
        out.dedup();
        out
    }

    /// The records to emit to bring `mailbox` from its last emitted state to `desired`.
    pub fn diff(&self, mailbox: &str, desired: &BTreeMap<String, DesiredItem>, window: Window) -> Vec<DesiredItem> {
        let mut out: Vec<DesiredItem> = desired
            .values()
            .filter(|item| self.get(mailbox, &item.item_key).is_none_or(|last| last.content_hash != item.content_hash))
            .cloned()
            .collect();
        let mut gone: Vec<&DesiredItem> = self
            .items
            .values()
            .filter(|last| last.mailbox == mailbox && !desired.contains_key(&last.item_key))
            .filter(|last| last.content.as_ref().is_none_or(|c| !window.is_past(c.end)))
            .collect();
        gone.sort_by(|a, b| a.item_key.cmp(&b.item_key));
        out.extend(gone.into_iter().map(delete_of));
        out
    }

    /// Forgets items that ended before the window (they leave without a delete).
    pub fn forget_past(&mut self, window: Window) {
        self.items.retain(|_, item| item.content.as_ref().is_none_or(|c| !window.is_past(c.end)));
    }
}
