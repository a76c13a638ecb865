//! The last desired state emitted per (room, item): what makes the output idempotent.
//!
//! Invariants: an item is emitted only when its hash differs from the last one emitted for its key, so
//! duplicate or replayed inputs produce no output; an item the room must no longer hold gets one delete
//! record, except when it left the window at its past end (then it is forgotten: Outlook keeps history).
//! At start the ledger is loaded from the compacted desired topic itself, so a restart emits only real
//! changes. Memory is bounded by the window ([`Ledger::forget_past`]) and [`EARLIER_KEPT`].
//!
//! Items are kept per room, so a room's evaluation costs its own items, not every room's.

use std::collections::{BTreeMap, HashMap, VecDeque};

use vocabulary::records::{DesiredContent, DesiredItem, UpsertOrDelete};

use crate::stage2::desired::delete_of;
use crate::stage2::window::Window;

/// Superseded contents kept per item: enough to recognise the Graph source's late view of roomsync's own
/// earlier writes of an item that changed several times in a few seconds.
pub const EARLIER_KEPT: usize = 4;

/// Last emitted upsert per room and item key, and the contents emitted before it.
#[derive(Debug, Default)]
pub struct Ledger {
    rooms: BTreeMap<String, HashMap<String, DesiredItem>>,
    /// (mailbox, item key) -> (content hash, content) of earlier upserts, oldest first.
    earlier: HashMap<(String, String), VecDeque<(String, DesiredContent)>>,
}

impl Ledger {
    /// Records an emitted (or, at start, read back) desired item.
    pub fn record(&mut self, item: &DesiredItem) {
        let room = self.rooms.entry(item.mailbox.clone()).or_default();
        let key = (item.mailbox.clone(), item.item_key.clone());
        match item.op {
            UpsertOrDelete::Upsert => {
                let previous = room.insert(item.item_key.clone(), item.clone());
                let superseded = previous.filter(|p| p.content_hash != item.content_hash);
                if let Some(DesiredItem { content_hash, content: Some(content), .. }) = superseded {
                    let earlier = self.earlier.entry(key).or_default();
                    earlier.push_back((content_hash, content));
                    if earlier.len() > EARLIER_KEPT {
                        earlier.pop_front();
                    }
                }
            }
            UpsertOrDelete::Delete => {
                room.remove(&item.item_key);
                if room.is_empty() {
                    self.rooms.remove(&item.mailbox);
                }
                self.earlier.remove(&key);
            }
        }
    }

    /// The last upsert emitted for an item.
    pub fn get(&self, mailbox: &str, item_key: &str) -> Option<&DesiredItem> {
        self.rooms.get(mailbox).and_then(|room| room.get(item_key))
    }

    /// The content of an earlier upsert of the item with `content_hash`, if it is among the last
    /// [`EARLIER_KEPT`] superseded ones.
    pub fn earlier(&self, mailbox: &str, item_key: &str, content_hash: &str) -> Option<&DesiredContent> {
        let earlier = self.earlier.get(&(mailbox.to_owned(), item_key.to_owned()))?;
        earlier.iter().rev().find(|(hash, _)| hash == content_hash).map(|(_, content)| content)
    }

    /// Whether `mailbox` has items.
    pub fn holds(&self, mailbox: &str) -> bool {
        self.rooms.contains_key(mailbox)
    }

    /// Every mailbox that has items.
    pub fn mailboxes(&self) -> Vec<String> {
        self.rooms.keys().cloned().collect()
    }

    /// The records to emit to bring `mailbox` from its last emitted state to `desired`.
    pub fn diff(&self, mailbox: &str, desired: &BTreeMap<String, DesiredItem>, window: Window) -> Vec<DesiredItem> {
        let mut out: Vec<DesiredItem> = desired
            .values()
            .filter(|item| self.get(mailbox, &item.item_key).is_none_or(|last| last.content_hash != item.content_hash))
            .cloned()
            .collect();
        let mut gone: Vec<&DesiredItem> = self
            .rooms
            .get(mailbox)
            .into_iter()
            .flat_map(HashMap::values)
            .filter(|last| !desired.contains_key(&last.item_key))
            .filter(|last| last.content.as_ref().is_none_or(|c| !window.is_past(c.end)))
            .collect();
        gone.sort_by(|a, b| a.item_key.cmp(&b.item_key));
        out.extend(gone.into_iter().map(delete_of));
        out
    }

