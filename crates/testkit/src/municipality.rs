//! A seeded generator of a PorticoEstate booking database shaped like a large Norwegian municipality after a
//! few years of use, for integration tests (small sizes, seconds) and the benchmark (about a million
//! reservation rows, minutes).
//!
//! Two phases:
//!
//! ```text
//!  load(client, sizes, seed, today)            Activity::new(&summary, seed).step(client)  (repeated)
//!   history, written by COPY in one             one booking-system change per call, in its own transaction,
//!   transaction before any CDC reader starts    written as PorticoEstate writes it (see [`Activity`])
//!            |                                          ^
//!            +--------------- Summary -------------------+
//!              counts, room mailboxes, seasons, and the reservations an activity may act on
//! ```
//!
//! **Shape.** Buildings of six kinds (schools, sports halls, culture houses, pitches, pools, community houses)
//! with their resources (bb_building_resource; a few pitches shared with a school), most resources mapped to a
//! room mailbox (`bb_resource_outlook_item`, a few mappings inactive), clubs and associations
//! (bb_organization) with their teams (bb_group). Each building has two seasons a year (autumn: ISO week 34 to
//! 20 December; spring: ISO week 2 to 20 June) from `years` before `today` to the seasons starting within
//! [`FUTURE_DAYS`] after it; seasons ended more than three months ago are `ARCHIVED` (2 % of them also
//! `active = 0`), the others `PUBLISHED` but a quarter of those not yet started, still `PLANNING`
//! (docs/booking-schema.md §2 bb_season). Each season has a
//! week template (bb_wtemplate_alloc: a club's weekly slot, say Tuesdays 18:00-19:30, on one resource or
//! now and then two) materialised as one bb_allocation row per week with its bb_allocation_resource rows
//! (§4); clubs hand 40 % of their slots on to their groups as bookings inside each occurrence (the whole slot,
//! a part of it, or two groups one after the other). One-off events (bb_event, one bb_event_date row each,
//! §2) fill the rest: meetings, concerts, tournaments (often on several parts of a hall), private parties
//! (`is_public = 0`), the municipality's own, and closures on several rooms for days. Resources are
//! independent, as in the booking system: a whole hall and its thirds can be allocated at the same time.
//!
//! **The way the real system writes rows** (docs/booking-schema.md §1-§4): flags are int 0/1; times are
//! Europe/Oslo wall clock in `timestamp without time zone`, a weekly slot keeping its wall-clock time across
//! DST changes; `id_string = id`; `secret` is 32 hex digits; `building_name` is copied into every reservation;
//! rows that ended more than [`BILLING_LAG_DAYS`] before `today` are `completed` (the billing cron);
//! cancellations are soft (`active = 0`: about 3 % of allocations, with their bookings half the time, 2.5 % of
//! bookings on their own, 6 % of events, past and future alike). A reservation cancelled and reactivated in the
//! history is simply active now (the [`Activity`] makes real reactivations); for events that were saved again
//! later, the bb_event_date row carries a later id than those of events made after them, as the
//! delete-and-insert of every save leaves it (§2 bb_event_date). There are no applications (`application_id`
//! is NULL everywhere) and no cart holds (bb_block).
//!
//! **Determinism.** Everything comes from one [`StdRng`] seeded with `seed`, iterated in a fixed order: the same
//! seed, sizes and `today` give the same rows, ids and sequence positions. The load first empties every table
//! it owns (including the reference tables bb_activity, bb_rescategory and phpgw_accounts, which it fills again
//! with `bb_sample.sql`'s ids plus a few), so the result does not depend on what the database held.

mod activity;
mod calendar;
mod catalogue;
mod copy;
mod events;
mod names;
mod tables;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{ensure, Result};
use chrono::{Datelike, Days, NaiveDate};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio_postgres::Client;

pub use activity::{Activity, Change, ChangeKind, Mix};

/// How far after `today` the generated seasons may start (the current and the next season), in days.
pub const FUTURE_DAYS: u64 = 200;
/// Rows that ended more than this many days before `today` are `completed = 1` (the billing cron runs nightly;
/// the last days are left for [`ChangeKind::BillingRun`]).
pub const BILLING_LAG_DAYS: u64 = 2;

