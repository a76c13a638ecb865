//! The sync window: the span `[now - past, now + horizon)` in which roomsync keeps the room calendars in step
//! with the booking system. It slides with time; what ends before it is left as it is (Outlook keeps history),
//! what starts after it is written once it enters. Its defaults live here only: the resolver decides what the
//! window holds, the graph source reads Outlook over it, reconcile compares over it, and `roomsync run` passes
//! the one configured window (`[sync] window_past`, `horizon`) to each.

use std::time::Duration;

/// How far back from now items are still managed by default: one day.
pub const DEFAULT_PAST: Duration = Duration::from_secs(24 * 3600);

/// How far ahead items are written by default: 180 days.
pub const DEFAULT_HORIZON: Duration = Duration::from_secs(180 * 24 * 3600);
