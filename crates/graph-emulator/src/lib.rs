//! A faithful, stateful Microsoft Graph emulator with fault injection.
//!
//! It emulates one tenant in memory: the token endpoint, room and user mailboxes, events (with time zones,
//! recurrence, extended properties, transactionId de-duplication), meeting responses, calendarView, calendarView/delta with paging,
//! `$batch`, subscriptions, and Outlook's throttling, plus knobs to inject faults at run time
//! (`/_emulator/...`). Every behaviour follows `docs/graph-facts.md`; see this crate's README for the endpoint list.
//!
//! Tests run it on `127.0.0.1:0` with [`serve`]; the `roomsync-graph-emulator` binary runs it for people.

#![warn(missing_docs)]

pub mod admin;
pub mod auth;
pub mod batch;
pub mod config;
pub mod correlation;
pub mod delta;
pub mod error;
pub mod event;
pub mod events;
pub mod exceptions;
pub mod filter;
pub mod gate;
pub mod links;
pub mod places;
pub mod prefer;
pub mod recurrence;
pub mod responses;
pub mod retry_watch;
pub mod server;
pub mod state;
pub mod subscriptions;
pub mod tenant;
pub mod throttle;
pub mod time;
pub mod view;

#[cfg(test)]
mod fuzz_tests;

pub use config::{ConcurrencyScope, FaultConfig, RoomConfig, TenantConfig, UserConfig};
pub use error::{ApiError, EmulatorError};
pub use server::{router, serve};
pub use state::{Emulator, EventStamp, LogEntry};