/// The size of the generated municipality.
#[derive(Debug, Clone, PartialEq)]
pub struct Sizes {
    /// Buildings (`bb_building`); about 3 % of them closed (`active = 0`) during the history.
    pub buildings: usize,
    /// Resources (`bb_resource`), at least one per building; about 2 % retired during the history.
    pub resources: usize,
    /// Resources mapped to a room mailbox with `active = 1` in `bb_resource_outlook_item` (at most the resources
    /// in use).
    pub mapped_resources: usize,
    /// Further mapping rows with `active = 0` (retired rooms first).
    pub inactive_mappings: usize,
    /// Organizations (`bb_organization`), the municipality itself included.
    pub organizations: usize,
    /// Groups (`bb_group`); every club gets at least one, so at least `organizations - 1` are made.
    pub groups: usize,
    /// Years of history before `today`.
    pub years: u32,
    /// Mean weekly allocation slots per resource and season; halls get about twice as many, meeting rooms and
    /// classrooms about a third. Every slot is one bb_allocation row per week of its season.
    pub weekly_slots: f64,
    /// One-off events (`bb_event`) per year.
    pub events_per_year: usize,
}

impl Sizes {
    /// A large municipality after five years: 60 buildings, 500 resources (400 mapped), about a million rows
    /// in bb_allocation, bb_booking, bb_event and their resource link tables together.
    pub fn full() -> Sizes {
        Sizes {
            buildings: 60,
            resources: 500,
            mapped_resources: 400,
            inactive_mappings: 6,
            organizations: 900,
            groups: 2200,
            years: 5,
            weekly_slots: 3.9,
            events_per_year: 9000,
        }
    }

    /// The same shape for tests: 6 buildings, 30 resources (24 mapped), 2 years, a few thousand reservation
    /// rows.
    pub fn small() -> Sizes {
        Sizes {
            buildings: 6,
            resources: 30,
            mapped_resources: 24,
            inactive_mappings: 2,
            organizations: 30,
            groups: 60,
            years: 2,
            weekly_slots: 0.7,
            events_per_year: 150,
        }
    }

    /// Refuses sizes the generator cannot build.
    fn check(&self) -> Result<()> {
        ensure!(self.buildings > 0, "sizes: at least one building");
        ensure!(self.resources >= self.buildings, "sizes: at least one resource per building");
        ensure!(self.organizations >= 2, "sizes: the municipality and at least one club");
        ensure!((1..=50).contains(&self.years), "sizes: 1 to 50 years of history");
        ensure!(self.weekly_slots.is_finite() && self.weekly_slots >= 0.0, "sizes: weekly_slots must be >= 0");
        ensure!(self.mapped_resources <= self.resources, "sizes: more mapped resources than resources");
        Ok(())
    }
}

/// A resource with a room mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    /// `bb_resource.id`.
    pub resource_id: i32,
    /// `bb_resource.name`, also `outlook_item_name`.
    pub name: String,
    /// `bb_building.id` of its building.
    pub building_id: i32,
    /// `bb_building.name` of its building.
    pub building_name: String,
    /// `outlook_item_id`: the room mailbox, e.g. `nordby-idrettshall.hall-1-3-a@fjordvik.kommune.no`.
    pub mailbox: String,
    /// `bb_resource_outlook_item.active`.
    pub mapping_active: bool,
    /// `bb_resource.active`.
    pub resource_active: bool,
    /// `bb_resource.capacity`.
    pub capacity: Option<i32>,
}

/// A season and how many reservation rows it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeasonSummary {
    /// `bb_season.id`.
    pub id: i32,
    /// `bb_season.building_id`.
    pub building_id: i32,
    /// `bb_season.name`.
    pub name: String,
    /// `bb_season.status`: `PLANNING`, `PUBLISHED` or `ARCHIVED`.
    pub status: &'static str,
    /// `bb_season.active`.
    pub active: bool,
    /// `bb_season.from_`.
    pub from: NaiveDate,
    /// `bb_season.to_`.
    pub to: NaiveDate,
    /// Its bb_allocation rows.
    pub allocations: u64,
    /// Its bb_booking rows.
    pub bookings: u64,
    /// Its rows in bb_allocation, bb_booking, bb_allocation_resource and bb_booking_resource together: what
    /// deleting the season deletes.
    pub rows: u64,
}

