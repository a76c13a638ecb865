//! What the workload works on and what it remembers: the mapped rooms it uses, the seasons it owns, how it picks
//! times (ordinary days, the spring gap of 2027-03-28, the autumn fold of 2026-10-25, all-day spans), and the
//! history the oracle and the loop bound need (Outlook bookings as they are now, touches per reservation).
//!
//! Invariant: the history holds only what the generator observed to be true after each action (an Outlook
//! booking is recorded as the emulator stores it after the call, whatever the call answered), so the oracle
//! never trusts an answer that a fault may have garbled.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Days, Duration as TimeDelta, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use rand::rngs::StdRng;
use rand::Rng;

/// A mapped room the workload books.
#[derive(Debug, Clone, Copy)]
pub struct Room {
    /// bb_resource.id
    pub resource: i32,
    /// The room mailbox (fixtures/local/room_mappings.sql).
    pub mailbox: &'static str,
    /// bb_building.id
    pub building: i32,
    /// bb_building.name (denormalised into reservations).
    pub building_name: &'static str,
    /// The season the workload creates for the building.
    pub season: i32,
}

/// Two rooms in the sports hall, two in the culture house.
pub const ROOMS: [Room; 4] = [
    Room {
        resource: 1,
        mailbox: "hall-a@fjordvik.kommune.no",
        building: 1,
        building_name: "Fjordvik idrettshall",
        season: 10,
    },
    Room {
        resource: 2,
        mailbox: "hall-b@fjordvik.kommune.no",
        building: 1,
        building_name: "Fjordvik idrettshall",
        season: 10,
    },
    Room {
        resource: 4,
        mailbox: "storsalen@fjordvik.kommune.no",
        building: 3,
        building_name: "Kulturhuset Fjordvik",
        season: 11,
    },
    Room {
        resource: 5,
        mailbox: "moterom-fjorden@fjordvik.kommune.no",
        building: 3,
        building_name: "Kulturhuset Fjordvik",
        season: 11,
    },
];

/// The seasons the workload owns (and changes), created before the stages start.
pub const SEASONS: [i32; 2] = [10, 11];

/// Season rows and their resources; runs before any stage starts.
pub const PREPARE: &str = "
    insert into bb_season (id, officer_id, active, building_id, name, status, from_, to_) values
        (10, 1001, 1, 1, 'Hallsesong kaos', 'PUBLISHED', '2026-08-01', '2027-07-31'),
        (11, 1002, 1, 3, 'Kulturhuset kaos', 'PUBLISHED', '2026-08-01', '2027-07-31');
    insert into bb_season_resource (season_id, resource_id) values (10, 1), (10, 2), (11, 4), (11, 5);";

/// The spring change inside the window: 02:00-03:00 local does not exist.
pub const SPRING_GAP_DAY: (i32, u32, u32) = (2027, 3, 28);
/// The autumn change inside the window: 02:00-03:00 local happens twice.
pub const AUTUMN_FOLD_DAY: (i32, u32, u32) = (2026, 10, 25);

pub use testkit::oracle::Kind;

/// An Outlook-origin booking as the room calendar holds it now.
#[derive(Debug, Clone, PartialEq)]
pub struct OutlookBooking {
    /// Room mailbox.
    pub mailbox: String,
    /// Subject.
    pub subject: String,
    /// Start of the (first) occurrence.
    pub start: DateTime<Utc>,
    /// End of the (first) occurrence.
    pub end: DateTime<Utc>,
    /// Weekly occurrences (1 = a single event).
    pub occurrences: u32,
}

/// What the generator did, as far as the checks need it.
#[derive(Debug, Default)]
pub struct History {
    /// Booking-system writes per reservation (inserts, saves, cancellations, deletions).
    pub touches: HashMap<(Kind, i32), usize>,
    /// Changes that touch many reservations at once (season changes, bulk updates, link bursts).
    pub bulk_changes: usize,
    /// Outlook-origin bookings that still exist, by event id.
    pub outlook_bookings: BTreeMap<String, OutlookBooking>,
    /// Outlook-origin bookings deleted by their owner, by event id.
    pub deleted_outlook_bookings: BTreeMap<String, OutlookBooking>,
    /// Outlook-origin bookings that end, and so leave the sync window, while the test runs (by event id; also in
    /// `outlook_bookings`): their imports must keep their state.
    pub aging_outlook_bookings: std::collections::BTreeSet<String>,
    /// Outlook edits and deletions of roomsync's events, by event id.
    pub roomsync_event_edits: HashMap<String, usize>,
    /// Successful Graph writes the simulated Outlook users made, by event id (not roomsync's writes).
    pub user_writes: HashMap<String, usize>,
    /// Every action, in order (the tail goes into failure messages).
    pub actions: Vec<String>,
}

