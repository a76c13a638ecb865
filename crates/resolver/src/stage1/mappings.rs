//! roomsync's calendar mapping table (outlook_calendar_mapping) as the resolver keeps it: the rows by id, and
//! two indexes maintained with every row change, so the per-transaction questions ("which mapping row is this
//! Outlook event?", "which bb_events of this room were imported from Outlook?") cost a lookup instead of a scan
//! of every row: the table grows by one row per synced item, and the scans dominated the resolver's time.
//!
//! Invariant: the indexes always describe exactly the rows in `rows` (every change goes through [`apply`]).
//!
//! [`apply`]: CalendarMappings::apply

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::kafka::cdc::{CdcRecord, Cell};
use crate::stage1::state::{apply_by_id, ById, Stored};
use crate::stage2::outlook::MappingRow;

/// The mapping rows and their indexes.
#[derive(Debug, Default)]
pub struct CalendarMappings {
    rows: ById,
    /// (mailbox, Outlook event id) -> row id -> what the resolver needs of the row (several rows for one event
    /// are possible in a damaged table: the highest id wins, deterministically).
    by_event: HashMap<(String, String), BTreeMap<i64, MappingRow>>,
    /// mailbox -> row id -> the bb_event id of an import (reservation_type `outlook`).
    imported: HashMap<String, BTreeMap<i64, i32>>,
    /// (mailbox, item key) -> row id -> the Outlook event id the row names (none before the create landed).
    by_item: HashMap<(String, String), BTreeMap<i64, Option<String>>>,
}

/// A checkpoint holds the rows only ([`crate::checkpoint`]); the indexes are built again when it is read.
impl serde::Serialize for CalendarMappings {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.rows.serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for CalendarMappings {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let rows = ById::deserialize(deserializer)?;
        let mut mappings = CalendarMappings::default();
        for (id, row) in &rows {
            mappings.index(*id, Indexed::of(row));
        }
        mappings.rows = rows;
        Ok(mappings)
    }
}

impl CalendarMappings {
    /// Applies one record of the table; says whether a row changed.
    pub fn apply(&mut self, record: &CdcRecord) -> bool {
        let id = record.key.get("id").and_then(Cell::int);
        if let Some(old) = id.and_then(|id| self.rows.get(&id).map(|row| (id, row))) {
            let (id, indexed) = (old.0, Indexed::of(old.1));
            self.unindex(id, indexed);
        }
        let changed = apply_by_id(&mut self.rows, record);
        if record.op == crate::kafka::cdc::Op::Truncate {
            // Only the rows written after the TRUNCATE stay: index them again.
            self.by_event.clear();
            self.imported.clear();
            self.by_item.clear();
            let rows: Vec<(i64, Indexed)> = self.rows.iter().map(|(id, row)| (*id, Indexed::of(row))).collect();
            for (id, row) in rows {
                self.index(id, row);
            }
            return changed;
        }
        if let Some(id) = id {
            if let Some(new) = self.rows.get(&id).map(Indexed::of) {
                self.index(id, new);
            }
        }
        changed
    }

    /// The mailbox of row `id`, if the row exists and names one.
    pub fn mailbox_of(&self, id: i64) -> Option<String> {
        self.rows.get(&id).and_then(|r| r.text("outlook_item_id")).map(str::to_owned)
    }

    /// The mapping row of an Outlook event.
    pub fn row(&self, mailbox: &str, event_id: &str) -> Option<&MappingRow> {
        // The key is owned; a lookup by borrowed parts would need a custom key type for one allocation.
        self.by_event.get(&(mailbox.to_owned(), event_id.to_owned())).and_then(|rows| rows.values().next_back())
    }

    /// The Outlook event the mapping row of an item names, if the item has a row (`Some(None)`: a row whose
    /// create has not landed yet).
    pub fn event_of_item(&self, mailbox: &str, item_key: &str) -> Option<Option<&str>> {
        let rows = self.by_item.get(&(mailbox.to_owned(), item_key.to_owned()))?;
        rows.values().next_back().map(Option::as_deref)
    }

    /// The bb_event ids imported from Outlook bookings in `mailbox`.
    pub fn imported_events(&self, mailbox: &str) -> HashSet<i32> {
        self.imported.get(mailbox).map(|rows| rows.values().copied().collect()).unwrap_or_default()
    }