    /// Forgets items that ended before the window (they leave without a delete).
    pub fn forget_past(&mut self, window: Window) {
        for room in self.rooms.values_mut() {
            room.retain(|_, item| item.content.as_ref().is_none_or(|c| !window.is_past(c.end)));
        }
        self.rooms.retain(|_, room| !room.is_empty());
        let rooms = &self.rooms;
        self.earlier.retain(|(mailbox, item_key), _| rooms.get(mailbox).is_some_and(|r| r.contains_key(item_key)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(mailbox: &str, key: &str, subject: &str) -> DesiredItem {
        let content = DesiredContent {
            subject: subject.to_owned(),
            body: None,
            start: 10,
            end: 20,
            time_zone: "Europe/Oslo".into(),
            is_all_day: false,
            show_as: "busy".into(),
            sensitivity: "normal".into(),
            location: None,
            categories: Vec::new(),
        };
        DesiredItem {
            op: UpsertOrDelete::Upsert,
            mailbox: mailbox.to_owned(),
            resource_id: 1,
            item_key: key.to_owned(),
            kind: vocabulary::ReservationKind::Event,
            reservation_id: 1,
            priority: 3,
            content_hash: crate::stage2::hash::content_hash(&content),
            content: Some(content),
            commit_lsn: 1,
            source_committed_at: None,
            rewrite: false,
        }
    }

    #[test]
    fn superseded_contents_are_remembered_newest_first_and_bounded() {
        let mut ledger = Ledger::default();
        let versions: Vec<DesiredItem> = (0..6).map(|n| item("a@x", "event:1", &format!("v{n}"))).collect();
        for version in &versions {
            ledger.record(version);
        }
        let last = versions.last().expect("six versions");
        assert_eq!(ledger.get("a@x", "event:1").map(|i| &i.content_hash), Some(&last.content_hash));
        assert!(ledger.earlier("a@x", "event:1", &last.content_hash).is_none(), "the current one is not earlier");
        for version in &versions[1..5] {
            let found = ledger.earlier("a@x", "event:1", &version.content_hash).map(|c| c.subject.clone());
            assert_eq!(found, version.content.as_ref().map(|c| c.subject.clone()));
        }
        assert!(ledger.earlier("a@x", "event:1", &versions[0].content_hash).is_none(), "only the last 4 are kept");
        // The same content again supersedes nothing.
        ledger.record(last);
        assert!(ledger.earlier("a@x", "event:1", &versions[1].content_hash).is_some());
    }

    #[test]
    fn a_delete_forgets_the_item_and_its_history_and_rooms_stay_apart() {
        let mut ledger = Ledger::default();
        ledger.record(&item("a@x", "event:1", "v1"));
        let v2 = item("a@x", "event:1", "v2");
        ledger.record(&v2);
        ledger.record(&item("b@x", "event:1", "other room"));
        assert_eq!(ledger.mailboxes(), vec!["a@x".to_owned(), "b@x".to_owned()]);

        let gone = ledger.diff("a@x", &BTreeMap::new(), Window { start: 0, end: 100 });
        assert_eq!(gone.len(), 1, "only room a's item is gone from room a: {gone:?}");
        ledger.record(&gone[0]);
        assert!(ledger.get("a@x", "event:1").is_none());
        assert!(ledger.earlier("a@x", "event:1", &item("a@x", "event:1", "v1").content_hash).is_none());
        assert_eq!(ledger.mailboxes(), vec!["b@x".to_owned()]);
    }
}
