//! The active-room rule: which rows of `bb_resource_outlook_item` tie a booking-system resource to an Outlook
//! room mailbox. The resolver (what each room calendar must hold), the graph source (which mailboxes it reads)
//! and reconcile (which calendars it compares) all decide with [`ActiveRooms`], so they never disagree on the
//! set of rooms.
//!
//! The rule: a row maps its resource to its mailbox when `active = 1` and `outlook_item_id`, trimmed of
//! surrounding white space, is not empty; the mailbox is that trimmed address. Several resources may share a
//! mailbox (one room calendar shows them all); the lowest resource id speaks for the room where one is needed
//! (the resource of an imported Outlook booking, the graph source's watch list).

use std::collections::BTreeMap;

/// The table that maps resources to room mailboxes (`id` primary key; `resource_id`, `outlook_item_id`,
/// `outlook_item_name`, `active`).
pub const MAPPING_TABLE: &str = "bb_resource_outlook_item";

/// The query that reads every mapping row for [`ActiveRooms::from_rows`], in its types: resource (`int8`),
/// mailbox (`text`), active flag (`int8`).
pub const MAPPING_ROWS_QUERY: &str =
    "select resource_id::int8, outlook_item_id::text, active::int8 from bb_resource_outlook_item";

/// The room mailbox a mapping row maps its resource to, if the row is active: `outlook_item_id` trimmed, when
/// `active` is 1 and the address is not empty.
pub fn mailbox_of(outlook_item_id: Option<&str>, active: Option<i64>) -> Option<&str> {
    let mailbox = outlook_item_id?.trim();
    (active == Some(1) && !mailbox.is_empty()).then_some(mailbox)
}

/// The active rooms: each mailbox with the resources it shows, in ascending order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActiveRooms {
    rooms: BTreeMap<String, Vec<i32>>,
}

impl ActiveRooms {
    /// The active rooms of mapping rows `(resource_id, outlook_item_id, active)`.
    pub fn from_rows<'a>(rows: impl IntoIterator<Item = (Option<i64>, Option<&'a str>, Option<i64>)>) -> Self {
        let mut rooms: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (resource, outlook_item_id, active) in rows {
            let (Some(resource), Some(mailbox)) =
                (resource.and_then(|r| i32::try_from(r).ok()), mailbox_of(outlook_item_id, active))
            else {
                continue;
            };
            let resources = rooms.entry(mailbox.to_owned()).or_default();
            if let Err(at) = resources.binary_search(&resource) {
                resources.insert(at, resource);
            }
        }
        ActiveRooms { rooms }
    }

    /// Each mailbox with its resources (ascending), mailboxes in order.
    pub fn by_mailbox(&self) -> &BTreeMap<String, Vec<i32>> {
        &self.rooms
    }

    /// The mailboxes, in order.
    pub fn mailboxes(&self) -> impl Iterator<Item = &str> {
        self.rooms.keys().map(String::as_str)
    }

    /// Each mailbox with the resource that speaks for it (the lowest id).
    pub fn representatives(&self) -> impl Iterator<Item = (&str, i32)> {
        self.rooms.iter().filter_map(|(mailbox, resources)| Some((mailbox.as_str(), *resources.first()?)))
    }

    /// Whether there are no active rooms.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }
}

impl From<ActiveRooms> for BTreeMap<String, Vec<i32>> {
    fn from(rooms: ActiveRooms) -> Self {
        rooms.rooms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_active_rows_with_an_address_count_and_the_address_is_trimmed() {
        let rooms = ActiveRooms::from_rows([
            (Some(7), Some(" hall-a@example.org "), Some(1)),
            (Some(3), Some("hall-a@example.org"), Some(1)),
            (Some(4), Some("hall-b@example.org"), Some(0)),
            (Some(5), Some("   "), Some(1)),
            (Some(6), None, Some(1)),
            (None, Some("hall-c@example.org"), Some(1)),
            (Some(8), Some("hall-d@example.org"), None),
        ]);
        assert_eq!(rooms.by_mailbox(), &BTreeMap::from([("hall-a@example.org".to_owned(), vec![3, 7])]));
        assert_eq!(rooms.representatives().collect::<Vec<_>>(), vec![("hall-a@example.org", 3)]);
    }

    #[test]
    fn the_same_resource_twice_is_listed_once() {
        let rooms = ActiveRooms::from_rows([(Some(2), Some("r@x"), Some(1)), (Some(2), Some("r@x "), Some(1))]);
        assert_eq!(rooms.by_mailbox()["r@x"], vec![2]);
    }
}
