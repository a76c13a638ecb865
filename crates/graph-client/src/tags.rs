//! The single-value extended properties roomsync writes on the events it owns.
//!
//! The first two are the ones the earlier PHP integration wrote (same GUIDs, same names), so events it created
//! are recognised and adopted instead of duplicated; the last two are roomsync's own. Graph compares these ids
//! case-insensitively; always use these constants so every stage spells them the same way.

/// The kind of booking-system reservation behind the event: `event`, `booking` or `allocation` (PHP integration).
pub const EXT_BOOKING_SYSTEM_TYPE: &str = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name BookingSystemType";

/// The booking-system reservation id behind the event (PHP integration).
pub const EXT_BOOKING_SYSTEM_ID: &str = "String {66f5a359-4659-4830-9070-00047ec6ac6f} Name BookingSystemId";

/// roomsync's key of the item within the room calendar (`<kind>:<reservation id>[:<piece>]`).
pub const EXT_ROOMSYNC_ITEM_KEY: &str = "String {66f5a359-4659-4830-9070-00047ec6ac70} Name RoomsyncItemKey";

/// Hash of the content roomsync last wrote to the event.
pub const EXT_ROOMSYNC_CONTENT_HASH: &str = "String {66f5a359-4659-4830-9070-00047ec6ac71} Name RoomsyncContentHash";

/// All four, for `$expand`.
pub const ALL: [&str; 4] =
    [EXT_BOOKING_SYSTEM_TYPE, EXT_BOOKING_SYSTEM_ID, EXT_ROOMSYNC_ITEM_KEY, EXT_ROOMSYNC_CONTENT_HASH];
