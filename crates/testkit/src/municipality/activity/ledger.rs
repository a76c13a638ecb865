//! What the activity remembers of the database: the reservations of the recent past and the future (from the
//! load, then from its own changes) and the rows per season. It decides from this memory alone, never from a
//! query, so rows someone else writes (roomsync's imported events) cannot change its choices.
//!
//! Hard-deleted reservations stay as tombstones, so the indexes of the others (and the allocation index) stay
//! valid.

use std::collections::HashMap;

use chrono::{Days, NaiveDate, NaiveDateTime};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use vocabulary::ReservationKind;

use super::super::calendar::{Calendar, Status};
use super::super::events::Event;

/// How far back reservations stay in memory (and may still be cancelled or reactivated).
pub const RECENT_DAYS: u64 = 28;

/// A reservation the activity may act on.
#[derive(Debug, Clone)]
pub struct Known {
    /// Its table.
    pub kind: ReservationKind,
    /// Its id.
    pub id: i32,
    /// Season id (allocations and bookings).
    pub season: Option<i32>,
    /// Allocation id (bookings).
    pub allocation: Option<i32>,
    /// Organization index (allocations and bookings).
    pub organization: Option<usize>,
    /// Resource indexes.
    pub resources: Vec<usize>,
    /// `from_`.
    pub from: NaiveDateTime,
    /// `to_`.
    pub to: NaiveDateTime,
    /// `active`.
    pub active: bool,
    /// Active bookings inside (allocations).
    pub bookings: u32,
    /// Hard-deleted: a tombstone.
    pub deleted: bool,
}

/// A season's id, status and rows in bb_allocation, bb_booking and their link tables.
#[derive(Debug, Clone)]
pub struct SeasonRows {
    /// `bb_season.id`.
    pub id: i32,
    /// `bb_season.status`.
    pub status: Status,
    /// Rows a delete of the season removes.
    pub rows: u64,
}

/// The remembered reservations and seasons.
#[derive(Clone, Default)]
pub struct Ledger {
    /// Reservations, tombstones included.
    pub known: Vec<Known>,
    /// Allocation id -> index in `known`.
    allocations: HashMap<i32, usize>,
    /// Seasons, in id order.
    pub seasons: Vec<SeasonRows>,
}

impl std::fmt::Debug for Ledger {
    /// Counts only: at full size the ledger holds tens of thousands of reservations.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let deleted = self.known.iter().filter(|k| k.deleted).count();
        f.debug_struct("Ledger")
            .field("remembered", &(self.known.len() - deleted))
            .field("deleted", &deleted)
            .field("seasons", &self.seasons.len())
            .finish()
    }
}

impl Ledger {
    /// The ledger of a freshly loaded municipality on `today`.
    pub fn new(calendar: &Calendar, events: &[Event], today: NaiveDate) -> Ledger {
        let recent = today - Days::new(RECENT_DAYS);
        let mut ledger = Ledger {
            seasons: calendar.seasons.iter().map(|s| SeasonRows { id: s.id, status: s.status, rows: 0 }).collect(),
            ..Ledger::default()
        };
        for a in &calendar.allocations {
            let template = &calendar.templates[a.template];
            ledger.seasons[template.season].rows += 1 + template.resources.len() as u64;
            if a.to.date() >= recent {
                ledger.remember(Known {
                    kind: ReservationKind::Allocation,
                    id: a.id,
                    season: Some(calendar.seasons[template.season].id),
                    allocation: None,
                    organization: Some(template.organization),
                    resources: template.resources.clone(),
                    from: a.from,
                    to: a.to,
                    active: a.active,
                    bookings: 0,
                    deleted: false,
                });
            }
        }
        for b in &calendar.bookings {
            let allocation = &calendar.allocations[b.allocation];
            let template = &calendar.templates[allocation.template];
            ledger.seasons[template.season].rows += 1 + template.resources.len() as u64;
            if b.to.date() >= recent {
                ledger.remember(Known {
                    kind: ReservationKind::Booking,
                    id: b.id,
                    season: Some(calendar.seasons[template.season].id),
                    allocation: Some(allocation.id),
                    organization: Some(template.organization),
                    resources: template.resources.clone(),
                    from: b.from,
                    to: b.to,
                    active: b.active,
                    bookings: 0,
                    deleted: false,
                });
            }
        }
        for e in events.iter().filter(|e| e.to.date() >= recent) {
            ledger.remember(Known {
                kind: ReservationKind::Event,
                id: e.id,
                season: None,
                allocation: None,
                organization: None,
                resources: e.resources.clone(),
                from: e.from,
                to: e.to,
                active: e.active,
                bookings: 0,
                deleted: false,
            });
        }
        ledger
    }

