//! roomsync: one binary for every stage of the sync between the PorticoEstate booking system and Outlook room
//! calendars. This library half holds what the binary and the end-to-end tests share: configuration, the CLI
//! and the commands.

pub mod admin;
pub mod cli;
pub mod commands;
pub mod config;
pub mod ops;
pub mod secret;
pub mod stages;
