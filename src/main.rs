//! The roomsync binary.
fn main() {}
