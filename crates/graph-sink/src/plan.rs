//! What one desired record asks of Graph, given what the mapping table says: the pure decision at the heart
//! of "write exactly once".
//!
//! ```text
//! upsert: row synced/parked with the same hash, no intent,
//!         not a rewrite (revert of an Outlook edit) ................ skip (nothing to write)
//!         row knows the event id .................................. update (PATCH the full content)
//!         otherwise ............................................... find by tags, then adopt or create
//! delete: row knows the event id .................................. delete (404 counts as done)
//!         row deleted, no intent .................................. skip
//!         otherwise ............................................... find by tags, then delete what is found
//! ```
//! Invariant: a create is only ever planned after a lookup by tags found nothing (or, for an item with no row,
//! no intent and no failed write, after its calendar was checked to hold no tagged event at all: `clean`), so an
//! event made by an interrupted earlier run, by the PHP integration or by another instance is adopted, not
//! duplicated.

use uuid::Uuid;
use vocabulary::records::{DesiredItem, UpsertOrDelete};

use crate::identity::{first_transaction_id, next_transaction_id};
use crate::mapping::MappingRow;

/// The next step of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing to write.
    Skip,
    /// Look the event up by its tags first.
    Find,
    /// POST with this transactionId.
    Create(Uuid),
    /// PATCH this event with the full content.
    Update(String),
    /// DELETE this event.
    Delete(String),
}

/// The first step for `desired` (`None`: a tombstone, i.e. delete) given the item's row.
pub fn first_step(desired: Option<&DesiredItem>, row: Option<&MappingRow>) -> Step {
    let upsert = desired.filter(|d| d.op == UpsertOrDelete::Upsert);
    let idle = row.is_none_or(|r| r.intent == "none");
    match (upsert, row) {
        (Some(item), Some(row)) => {
            let same_hash = row.content_hash.as_deref() == Some(item.content_hash.as_str());
            let settled = (row.sync_status == "synced" && row.event_id.is_some()) || row.sync_status == "parked";
            if same_hash && settled && idle && !item.rewrite {
                Step::Skip
            } else if let Some(id) = &row.event_id {
                Step::Update(id.clone())
            } else {
                Step::Find
            }
        }
        (Some(_), None) => Step::Find,
        (None, Some(row)) => match &row.event_id {
            Some(id) => Step::Delete(id.clone()),
            None if row.sync_status == "deleted" && idle => Step::Skip,
            // A tombstone carries no reservation id to search by: without a row it has nothing to delete.
            None if desired.is_none() => Step::Skip,
            None => Step::Find,
        },
        (None, None) if desired.is_some() => Step::Find,
        (None, None) => Step::Skip,
    }
}

/// The transactionId a create of this item uses now.
///
/// An unfinished create (intent `create`) repeats its id: that is what makes the replay land on the same
/// event. A row whose event was deleted (or vanished under an update) moves to the next generation.
pub fn create_transaction_id(mailbox: &str, item_key: &str, row: Option<&MappingRow>, vanished: bool) -> Uuid {
    match row {
        None => first_transaction_id(mailbox, item_key),
        Some(row) if row.intent == "create" && !vanished => row.transaction_id,
        Some(row) if row.sync_status == "deleted" || vanished => {
            next_transaction_id(mailbox, item_key, row.transaction_id)
        }
        Some(row) => row.transaction_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vocabulary::ReservationKind;

    fn desired(op: UpsertOrDelete, hash: &str) -> DesiredItem {
        DesiredItem {
            op,
            mailbox: "m@x".into(),
            resource_id: 1,
            item_key: "event:1".into(),
            kind: ReservationKind::Event,
            reservation_id: 1,
            priority: 1,
            content_hash: hash.into(),
            content: None,
            commit_lsn: 0,
            source_committed_at: None,
            rewrite: false,
        }
    }

    fn row(status: &str, event: Option<&str>, hash: Option<&str>, intent: &str) -> MappingRow {
        MappingRow {
            reservation_type: "event".into(),
            reservation_id: 1,
            resource_id: 1,
            priority_level: 1,
            event_id: event.map(str::to_owned),
            sync_status: status.into(),
            content_hash: hash.map(str::to_owned),
            transaction_id: first_transaction_id("m@x", "event:1"),
            intent: intent.into(),
        }
    }

    #[test]
    fn an_unchanged_item_is_skipped_and_a_changed_one_updated() {
        let up = desired(UpsertOrDelete::Upsert, "h1");
        assert_eq!(first_step(Some(&up), Some(&row("synced", Some("e"), Some("h1"), "none"))), Step::Skip);
        assert_eq!(first_step(Some(&up), Some(&row("parked", None, Some("h1"), "none"))), Step::Skip);
        assert_eq!(
            first_step(Some(&up), Some(&row("synced", Some("e"), Some("h0"), "none"))),
            Step::Update("e".into())
        );
        // A revert of an Outlook edit rewrites the unchanged content.
        let revert = DesiredItem { rewrite: true, ..up.clone() };
        assert_eq!(
            first_step(Some(&revert), Some(&row("synced", Some("e"), Some("h1"), "none"))),
            Step::Update("e".into())
        );
        assert_eq!(first_step(Some(&revert), Some(&row("parked", None, Some("h1"), "none"))), Step::Find);
        // An interrupted update with the same hash is repeated, not trusted.
        assert_eq!(
            first_step(Some(&up), Some(&row("synced", Some("e"), Some("h1"), "update"))),
            Step::Update("e".into())
        );
    }

    #[test]
    fn an_item_without_a_known_event_is_looked_up_before_any_create() {
        let up = desired(UpsertOrDelete::Upsert, "h1");
        assert_eq!(first_step(Some(&up), None), Step::Find);
        assert_eq!(first_step(Some(&up), Some(&row("pending", None, None, "create"))), Step::Find);
        assert_eq!(first_step(Some(&up), Some(&row("deleted", None, None, "none"))), Step::Find);
    }

    #[test]
    fn deletes_use_the_known_event_and_skip_what_is_gone() {
        let del = desired(UpsertOrDelete::Delete, "h");
        assert_eq!(
            first_step(Some(&del), Some(&row("synced", Some("e"), Some("h1"), "none"))),
            Step::Delete("e".into())
        );
        assert_eq!(first_step(Some(&del), Some(&row("deleted", None, None, "none"))), Step::Skip);
        assert_eq!(first_step(Some(&del), Some(&row("pending", None, None, "create"))), Step::Find);
        assert_eq!(first_step(Some(&del), None), Step::Find);
        assert_eq!(first_step(None, None), Step::Skip);
        assert_eq!(first_step(None, Some(&row("pending", None, None, "create"))), Step::Skip);
    }

    #[test]
    fn transaction_ids_repeat_for_an_unfinished_create_and_advance_after_a_delete() {
        let first = first_transaction_id("m@x", "event:1");
        assert_eq!(create_transaction_id("m@x", "event:1", None, false), first);
        assert_eq!(create_transaction_id("m@x", "event:1", Some(&row("pending", None, None, "create")), false), first);
        let next = next_transaction_id("m@x", "event:1", first);
        assert_eq!(create_transaction_id("m@x", "event:1", Some(&row("deleted", None, None, "none")), false), next);
        assert_eq!(
            create_transaction_id("m@x", "event:1", Some(&row("synced", Some("e"), None, "update")), true),
            next
        );
        assert_eq!(
            create_transaction_id("m@x", "event:1", Some(&row("parked", None, Some("h"), "none")), false),
            first
        );
    }
}
