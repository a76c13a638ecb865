//! Stage 2, per room: from the reservations of the room's resources (stage 1, in memory) and the Outlook events
//! of its calendar to what the calendar must hold, the Outlook-origin bookings to import and the conflicts to
//! record. No I/O.
//!
//! ```text
//!  reservations of the room --timeline (DST rules)--> items --overlap (priority)--> pieces --window--> desired
//!      --ledger: hash changed?--> desired records (full states; a delete for an item the room no longer holds)
//!  Outlook events of the room --outlook: echo | edited | import | conflict--> outlook_events: revert, import,
//!                                                                              conflict
//! ```
//! - [`timeline`]: Europe/Oslo wall clock to instants, all-day;
//! - [`overlap`]: Event > Booking > Allocation in one room, under the overlap policy;
//! - [`window`]: the sync window, which slides with time;
//! - [`desired`]: the full desired state of one room, with its content [`hash`];
//! - [`ledger`]: the last desired state emitted per (room, item), loaded from `<prefix>.sync.desired` at start;
//! - [`outlook`]: what one Outlook event means; [`outlook_events`]: what the core does about it.
//!
//! Invariants: a room is evaluated whole, as a pure function of its reservations, its Outlook events, the
//! policies and the window, so a duplicate or replayed input yields the same items and hashes and the ledger
//! emits nothing new; the booking system is the authority (an overlapping Outlook-origin booking is a conflict
//! and never takes a slot); roomsync never imports its own events, so nothing loops.

pub mod desired;
pub mod hash;
pub mod ledger;
pub mod outlook;
pub mod outlook_events;
pub mod overlap;
pub mod timeline;
pub mod window;
