//! The emulator over raw HTTP on 127.0.0.1:0: the docs/graph-facts.md behaviours, one module per area.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: helpers shared by the #[test] fns panic on a failed setup step, as the tests themselves may"
)]

mod auth_and_errors;
mod batch;
mod calendar;
mod event_resource;
mod headers;
mod responses;
mod room_processing;
mod sdk_requests;
mod subscriptions;
mod tenant;
mod throttling;