    /// The Outlook event ids of the imports in `mailbox` that are not cancelled (`sync_status` other than
    /// `deleted`) and not over before `window_start` (µs UTC; an import whose end is unknown counts as live).
    pub fn live_imports(&self, mailbox: &str, window_start: i64) -> Vec<String> {
        let Some(ids) = self.imported.get(mailbox) else { return Vec::new() };
        ids.keys()
            .filter_map(|id| self.rows.get(id))
            .filter(|row| row.text("sync_status") != Some("deleted"))
            .filter(|row| row.instant("ends_at").is_none_or(|end| end > window_start))
            .filter_map(|row| row.text("outlook_event_id").map(str::to_owned))
            .collect()
    }

    /// Forgets the rows the resolver no longer needs: imports whose booking ended before `ended_before` (µs UTC;
    /// they are not live, and a deletion of one is ignored with or without its row) and rows of roomsync's items
    /// that `keep_item(mailbox, row)` does not keep. Rows naming no mailbox or reservation go too (nothing reads
    /// them). Returns how many rows went.
    pub fn forget(&mut self, ended_before: i64, keep_item: impl Fn(&str, &MappingRow) -> bool) -> usize {
        let gone: Vec<i64> = self
            .rows
            .iter()
            .filter(|(_, stored)| match Indexed::of(stored) {
                None => true,
                Some((_, _, row)) if row.reservation_type == "outlook" => {
                    row.ends_at.is_some_and(|end| end < ended_before)
                }
                Some((mailbox, _, row)) => !keep_item(&mailbox, &row),
            })
            .map(|(id, _)| *id)
            .collect();
        for id in &gone {
            if let Some(stored) = self.rows.remove(id) {
                self.unindex(*id, Indexed::of(&stored));
            }
        }
        gone.len()
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn index(&mut self, id: i64, indexed: Indexed) {
        let Some((mailbox, event_id, row)) = indexed else { return };
        self.by_item.entry((mailbox.clone(), row.item_key.clone())).or_default().insert(id, event_id.clone());
        if row.reservation_type == "outlook" {
            self.imported.entry(mailbox.clone()).or_default().insert(id, row.reservation_id);
        }
        if let Some(event_id) = event_id {
            self.by_event.entry((mailbox, event_id)).or_default().insert(id, row);
        }
    }

    fn unindex(&mut self, id: i64, indexed: Indexed) {
        let Some((mailbox, event_id, row)) = indexed else { return };
        let item = (mailbox.clone(), row.item_key.clone());
        if let Some(rows) = self.by_item.get_mut(&item) {
            rows.remove(&id);
            if rows.is_empty() {
                self.by_item.remove(&item);
            }
        }
        if row.reservation_type == "outlook" {
            if let Some(rows) = self.imported.get_mut(&mailbox) {
                rows.remove(&id);
                if rows.is_empty() {
                    self.imported.remove(&mailbox);
                }
            }
        }
        if let Some(event_id) = event_id {
            let key = (mailbox, event_id);
            if let Some(rows) = self.by_event.get_mut(&key) {
                rows.remove(&id);
                if rows.is_empty() {
                    self.by_event.remove(&key);
                }
            }
        }
    }
}

/// What the indexes hold of one row: (mailbox, event id if written, the row), or nothing for a row without a
/// mailbox or a valid reservation id.
type Indexed = Option<(String, Option<String>, MappingRow)>;

trait IndexedOf {
    fn of(stored: &Stored) -> Self;
}

impl IndexedOf for Indexed {
    fn of(stored: &Stored) -> Self {
        let mailbox = stored.text("outlook_item_id")?.to_owned();
        let reservation_id = stored.int("reservation_id").and_then(|v| i32::try_from(v).ok())?;
        let row = MappingRow {
            reservation_type: stored.text("reservation_type").unwrap_or_default().to_owned(),
            reservation_id,
            item_key: stored.text("item_key").unwrap_or_default().to_owned(),
            change_key: stored.text("change_key").map(str::to_owned),
            ends_at: stored.instant("ends_at"),
        };
        Some((mailbox, stored.text("outlook_event_id").map(str::to_owned), row))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{int, text, Tx};

    const TABLE: &str = "outlook_calendar_mapping";
    const HALL: &str = "hall-a@x";

    fn one(tx: Tx) -> CdcRecord {
        tx.done().remove(0)
    }

    fn row(id: i64, mailbox: &str, kind: &str, reservation: i64, event: Option<&str>) -> Vec<(&'static str, Cell)> {
        let mut cells = vec![
            ("id", int(id)),
            ("outlook_item_id", text(mailbox)),
            ("reservation_type", text(kind)),
            ("reservation_id", int(reservation)),
            ("item_key", text(&format!("{kind}:{reservation}"))),
        ];
        if let Some(event) = event {
            cells.push(("outlook_event_id", text(event)));
        }
        cells
    }

    #[test]
    fn a_row_is_found_by_its_event_and_moves_with_its_updates() {
        let mut mappings = CalendarMappings::default();
        assert!(mappings.apply(&one(Tx::new(10).insert(TABLE, &row(1, HALL, "event", 7, None)))));
        assert!(mappings.row(HALL, "e1").is_none(), "no event id yet (intent only)");
        assert_eq!(mappings.event_of_item(HALL, "event:7"), Some(None), "a row without an event yet");
        let mut written = row(1, HALL, "event", 7, Some("e1"));
        written.push(("change_key", text("c1")));
        assert!(mappings.apply(&one(Tx::new(11).update(TABLE, &written))));
        let found = mappings.row(HALL, "e1").expect("indexed by event");
        assert_eq!((found.reservation_id, found.change_key.as_deref()), (7, Some("c1")));

        assert!(mappings.apply(&one(Tx::new(12).update(TABLE, &row(1, HALL, "event", 7, Some("e2"))))));
        assert!(mappings.row(HALL, "e1").is_none(), "the old event id is no longer indexed");
        assert_eq!(mappings.event_of_item(HALL, "event:7"), Some(Some("e2")));
        assert_eq!(mappings.row(HALL, "e2").map(|r| r.reservation_id), Some(7));

        assert!(mappings.apply(&one(Tx::new(13).delete(TABLE, &[("id", int(1))]))));
        assert!(mappings.row(HALL, "e2").is_none());
        assert_eq!(mappings.event_of_item(HALL, "event:7"), None);
        assert!(mappings.is_empty());
    }

    #[test]
    fn imports_are_listed_per_room_and_forgotten_with_their_rows() {
        let mut mappings = CalendarMappings::default();
        mappings.apply(&one(Tx::new(10).insert(TABLE, &row(1, HALL, "outlook", 901, Some("o1")))));
        mappings.apply(&one(Tx::new(11).insert(TABLE, &row(2, HALL, "outlook", 902, Some("o2")))));
        mappings.apply(&one(Tx::new(12).insert(TABLE, &row(3, "hall-b@x", "outlook", 903, Some("o3")))));
        mappings.apply(&one(Tx::new(13).insert(TABLE, &row(4, HALL, "event", 904, Some("e4")))));
        assert_eq!(mappings.imported_events(HALL), HashSet::from([901, 902]));
        assert_eq!(mappings.imported_events("hall-b@x"), HashSet::from([903]));

        assert_eq!(mappings.live_imports(HALL, 0), vec!["o1".to_owned(), "o2".to_owned()]);
        let mut cancelled = row(1, HALL, "outlook", 901, Some("o1"));
        cancelled.push(("sync_status", text("deleted")));
        mappings.apply(&one(Tx::new(14).update(TABLE, &cancelled)));
        assert_eq!(mappings.live_imports(HALL, 0), vec!["o2".to_owned()], "a cancelled import is not live");
        let mut over = row(2, HALL, "outlook", 902, Some("o2"));
        over.push(("ends_at", Cell::Instant(1_000)));
        mappings.apply(&one(Tx::new(14).update(TABLE, &over)));
        assert_eq!(mappings.live_imports(HALL, 999), vec!["o2".to_owned()]);
        assert!(mappings.live_imports(HALL, 1_000).is_empty(), "an import over before the window is not live");

        mappings.apply(&one(Tx::new(15).delete(TABLE, &[("id", int(2))])));
        assert_eq!(mappings.imported_events(HALL), HashSet::from([901]));

        let mut truncate = one(Tx::new(16).delete(TABLE, &[]));
        truncate.op = crate::kafka::cdc::Op::Truncate;
        assert!(mappings.apply(&truncate));
        assert!(mappings.imported_events(HALL).is_empty());
        assert!(mappings.row("hall-b@x", "o3").is_none() && mappings.row(HALL, "e4").is_none());
    }

    #[test]
    fn a_replayed_older_record_changes_neither_the_row_nor_the_indexes() {
        let mut mappings = CalendarMappings::default();
        mappings.apply(&one(Tx::new(20).insert(TABLE, &row(1, HALL, "event", 7, Some("e2")))));
        assert!(!mappings.apply(&one(Tx::new(10).update(TABLE, &row(1, HALL, "event", 7, Some("e1"))))));
        assert!(mappings.row(HALL, "e2").is_some() && mappings.row(HALL, "e1").is_none());
    }
}
