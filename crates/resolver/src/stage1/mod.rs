//! Stage 1: from the booking system's rows to one [`Reservation`] per (reservation, resource), as the booking
//! system's public calendar shows it. No I/O: whole source transactions of [`CdcRecord`]s in (regrouped by
//! [`crate::kafka::transaction`]), the reservation records they changed out.
//!
//! ```text
//!  transaction --apply--> state: main rows, links, seasons, names, room mappings, calendar mapping rows
//!                           | touched reservations
//!                           v
//!                         assemble (season visibility, titles, privacy) --hash changed?--> reservation records
//! ```
//! - [`state`]: the rows the resolver needs, kept current record by record; [`mappings`]: its indexed mirror of
//!   roomsync's `outlook_calendar_mapping` (stage 2 asks it about Outlook events and imports);
//! - [`season`]: whether a season shows its allocations and bookings;
//! - [`assemble`]: the rules that turn the rows of one reservation into its records;
//! - [`reservations`]: the state machine over both, [`reservations::Assembler`].
//!
//! Invariants: a record at or below the position already applied for its key changes nothing; the result depends
//! only on the current rows, never on the order of the changes that led to them; a record is emitted only when
//! its content hash changed, and a reservation that stops applying gets a delete for each resource it was
//! emitted for.
//!
//! Stage 2 takes the reservations from here in memory ([`reservations::Assembler::of_resource`]); the records go
//! to `<prefix>.reservations` as this stage's changelog, which stage 2 never reads (see the crate documentation).
//!
//! [`Reservation`]: vocabulary::records::Reservation
//! [`CdcRecord`]: crate::kafka::cdc::CdcRecord

pub mod assemble;
pub mod mappings;
pub mod reservations;
pub mod season;
pub mod state;
