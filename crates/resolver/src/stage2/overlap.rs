//! Priority in one room: Event > Booking > Allocation. The highest-priority item owns a time slot; what the
//! lower ones show depends on the [`OverlapPolicy`]:
//!
//! ```text
//!  allocation  |==========================|         trim:  |===|        |=====|   (pieces 1 and 2)
//!  booking          |========|                             .    |=====|  .
//!  event                                             hide:  (allocation hidden)
//! ```
//! Invariants: only strictly higher priority covers an item (items of equal priority are all shown);
//! with `trim`, pieces shorter than the minimum are dropped; piece numbers (1-based, in time order) are used
//! only when an item is split into two or more pieces, so an item trimmed to one piece keeps its plain key.

use std::collections::BTreeMap;

use crate::config::OverlapPolicy;
use crate::stage2::timeline::Item;
use vocabulary::ReservationKind;

/// A visible part of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// Kind of the item.
    pub kind: ReservationKind,
    /// Reservation id of the item.
    pub reservation_id: i32,
    /// Start, µs since the epoch.
    pub start: i64,
    /// End, µs since the epoch.
    pub end: i64,
    /// 1-based piece number when the item was split into several pieces.
    pub piece: Option<usize>,
}

impl Piece {
    /// The item key: `<kind>:<reservation id>` or `<kind>:<reservation id>:<piece>`.
    pub fn item_key(&self) -> String {
        match self.piece {
            Some(n) => format!("{}:{}:{n}", self.kind.as_str(), self.reservation_id),
            None => format!("{}:{}", self.kind.as_str(), self.reservation_id),
        }
    }
}

/// `[start, end)` minus the union of `covers`, in time order.
fn subtract(start: i64, end: i64, covers: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut sorted: Vec<(i64, i64)> = covers.iter().copied().filter(|(s, e)| *e > start && *s < end).collect();
    sorted.sort_unstable();
    let mut out = Vec::new();
    let mut cursor = start;
    for (s, e) in sorted {
        if s > cursor {
            out.push((cursor, s.min(end)));
        }
        cursor = cursor.max(e);
        if cursor >= end {
            break;
        }
    }
    if cursor < end {
        out.push((cursor, end));
    }
    out
}

/// The visible pieces of a room's items under `policy`; `min_piece` in µs.
pub fn resolve(items: &[Item], policy: OverlapPolicy, min_piece: i64) -> Vec<Piece> {
    let mut by_kind: BTreeMap<i16, Vec<(i64, i64)>> = BTreeMap::new();
    for item in items {
        by_kind.entry(item.kind.priority()).or_default().push((item.start, item.end));
    }
    let mut out = Vec::new();
    for item in items {
        let higher: Vec<(i64, i64)> = by_kind
            .iter()
            .filter(|(priority, _)| **priority < item.kind.priority())
            .flat_map(|(_, spans)| spans.iter().copied())
            .collect();
        let parts = match policy {
            OverlapPolicy::ShowAll => vec![(item.start, item.end)],
            OverlapPolicy::Hide => {
                if higher.iter().any(|(s, e)| *e > item.start && *s < item.end) {
                    Vec::new()
                } else {
                    vec![(item.start, item.end)]
                }
            }
            OverlapPolicy::Trim => {
                subtract(item.start, item.end, &higher).into_iter().filter(|(s, e)| e - s >= min_piece).collect()
            }
        };
        let split = parts.len() > 1;
        for (n, (start, end)) in parts.into_iter().enumerate() {
            out.push(Piece {
                kind: item.kind,
                reservation_id: item.reservation_id,
                start,
                end,
                piece: split.then_some(n + 1),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000;

    fn item(kind: ReservationKind, id: i32, start_min: i64, end_min: i64) -> Item {
        Item { kind, reservation_id: id, start: start_min * MIN, end: end_min * MIN }
    }

    fn spans(pieces: &[Piece], id: i32) -> Vec<(i64, i64, Option<usize>)> {
        pieces.iter().filter(|p| p.reservation_id == id).map(|p| (p.start / MIN, p.end / MIN, p.piece)).collect()
    }

    #[test]
    fn trim_splits_an_allocation_around_a_booking_into_numbered_pieces() {
        let items = [item(ReservationKind::Allocation, 101, 0, 120), item(ReservationKind::Booking, 201, 30, 60)];
        let pieces = resolve(&items, OverlapPolicy::Trim, MIN);
        assert_eq!(spans(&pieces, 101), vec![(0, 30, Some(1)), (60, 120, Some(2))]);
        assert_eq!(spans(&pieces, 201), vec![(30, 60, None)]);
        let keys: Vec<String> = pieces.iter().map(Piece::item_key).collect();
        assert!(keys.contains(&"allocation:101:1".to_owned()) && keys.contains(&"allocation:101:2".to_owned()));
    }

    #[test]
    fn trim_to_one_piece_keeps_the_plain_key() {
        let items = [item(ReservationKind::Allocation, 101, 0, 120), item(ReservationKind::Booking, 201, 0, 60)];
        let pieces = resolve(&items, OverlapPolicy::Trim, MIN);
        assert_eq!(spans(&pieces, 101), vec![(60, 120, None)]);
        assert_eq!(pieces.iter().find(|p| p.reservation_id == 101).map(Piece::item_key), Some("allocation:101".into()));
    }

    #[test]
    fn pieces_shorter_than_one_minute_are_dropped() {
        let items = [
            Item { kind: ReservationKind::Allocation, reservation_id: 101, start: 0, end: 120 * MIN },
            Item { kind: ReservationKind::Event, reservation_id: 301, start: 30_000_000, end: 120 * MIN - MIN },
        ];
        let pieces = resolve(&items, OverlapPolicy::Trim, MIN);
        // 30 s before the event is dropped; exactly one minute after it stays, as the only piece.
        assert_eq!(spans(&pieces, 101), vec![(119, 120, None)]);
    }

    #[test]
    fn an_allocation_fully_covered_by_bookings_disappears() {
        let items = [
            item(ReservationKind::Allocation, 101, 0, 120),
            item(ReservationKind::Booking, 201, 0, 60),
            item(ReservationKind::Booking, 202, 60, 120),
        ];
        assert!(spans(&resolve(&items, OverlapPolicy::Trim, MIN), 101).is_empty());
    }

    #[test]
    fn items_of_equal_priority_are_all_shown() {
        let items = [item(ReservationKind::Event, 301, 0, 60), item(ReservationKind::Event, 302, 30, 90)];
        let pieces = resolve(&items, OverlapPolicy::Trim, MIN);
        assert_eq!(spans(&pieces, 301), vec![(0, 60, None)]);
        assert_eq!(spans(&pieces, 302), vec![(30, 90, None)]);
    }

    #[test]
    fn hide_drops_a_lower_item_that_overlaps_at_all() {
        let items = [item(ReservationKind::Allocation, 101, 0, 120), item(ReservationKind::Event, 301, 110, 130)];
        let pieces = resolve(&items, OverlapPolicy::Hide, MIN);
        assert!(spans(&pieces, 101).is_empty());
        assert_eq!(spans(&pieces, 301), vec![(110, 130, None)]);
    }

    #[test]
    fn show_all_keeps_every_item_whole() {
        let items = [item(ReservationKind::Allocation, 101, 0, 120), item(ReservationKind::Event, 301, 30, 60)];
        let pieces = resolve(&items, OverlapPolicy::ShowAll, MIN);
        assert_eq!(spans(&pieces, 101), vec![(0, 120, None)]);
        assert_eq!(spans(&pieces, 301), vec![(30, 60, None)]);
    }
}
