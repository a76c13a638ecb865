//! The resolver's PostgreSQL plumbing, on the booking database (`Config::database`).
//!
//! - [`conflicts`]: its writes: Outlook-origin bookings that overlap a reservation (`roomsync_conflicts`, through
//!   [`migrations::conflicts`]) and this instance's liveness row (`roomsync_stage_health`, see
//!   [`crate::liveness`]);
//! - [`lookup`]: the rows of a reservation the state forgot (it ended before the window) when the booking system
//!   moves it back into the window;
//! - [`checkpoint`]: the group's checkpoint (`roomsync_resolver_checkpoints`), read at start and written every
//!   few minutes ([`crate::checkpoint`]).
//!
//! Invariants: every write is idempotent, so a write whose session was lost is sent once more on a new connection
//! (a PostgreSQL restart costs a reconnect, not a rebuild); the rows a lookup reads are at least as new as the
//! transaction that needed them, and that transaction's own columns win. Without `database`, conflicts are only
//! logged and counted, and a forgotten reservation moved back stays without its rooms until its next change.

pub mod checkpoint;
pub mod conflicts;
pub mod lookup;
