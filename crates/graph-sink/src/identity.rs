//! Deterministic `transactionId`s for creates.
//!
//! Invariant: the id of a create depends only on the mailbox, the item key and the generation of the item, so
//! a create repeated after a crash (same row, same generation) carries the same id and Graph answers with the
//! event it already made instead of a second one. Generation 0 is `uuid5(NS, "<mailbox>/<item_key>")`; each
//! re-creation after the item's event was deleted derives the next id from the previous one
//! (`uuid5(NS, "<mailbox>/<item_key>#<previous id>")`), so a recreated item never reuses an id Graph may still
//! associate with the deleted event, and the generation needs no column of its own: the stored id is the chain's
//! current link.

use uuid::Uuid;

/// Namespace of roomsync's transaction ids (`uuid5(NAMESPACE_URL, "https://roomsync/graph-sink/transaction-id")`).
fn namespace() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, b"https://roomsync/graph-sink/transaction-id")
}

/// The transactionId of an item's first create.
pub fn first_transaction_id(mailbox: &str, item_key: &str) -> Uuid {
    Uuid::new_v5(&namespace(), format!("{}/{item_key}", mailbox.to_ascii_lowercase()).as_bytes())
}

/// The transactionId of the create that follows one made with `previous` (after the event was deleted).
pub fn next_transaction_id(mailbox: &str, item_key: &str, previous: Uuid) -> Uuid {
    Uuid::new_v5(&namespace(), format!("{}/{item_key}#{previous}", mailbox.to_ascii_lowercase()).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_item_always_gets_the_same_first_id_and_generations_differ() {
        let a = first_transaction_id("Hall-A@kommune.no", "event:1");
        assert_eq!(a, first_transaction_id("hall-a@kommune.no", "event:1"));
        assert_ne!(a, first_transaction_id("hall-a@kommune.no", "event:2"));
        let b = next_transaction_id("hall-a@kommune.no", "event:1", a);
        assert_ne!(a, b);
        assert_eq!(b, next_transaction_id("hall-a@kommune.no", "event:1", a));
        assert_ne!(b, next_transaction_id("hall-a@kommune.no", "event:1", b));
        assert_eq!(a.get_version_num(), 5);
    }
}
