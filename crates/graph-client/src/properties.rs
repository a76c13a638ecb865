//! The single-value extended properties roomsync reads and writes on room-calendar events.
//!
//! Invariant: these ids are the one definition shared by graph-sink (which writes them) and graph-source (which
//! reads them back); the first two keep the GUID of the earlier PHP integration, so events it wrote are adopted
//! instead of duplicated.

/// The earlier integration's reservation kind: event, booking, allocation.
pub const BOOKING_SYSTEM_TYPE: &str = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name BookingSystemType";
/// The earlier integration's reservation id.
pub const BOOKING_SYSTEM_ID: &str = "String {66f5a359-4659-4830-9070-00047ec6ac6f} Name BookingSystemId";
/// roomsync's key of the item within the room.
pub const ROOMSYNC_ITEM_KEY: &str = "String {66f5a359-4659-4830-9070-00047ec6ac70} Name RoomsyncItemKey";
/// Hash of the content roomsync wrote.
pub const ROOMSYNC_CONTENT_HASH: &str = "String {66f5a359-4659-4830-9070-00047ec6ac71} Name RoomsyncContentHash";

/// All four, for `$expand`.
pub const ROOMSYNC_PROPERTIES: [&str; 4] =
    [BOOKING_SYSTEM_TYPE, BOOKING_SYSTEM_ID, ROOMSYNC_ITEM_KEY, ROOMSYNC_CONTENT_HASH];
