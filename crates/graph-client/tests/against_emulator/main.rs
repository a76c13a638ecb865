//! The client against the emulator over real HTTP on 127.0.0.1:0: one test binary, one module per area.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: helpers shared by the #[test] fns panic on a failed setup step, as the tests themselves may"
)]

mod batching;
mod delta;
mod events;
mod faults;
mod paths;
mod places_and_subscriptions;
mod responses;
mod tenant;