    /// Adds a reservation; a booking counts in its allocation.
    pub fn remember(&mut self, known: Known) {
        if known.kind == ReservationKind::Allocation {
            self.allocations.insert(known.id, self.known.len());
        }
        if known.kind == ReservationKind::Booking {
            self.count_booking(known.allocation, known.active, 1);
        }
        self.known.push(known);
    }

    /// The allocation with id `id`, if remembered.
    pub fn allocation(&self, id: Option<i32>) -> Option<&Known> {
        id.and_then(|id| self.allocations.get(&id)).and_then(|i| self.known.get(*i))
    }

    /// Adds `delta` to an allocation's count of active bookings when `active`.
    pub fn count_booking(&mut self, allocation: Option<i32>, active: bool, delta: i32) {
        if !active {
            return;
        }
        if let Some(a) = allocation.and_then(|a| self.allocations.get(&a)).and_then(|i| self.known.get_mut(*i)) {
            a.bookings = a.bookings.saturating_add_signed(delta);
        }
    }

    /// Records a booking's new allocation and state (moves, saves, cancellations).
    pub fn update_booking(&mut self, index: usize, allocation: Option<i32>, active: bool) {
        let Some(b) = self.known.get(index) else { return };
        let (old_allocation, was_active) = (b.allocation, b.active);
        self.count_booking(old_allocation, was_active, -1);
        self.count_booking(allocation, active, 1);
        if let Some(b) = self.known.get_mut(index) {
            b.allocation = allocation;
            b.active = active;
        }
    }

    /// Whether an active event holds one of `resources` during `from..to` (`except` aside).
    pub fn event_clash(&self, resources: &[usize], from: NaiveDateTime, to: NaiveDateTime, except: i32) -> bool {
        self.known.iter().any(|k| {
            k.kind == ReservationKind::Event
                && k.active
                && !k.deleted
                && k.id != except
                && k.from < to
                && from < k.to
                && k.resources.iter().any(|r| resources.contains(r))
        })
    }

    /// Forgets every reservation of `season` (hard-deleted) and zeroes its rows.
    pub fn forget_season(&mut self, season: i32) {
        for k in self.known.iter_mut().filter(|k| k.season == Some(season)) {
            k.deleted = true;
        }
        if let Some(s) = self.seasons.iter_mut().find(|s| s.id == season) {
            s.rows = 0;
        }
    }

    /// Adds rows to `season`'s count.
    pub fn add_rows(&mut self, season: Option<i32>, rows: u64) {
        if let Some(s) = self.seasons.iter_mut().find(|s| Some(s.id) == season) {
            s.rows += rows;
        }
    }

    /// Whether `season` is not archived.
    pub fn season_open(&self, season: Option<i32>) -> bool {
        self.seasons.iter().any(|s| Some(s.id) == season && s.status != Status::Archived)
    }

    /// Chooses a remembered reservation satisfying `wanted`: a few random tries, then a scan, so the choice is
    /// cheap when many qualify and still finds the one that does when few do.
    pub fn pick(&self, rng: &mut StdRng, wanted: impl Fn(&Known) -> bool) -> Option<usize> {
        if self.known.is_empty() {
            return None;
        }
        for _ in 0..64 {
            let i = rng.gen_range(0..self.known.len());
            if !self.known[i].deleted && wanted(&self.known[i]) {
                return Some(i);
            }
        }
        let all: Vec<usize> =
            (0..self.known.len()).filter(|i| !self.known[*i].deleted && wanted(&self.known[*i])).collect();
        all.choose(rng).copied()
    }
}
