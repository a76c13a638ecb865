//! Season visibility: allocations and bookings are public only while their season is active and PUBLISHED
//! (docs/booking-schema.md §2 bb_season). A status change hides or shows every allocation and booking of the
//! season without any UPDATE on those rows, so the assembler re-evaluates them on every season change.

use crate::stage1::state::Stored;

/// The status that makes a season's allocations and bookings visible.
pub const PUBLISHED: &str = "PUBLISHED";

/// Whether a season row lets its allocations and bookings show.
pub fn season_is_visible(season: &Stored) -> bool {
    season.flag("active") && season.text("status").is_some_and(|s| s.trim() == PUBLISHED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::cdc::{Cell, Row};

    fn season(active: i64, status: &str) -> Stored {
        let row: Row = [("active".to_owned(), Cell::Int(active)), ("status".to_owned(), Cell::Text(status.into()))]
            .into_iter()
            .collect();
        Stored { row, position: (0, 0) }
    }

    #[test]
    fn only_an_active_published_season_is_visible() {
        assert!(season_is_visible(&season(1, "PUBLISHED")));
        assert!(!season_is_visible(&season(1, "ARCHIVED")));
        assert!(!season_is_visible(&season(1, "PLANNING")));
        assert!(!season_is_visible(&season(0, "PUBLISHED")));
    }
}