/// What [`load`] wrote.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The seed.
    pub seed: u64,
    /// The day the history leads up to.
    pub today: NaiveDate,
    /// Rows per table, for every table the load owns (empty ones included).
    pub counts: BTreeMap<String, u64>,
    /// Every mapped resource (active and inactive mappings), in resource id order.
    pub rooms: Vec<Room>,
    /// Every season, in id order.
    pub seasons: Vec<SeasonSummary>,
    /// What an [`Activity`] starts from: the catalogue and the reservations it may act on.
    world: Arc<activity::World>,
}

/// The reservation tables and their resource link tables: what the sizes are about.
pub const RESERVATION_TABLES: [&str; 6] =
    ["bb_allocation", "bb_allocation_resource", "bb_booking", "bb_booking_resource", "bb_event", "bb_event_resource"];

impl Summary {
    /// Rows of `table` (0 for a table the load does not own).
    pub fn count(&self, table: &str) -> u64 {
        self.counts.get(table).copied().unwrap_or(0)
    }

    /// Rows in the six [`RESERVATION_TABLES`] together.
    pub fn reservation_rows(&self) -> u64 {
        RESERVATION_TABLES.iter().map(|t| self.count(t)).sum()
    }

    /// The seasons that are published, active and running on `today`.
    pub fn current_seasons(&self) -> impl Iterator<Item = &SeasonSummary> + '_ {
        self.seasons
            .iter()
            .filter(|s| s.status == "PUBLISHED" && s.active && s.from <= self.today && self.today <= s.to)
    }

    /// The season with the most reservation rows (the smallest id among equals).
    pub fn largest_season(&self) -> Option<&SeasonSummary> {
        self.seasons.iter().max_by_key(|s| (s.rows, -s.id))
    }

    /// The resource ids with an active mapping.
    pub fn mapped_resource_ids(&self) -> Vec<i32> {
        self.rooms.iter().filter(|r| r.mapping_active).map(|r| r.resource_id).collect()
    }
}

/// Replaces the booking tables' content with a municipality of `sizes`, its history reaching `years` back from
/// `today` and its seasons some months beyond; all in one transaction, by COPY. Run it before roomsync's CDC
/// reader starts: the transaction is as large as the history.
pub async fn load(client: &Client, sizes: &Sizes, seed: u64, today: NaiveDate) -> Result<Summary> {
    sizes.check()?;
    let mut rng = StdRng::seed_from_u64(seed);
    let start = today
        .with_year(today.year() - i32::try_from(sizes.years)?)
        .unwrap_or(today - Days::new(365 * u64::from(sizes.years)));
    let catalogue = catalogue::Catalogue::generate(&mut rng, sizes, start, today);
    let calendar = calendar::Calendar::generate(&mut rng, sizes, &catalogue, start, today);
    let events = events::generate(&mut rng, sizes, &catalogue, start, today);
    let counts = tables::write(client, &catalogue, &calendar, &events).await?;

    let rooms = catalogue
        .mappings
        .iter()
        .filter_map(|m| {
            let resource = catalogue.resources.get(m.resource)?;
            let building = catalogue.buildings.get(resource.building)?;
            Some(Room {
                resource_id: resource.id,
                name: resource.name.clone(),
                building_id: building.id,
                building_name: building.name.clone(),
                mailbox: m.mailbox.clone(),
                mapping_active: m.active,
                resource_active: resource.retired.is_none(),
                capacity: resource.capacity,
            })
        })
        .collect();
    let mut seasons: Vec<SeasonSummary> = calendar
        .seasons
        .iter()
        .map(|s| SeasonSummary {
            id: s.id,
            building_id: catalogue.buildings.get(s.building).map_or(0, |b| b.id),
            name: s.name.clone(),
            status: s.status.as_str(),
            active: s.active,
            from: s.from,
            to: s.to,
            allocations: 0,
            bookings: 0,
            rows: 0,
        })
        .collect();
    for a in &calendar.allocations {
        if let Some(s) = seasons.get_mut(calendar.templates[a.template].season) {
            s.allocations += 1;
        }
    }
    for b in &calendar.bookings {
        let allocation = &calendar.allocations[b.allocation];
        if let Some(s) = seasons.get_mut(calendar.templates[allocation.template].season) {
            s.bookings += 1;
        }
    }
    let world = activity::World::new(catalogue, &calendar, &events, today);
    for (season, (_, rows)) in seasons.iter_mut().zip(world.season_rows()) {
        season.rows = rows;
    }
    Ok(Summary { seed, today, counts, rooms, seasons, world: Arc::new(world) })
}