impl History {
    /// Counts a booking-system write to a reservation.
    pub fn touch(&mut self, kind: Kind, id: i32) {
        *self.touches.entry((kind, id)).or_default() += 1;
    }

    /// Logs an action.
    pub fn log(&mut self, action: String) {
        self.actions.push(action);
    }
}

fn date((y, m, d): (i32, u32, u32)) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

/// Today's date in Oslo.
pub fn today() -> NaiveDate {
    Utc::now().with_timezone(&chrono_tz::Europe::Oslo).date_naive()
}

fn at(day: NaiveDate, minutes: u32) -> NaiveDateTime {
    day.and_time(NaiveTime::MIN) + TimeDelta::minutes(i64::from(minutes))
}

/// A local interval: mostly ordinary evenings in the next months, sometimes on a DST change day at night, or
/// (when `all_day` is allowed) one or two whole days.
pub fn pick_slot(rng: &mut StdRng, all_day: bool) -> (NaiveDateTime, NaiveDateTime) {
    let roll = rng.gen_range(0..100);
    if all_day && roll < 8 {
        let day = today() + Days::new(rng.gen_range(3..140));
        return (at(day, 0), at(day + Days::new(rng.gen_range(1..=2)), 0));
    }
    if roll < 24 {
        let day = if roll < 16 { date(SPRING_GAP_DAY) } else { date(AUTUMN_FOLD_DAY) };
        let start = at(day, rng.gen_range(4..12) * 15);
        return (start, start + TimeDelta::minutes(rng.gen_range(1..=8) * 15));
    }
    let day = today() + Days::new(rng.gen_range(2..140));
    let start = at(day, rng.gen_range(28..84) * 15);
    (start, start + TimeDelta::minutes(rng.gen_range(2..=12) * 15))
}

/// A slot on the days after the booking system's range (still inside the horizon): nothing ever overlaps it.
pub fn pick_outlook_only_slot(rng: &mut StdRng) -> (NaiveDateTime, NaiveDateTime) {
    let day = today() + Days::new(rng.gen_range(150..170));
    let start = at(day, rng.gen_range(32..80) * 15);
    (start, start + TimeDelta::minutes(rng.gen_range(2..=8) * 15))
}

/// The first day of a weekly series that crosses the spring change (three weeks before it).
pub fn series_across_spring_change(rng: &mut StdRng) -> NaiveDate {
    date(SPRING_GAP_DAY) - Days::new(rng.gen_range(14..22))
}

/// Workload scenarios that can be switched off with `ROOMSYNC_CHAOS_SKIP` (comma-separated), to mark a scenario
/// that meets a known pipeline bug (listed in tests/convergence/FINDINGS.md) without weakening the oracle.
pub const SCENARIOS: [&str; 5] = [
    // A reservation later lands on an imported Outlook booking (F8). Switched off, Outlook users book free slots
    // only on days the booking system never uses (their deliberate conflicts stay).
    "reservation-over-imported-booking",
    // Someone deletes roomsync's event in Outlook (F1, F9).
    "outlook-deletes-roomsync-event",
    // An owner deletes their Outlook booking: the import is cancelled (F1).
    "outlook-owner-deletes-booking",
    // Outlook users book weekly series.
    "outlook-series",
    // Outlook users move their own bookings (onto or off reservations).
    "outlook-moves-own-booking",
];

/// Whether a scenario of [`SCENARIOS`] is switched off.
pub fn skipped(scenario: &str) -> bool {
    match std::env::var("ROOMSYNC_CHAOS_SKIP") {
        Ok(list) => list.split(',').any(|s| s.trim() == scenario),
        Err(_) => KNOWN_BROKEN_SCENARIOS.contains(&scenario),
    }
}

/// Scenarios switched off when `ROOMSYNC_CHAOS_SKIP` is not set: none since F9 and F10 were fixed (seeds 11, 12,
/// 13, 21-24 and 20261123 converged with every scenario on). A scenario that meets a new pipeline bug goes here,
/// with its finding, until the bug is fixed.
pub const KNOWN_BROKEN_SCENARIOS: [&str; 0] = [];

/// A readable, unique subject.
pub fn subject(rng: &mut StdRng, prefix: &str, n: usize) -> String {
    const WORDS: [&str; 6] = ["Årsmøte", "Trening", "Øving", "Kurs", "Dugnad", "Konsert"];
    format!("{prefix} {} {n}", WORDS[rng.gen_range(0..WORDS.len())])
}
