//! The emulator over raw HTTP on 127.0.0.1:0: the docs/graph-facts.md behaviours, one module per area.

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
