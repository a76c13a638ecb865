//! The Graph source against the in-process Graph emulator (127.0.0.1:0), a real PostgreSQL, the real broker and
//! schema registry: one test binary, one module per area.

mod harness;
mod polling;
mod webhooks;
