//! The vocabulary every roomsync stage shares: topic names and their keys, the Avro records that travel on
//! them, Europe/Oslo wall-clock time, reservation priority, the sync window and the active-room rule.
//!
//! Only what several stages really use lives here; a stage's own logic stays in its crate.

pub mod keys;
pub mod oslo;
pub mod priority;
pub mod records;
pub mod rooms;
pub mod tables;
pub mod topics;
pub mod window;

pub use priority::ReservationKind;
