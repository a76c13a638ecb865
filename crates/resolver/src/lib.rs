//! The resolver: per room and time slot, what each room calendar must hold.
//!
//! ```text
//!                                           kafka/                   stage1/
//!  <prefix>.cdc.public.bb_* ------------+
//!  (+ roomsync mapping tables)          +--> TransactionAssembler --> assemble ---> <prefix>.reservations
//!  <prefix>.cdc.transactions (END) -----+                                |            (stage 1's changelog,
//!                                                                        | in memory   read back only by
//!                                                                        v             the resolver)
//!  <prefix>.graph.events ---------------------------------------> stage2/: per room timeline, priority, window,
//!                                                                  echoes, imports, conflicts
//!                                                                  |--> <prefix>.sync.desired (compacted, by room)
//!                                                                  |--> <prefix>.sync.imports
//!                                                                  \--> roomsync_conflicts (postgres/)
//! ```
//!
//! Where each part lives:
//! - [`stage1`]: booking-system rows to reservations (state, season visibility, assembly rules);
//! - [`stage2`]: reservations and Outlook events to desired items, imports and conflicts (timeline, overlap,
//!   window, content hash, the ledger of what was emitted, Outlook classification);
//! - [`core`]: the two stages joined into one state machine without I/O (whole transactions, Outlook events and
//!   clock ticks in, records to emit out), with what it remembers of its own output;
//! - [`kafka`]: the driver that feeds the core ([`run`]): reading the inputs whole, decoding CDC envelopes,
//!   regrouping them into source transactions by END marker, emitting, acknowledgements, group ownership;
//! - [`postgres`]: the booking database: the conflicts and stage-health rows the resolver writes, the rows of
//!   forgotten reservations it reads again;
//! - [`liveness`]: whether input turns into output, and how that is reported;
//! - [`checkpoint`]: the state built from the inputs and the positions it stands for, so a start reads only what
//!   came after it (kept in PostgreSQL by [`postgres::checkpoint`]).
//!
//! `<prefix>.reservations` is the changelog of stage 1, not an input of stage 2: stage 2 takes the reservations
//! from stage 1 in memory. Its one reader in roomsync is the resolver itself, which loads the partitions it owns
//! at start ([`core::Core::load_reservation`]) to learn what it already emitted, so a restart emits only real
//! changes; analytics consumers may read it (`schemas/reservation.avsc`). The README says more.
//!
//! [`stage1`], [`stage2`] and [`core`] do no I/O, so their rules are unit tested without Kafka or PostgreSQL; the
//! README documents the rules, the policies and their defaults.
#![warn(missing_docs)]

pub mod checkpoint;
pub mod config;
pub mod core;
pub mod error;
pub mod kafka;
pub mod liveness;
pub mod metrics;
pub mod postgres;
pub mod stage1;
pub mod stage2;

#[cfg(test)]
mod fixtures;

pub use config::{Config, ConflictPolicy, EditPolicy, OverlapPolicy, Policies, TransactionMode, WindowConfig};
pub use error::ResolverError;
pub use kafka::consume::run;
