//! The sync window: roomsync manages room-calendar items from `now - past` to `now + horizon`, and the window
//! slides with time, so items enter it as their date approaches.
//!
//! Invariants: an item is inside when its interval overlaps the window (`end > start_of_window` and
//! `start < end_of_window`); an item that leaves at the past end is forgotten, never deleted from Outlook
//! (it happened); one that is moved beyond the horizon is deleted (it must not show yet).

use std::time::Duration;

use crate::config::WindowConfig;

/// The window at one moment, in µs since the epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First instant inside.
    pub start: i64,
    /// First instant after.
    pub end: i64,
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl Window {
    /// The window around `now` (µs since the epoch).
    pub fn at(now: i64, config: &WindowConfig) -> Self {
        Window { start: now.saturating_sub(micros(config.past)), end: now.saturating_add(micros(config.horizon)) }
    }

    /// Whether `[start, end)` overlaps the window.
    pub fn overlaps(&self, start: i64, end: i64) -> bool {
        end > self.start && start < self.end
    }

    /// Whether an item ending at `end` has left the window at its past end.
    pub fn is_past(&self, end: i64) -> bool {
        end <= self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000_000;

    fn config() -> WindowConfig {
        WindowConfig { past: Duration::from_secs(3600), horizon: Duration::from_secs(10 * 3600), ..Default::default() }
    }

    #[test]
    fn an_item_beyond_the_horizon_enters_the_window_as_time_passes() {
        let item = (20 * HOUR, 21 * HOUR);
        assert!(!Window::at(0, &config()).overlaps(item.0, item.1));
        assert!(Window::at(11 * HOUR, &config()).overlaps(item.0, item.1));
    }

    #[test]
    fn an_item_that_ended_before_the_margin_is_past() {
        let window = Window::at(10 * HOUR, &config());
        assert!(window.is_past(9 * HOUR));
        assert!(!window.overlaps(8 * HOUR, 9 * HOUR));
        assert!(window.overlaps(8 * HOUR, 9 * HOUR + 1));
    }
}
