//! The sink against the real things: the Graph emulator in-process on 127.0.0.1:0, a PostgreSQL database of its
//! own (booking schema + roomsync's migrations), and the real broker and registry with a unique topic prefix.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: helpers shared by the #[test] fns panic on a failed setup step, as the tests themselves may"
)]

mod adoption;
mod catch_up;
mod crashes;
mod declines;
mod faults;
mod harness;
mod imports;
mod resume;
mod writes;
