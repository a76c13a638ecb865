//! Shared vocabulary of the roomsync stages.
