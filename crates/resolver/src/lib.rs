//! The resolver: per room and time slot, what each room calendar must hold.
//!
//! ```text
//!  <prefix>.cdc.public.bb_*  ----+                                         +--> <prefix>.reservations
//!  <prefix>.cdc.transactions ----+--> transaction --> stage 1: assemble ---+
//!  (+ roomsync mapping tables)   |    assembler       (reservations.rs)    |
//!                                |                                         v
//!  <prefix>.graph.events --------+------------------> stage 2: per room timeline, priority, window,
//!                                                      echoes, imports, conflicts (core.rs)
//!                                                        |--> <prefix>.sync.desired (compacted, by room)
//!                                                        |--> <prefix>.sync.imports
//!                                                        \--> roomsync_conflicts (PostgreSQL)
//! ```
//!
//! The domain logic (assemble, season, timeline, overlap, window, outlook, hash, desired, ledger) does no I/O;
//! the Kafka and PostgreSQL plumbing lives in `consume`, `emit` and `conflicts`. The README documents the
//! rules, the policies and their defaults.
#![warn(missing_docs)]

pub mod acks;
pub mod assemble;
pub mod cdc;
pub mod config;
pub mod conflicts;
pub mod consume;
pub mod core;
pub mod desired;
pub mod emit;
pub mod error;
pub mod hash;
pub mod health;
pub mod inputs;
pub mod ledger;
pub mod liveness;
pub mod lookup;
pub mod mappings;
pub mod metrics;
pub mod outlook;
pub mod outlook_events;
pub mod overlap;
pub mod ownership;
pub mod reservations;
pub mod season;
pub mod state;
pub mod timeline;
pub mod transaction;
pub mod window;

#[cfg(test)]
mod fixtures;

pub use config::{Config, ConflictPolicy, EditPolicy, OverlapPolicy, Policies, TransactionMode, WindowConfig};
pub use consume::run;
pub use error::ResolverError;
