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

/// The memory allocator of the binary and of everything that runs its stages (benchmarks, end-to-end tests),
/// declared here once so they all measure the same. mimalloc rather than the system's: in a first load of 400
/// calendars glibc's `malloc` and `free` were a third of the CPU (the sink and the Graph emulator build and drop
/// a JSON tree per event), and a service that runs for months wants an allocator that returns memory instead of
/// fragmenting its arenas.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
