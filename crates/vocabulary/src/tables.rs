//! The table catalogue: every table roomsync captures from the booking database, with the role it plays and its
//! key. The cdc-reader captures the catalogue (its default `tables`) and knows from it how to narrow a backfill
//! to some resources (by role); the resolver reads the tables whose role it uses and files each change by its role.
//!
//! Adding a `bb_*` table is one entry here. A table of a role that exists already (another dimension of a
//! reservation, say) then flows through; a new role needs the code that gives it meaning, in the stage that uses
//! it, which the compiler points to (every `match` on [`Role`] is exhaustive).
//!
//! Key columns are the tables' primary keys in the booking system's schema (`docs/booking-schema.md` §2).

use crate::ReservationKind;

/// What a captured table is to roomsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The main rows of one kind of reservation (`bb_event`, `bb_booking`, `bb_allocation`).
    Main(ReservationKind),
    /// The resources of one kind of reservation: (reservation, resource) pairs.
    Link {
        /// The kind of reservation.
        kind: ReservationKind,
        /// The column naming the reservation (`event_id`, ...); the other is `resource_id`.
        column: &'static str,
    },
    /// The bookable resources (`bb_resource`).
    Resources,
    /// Buildings: captured for consumers of the topics, not read by the resolver.
    Buildings,
    /// Organizations, named on reservations.
    Organizations,
    /// Groups of organizations, named on bookings and allocations.
    Groups,
    /// Seasons: their status hides or shows their bookings and allocations.
    Seasons,
    /// Resource to room-mailbox mappings (the active-room rule, [`crate::rooms`]).
    Rooms,
    /// roomsync's own mapping of items to Outlook events (`outlook_calendar_mapping`).
    CalendarMapping,
    /// roomsync's own backfill requests (`roomsync_signals`): read by the cdc-reader as signals, never published
    /// as data.
    Signals,
}

/// One captured table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    /// Its name (in the configured schema, `public` by default).
    pub name: &'static str,
    /// What it is to roomsync.
    pub role: Role,
    /// Its primary-key columns.
    pub key: &'static [&'static str],
}

const ID: &[&str] = &["id"];

const fn main(name: &'static str, kind: ReservationKind) -> Table {
    Table { name, role: Role::Main(kind), key: ID }
}

const fn link(name: &'static str, kind: ReservationKind, key: &'static [&'static str; 2]) -> Table {
    Table { name, role: Role::Link { kind, column: key[0] }, key }
}

const EVENTS: Table = main("bb_event", ReservationKind::Event);
const EVENT_RESOURCES: Table = link("bb_event_resource", ReservationKind::Event, &["event_id", "resource_id"]);
const BOOKINGS: Table = main("bb_booking", ReservationKind::Booking);
const BOOKING_RESOURCES: Table = link("bb_booking_resource", ReservationKind::Booking, &["booking_id", "resource_id"]);
const ALLOCATIONS: Table = main("bb_allocation", ReservationKind::Allocation);
const ALLOCATION_RESOURCES: Table =
    link("bb_allocation_resource", ReservationKind::Allocation, &["allocation_id", "resource_id"]);

/// The signal table of backfill requests.
pub const SIGNALS: &str = "roomsync_signals";

/// Every captured table, in the order the cdc-reader lists them.
pub const TABLES: &[Table] = &[
    EVENTS,
    EVENT_RESOURCES,
    BOOKINGS,
    BOOKING_RESOURCES,
    ALLOCATIONS,
    ALLOCATION_RESOURCES,
    Table { name: "bb_resource", role: Role::Resources, key: ID },
    Table { name: "bb_building", role: Role::Buildings, key: ID },
    Table { name: "bb_organization", role: Role::Organizations, key: ID },
    Table { name: "bb_group", role: Role::Groups, key: ID },
    Table { name: "bb_season", role: Role::Seasons, key: ID },
    Table { name: crate::rooms::MAPPING_TABLE, role: Role::Rooms, key: ID },
    Table { name: "outlook_calendar_mapping", role: Role::CalendarMapping, key: ID },
    Table { name: SIGNALS, role: Role::Signals, key: ID },
];

/// The catalogue entry of table `name`.
pub fn by_name(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

/// The main table of a kind of reservation.
pub fn main_of(kind: ReservationKind) -> &'static Table {
    match kind {
        ReservationKind::Event => &EVENTS,
        ReservationKind::Booking => &BOOKINGS,
        ReservationKind::Allocation => &ALLOCATIONS,
    }
}

/// The link table of a kind of reservation and the column naming the reservation in it (its first key column;
/// the other is `resource_id`).
pub fn link_of(kind: ReservationKind) -> (&'static Table, &'static str) {
    let table = match kind {
        ReservationKind::Event => &EVENT_RESOURCES,
        ReservationKind::Booking => &BOOKING_RESOURCES,
        ReservationKind::Allocation => &ALLOCATION_RESOURCES,
    };
    (table, table.key[0])
}

impl Table {
    /// Whether the resolver reads this table's changes.
    pub fn read_by_resolver(&self) -> bool {
        !matches!(self.role, Role::Buildings | Role::Signals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reservation_kind_has_a_main_and_a_link_table() {
        for kind in ReservationKind::ALL {
            assert_eq!(main_of(kind).role, Role::Main(kind));
            assert!(TABLES.contains(main_of(kind)));
            let (link, column) = link_of(kind);
            assert_eq!(link.role, Role::Link { kind, column });
            assert_eq!(link.key, &[column, "resource_id"]);
            assert!(TABLES.contains(link));
        }
    }

    #[test]
    fn names_are_unique() {
        for (i, table) in TABLES.iter().enumerate() {
            assert!(TABLES[i + 1..].iter().all(|t| t.name != table.name), "{} twice", table.name);
        }
    }
}
