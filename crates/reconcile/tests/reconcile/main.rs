//! The reconciler against the real things: the Graph emulator in-process on 127.0.0.1:0, a PostgreSQL database
//! of its own (booking schema + roomsync's migrations), the real broker and registry with a unique topic prefix,
//! and the real graph sink applying what the reconciler produces again.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: helpers shared by the #[test] fns panic on a failed setup step, as the tests themselves may"
)]

mod drift;
mod harness;
mod periodic;
mod retry;
mod sink_lag;
