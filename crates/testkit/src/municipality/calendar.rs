//! Seasons and what the booking system materialises in them: the week template (bb_wtemplate_alloc), one
//! allocation per template slot and week (docs/booking-schema.md §4), and the bookings with which a club hands
//! (parts of) its slots to its groups.
//!
//! Invariants the tests check:
//! - two allocation slots of a season never overlap on a resource (the template is built on a quarter-hour
//!   occupancy grid per resource and weekday);
//! - a booking lies inside its allocation, on the same resources, in the same season, for a group of the
//!   allocation's organization;
//! - an `ARCHIVED` season ended before `today`; a season that has not started is `PUBLISHED` or `PLANNING`;
//! - allocations repeat at the same wall-clock time every week, across DST changes (the week is added to the
//!   Europe/Oslo wall clock, as upstream's loops do).

use std::ops::Range;

use chrono::{Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, Weekday};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;

use super::catalogue::{Catalogue, Kind};
use super::names::OFFICERS;
use super::{Sizes, BILLING_LAG_DAYS, FUTURE_DAYS};

/// Share of allocations cancelled (`active = 0`).
const CANCELLED_ALLOCATIONS: f64 = 0.03;
/// Share of bookings cancelled on their own (their allocation stays).
const CANCELLED_BOOKINGS: f64 = 0.025;
/// Share of template slots whose organization hands them to its groups as bookings.
const BOOKED_SLOTS: f64 = 0.4;
/// Share of template slots on two resources of the building (two thirds of a hall, say).
const TWO_ROOM_SLOTS: f64 = 0.04;

/// A season's status, as `bb_season.status` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Being prepared: its allocations are not public.
    Planning,
    /// Public.
    Published,
    /// Over and filed.
    Archived,
}

impl Status {
    /// The column value.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Planning => "PLANNING",
            Status::Published => "PUBLISHED",
            Status::Archived => "ARCHIVED",
        }
    }
}

/// A `bb_season` row with its `bb_season_resource` links.
#[derive(Debug, Clone)]
pub struct Season {
    /// `id`.
    pub id: i32,
    /// Index into [`Catalogue::buildings`].
    pub building: usize,
    /// `name`.
    pub name: String,
    /// `status`.
    pub status: Status,
    /// `active`.
    pub active: bool,
    /// `from_`.
    pub from: NaiveDate,
    /// `to_`.
    pub to: NaiveDate,
    /// `officer_id`.
    pub officer: i32,
    /// Indexes into [`Catalogue::resources`] of the resources it covers.
    pub resources: Vec<usize>,
}

/// A `bb_wtemplate_alloc` row with its resources.
#[derive(Debug, Clone)]
pub struct Template {
    /// `id`.
    pub id: i32,
    /// Index into [`Calendar::seasons`].
    pub season: usize,
    /// Index into [`Catalogue::organizations`].
    pub organization: usize,
    /// ISO weekday, 1 = Monday.
    pub wday: u32,
    /// Start of the slot.
    pub from: NaiveTime,
    /// End of the slot.
    pub to: NaiveTime,
    /// Price of one occurrence, in øre.
    pub cost: i64,
    /// Indexes into [`Catalogue::resources`].
    pub resources: Vec<usize>,
}

/// A `bb_allocation` row; its resources are its template's.
#[derive(Debug, Clone)]
pub struct Allocation {
    /// `id`.
    pub id: i32,
    /// Index into [`Calendar::templates`].
    pub template: usize,
    /// `from_`.
    pub from: NaiveDateTime,
    /// `to_`.
    pub to: NaiveDateTime,
    /// `active`.
    pub active: bool,
    /// `completed`.
    pub completed: bool,
    /// `additional_invoice_information` is set.
    pub invoice_note: bool,
}

/// A `bb_booking` row; its season and resources are its allocation's.
#[derive(Debug, Clone)]
pub struct Booking {
    /// `id`.
    pub id: i32,
    /// Index into [`Calendar::allocations`].
    pub allocation: usize,
    /// Index into [`Catalogue::groups`].
    pub group: usize,
    /// `from_`.
    pub from: NaiveDateTime,
    /// `to_`.
    pub to: NaiveDateTime,
    /// `active`.
    pub active: bool,
    /// `completed`.
    pub completed: bool,
    /// `secret`.
    pub secret: String,
}

/// Every season with its template, allocations and bookings.
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    /// Seasons, in id order (by start date, then building).
    pub seasons: Vec<Season>,
    /// Week template slots, in id order.
    pub templates: Vec<Template>,
    /// Allocations, in id order (season by season, day by day, as `generate_allocation` writes them).
    pub allocations: Vec<Allocation>,
    /// Bookings, in id order.
    pub bookings: Vec<Booking>,
}

/// Opening hours of a building kind on ISO weekday `wday`, in minutes after midnight.
pub fn opening_hours(kind: Kind, wday: u32) -> Option<(u32, u32)> {
    let weekend = wday >= 6;
    let hours = match (kind, weekend) {
        (Kind::School, false) => (17 * 60, 22 * 60),
        (Kind::School, true) if wday == 6 => (10 * 60, 18 * 60),
        (Kind::School, true) => return None,
        (Kind::SportsHall, false) => (16 * 60, 23 * 60),
        (Kind::SportsHall, true) => (9 * 60, 21 * 60),
        (Kind::CultureHouse, false) => (17 * 60, 22 * 60 + 30),
        (Kind::CultureHouse, true) => (10 * 60, 20 * 60),
        (Kind::Field, false) => (16 * 60, 22 * 60),
        (Kind::Field, true) => (9 * 60, 20 * 60),
        (Kind::Pool, false) => (16 * 60, 21 * 60 + 30),
        (Kind::Pool, true) => (9 * 60, 17 * 60),
        (Kind::CommunityHouse, false) => (17 * 60, 23 * 60),
        (Kind::CommunityHouse, true) => (10 * 60, 23 * 60),
    };
    Some(hours)
}

/// Minutes after midnight as a time of day.
pub fn clock(minutes: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(minutes / 60 % 24, minutes % 60, 0).unwrap_or(NaiveTime::MIN)
}

/// Quarter-hours `from..to` (minutes) as bits of a day.
fn quarters(from: u32, to: u32) -> u128 {
    (from / 15..to.div_ceil(15)).fold(0u128, |mask, q| mask | (1u128 << q.min(127)))
}

/// The seasons of every building from `start` to a little after `today`: autumn (ISO week 34 to 20 December)
/// and spring (ISO week 2 to 20 June), each starting on or after `start` and no later than [`FUTURE_DAYS`]
/// after `today`.
fn seasons(rng: &mut StdRng, catalogue: &Catalogue, start: NaiveDate, today: NaiveDate) -> Vec<Season> {
    let horizon = today + Days::new(FUTURE_DAYS);
    let mut halves = Vec::new();
    for year in start.year()..=horizon.year() {
        let spring = NaiveDate::from_isoywd_opt(year, 2, Weekday::Mon).zip(NaiveDate::from_ymd_opt(year, 6, 20));
        let autumn = NaiveDate::from_isoywd_opt(year, 34, Weekday::Mon).zip(NaiveDate::from_ymd_opt(year, 12, 20));
        for (from, to, label) in
            [spring.map(|(f, t)| (f, t, "Vår")), autumn.map(|(f, t)| (f, t, "Høst"))].into_iter().flatten()
        {
            if from >= start && from <= horizon {
                halves.push((from, to, format!("{label}sesong {year}")));
            }
        }
    }
    let mut seasons = Vec::new();
    for (from, to, name) in halves {
        for (b, building) in catalogue.buildings.iter().enumerate() {
            if building.closed.is_some_and(|closed| closed < from) {
                continue;
            }
            let resources: Vec<usize> = (0..catalogue.resources.len())
                .filter(|r| catalogue.resources[*r].building == b && catalogue.resources[*r].in_use(from))
                .collect();
            if resources.is_empty() {
                continue;
            }
            // Seasons are archived some months after they end; the one about to start may still be planned.
            let status = if to + Days::new(90) < today {
                Status::Archived
            } else if from > today && rng.gen_bool(0.25) {
                Status::Planning
            } else {
                Status::Published
            };
            let active = !(status == Status::Archived && rng.gen_bool(0.02));
            seasons.push(Season {
                id: i32::try_from(seasons.len() + 1).unwrap_or(i32::MAX),
                building: b,
                name: name.clone(),
                status,
                active,
                from,
                to,
                officer: OFFICERS[rng.gen_range(0..OFFICERS.len())].0,
                resources,
            });
        }
    }
    seasons
}

impl Calendar {
    /// The calendar of `catalogue` from `start` to a little after `today`.
    pub fn generate(
        rng: &mut StdRng,
        sizes: &Sizes,
        catalogue: &Catalogue,
        start: NaiveDate,
        today: NaiveDate,
    ) -> Calendar {
        let mut calendar = Calendar { seasons: seasons(rng, catalogue, start, today), ..Calendar::default() };
        for season in 0..calendar.seasons.len() {
            let templates = calendar.templates_of(rng, sizes, catalogue, season);
            calendar.occurrences_of(rng, catalogue, season, templates, today);
        }
        calendar
    }

    /// The week template of `season`: slots per resource on a quarter-hour grid, none overlapping on a resource.
    /// Returns the indexes of the slots in [`Calendar::templates`].
    fn templates_of(&mut self, rng: &mut StdRng, sizes: &Sizes, catalogue: &Catalogue, season: usize) -> Range<usize> {
        let first = self.templates.len();
        let Some(s) = self.seasons.get(season) else { return first..first };
        let kind = catalogue.buildings[s.building].kind;
        let clubs: Vec<usize> =
            (1..catalogue.organizations.len()).filter(|o| catalogue.organizations[*o].active_on(s.to)).collect();
        let (sport, culture): (Vec<usize>, Vec<usize>) =
            clubs.iter().partition(|o| catalogue.organizations[**o].sport());
        // occupied[resource position in season][wday - 1]
        let mut occupied = vec![[0u128; 7]; s.resources.len()];
        let mut slots = Vec::new();
        for (position, resource) in s.resources.iter().enumerate() {
            let usage = catalogue.resources[*resource].usage;
            let wanted = sizes.weekly_slots * usage.slot_factor();
            let count = wanted.floor() as usize + usize::from(rng.gen_bool(wanted.fract()));
            for _ in 0..count {
                for _attempt in 0..12 {
                    let wday = [1, 1, 2, 2, 3, 3, 4, 4, 5, 6, 7][rng.gen_range(0..11)];
                    let Some((open, close)) = opening_hours(kind, wday) else { continue };
                    let length = [60, 60, 90, 90, 90, 120, 120][rng.gen_range(0..7)];
                    if close < open + length {
                        continue;
                    }
                    let from = open + 30 * rng.gen_range(0..=(close - open - length) / 30);
                    let mask = quarters(from, from + length);
                    let day = (wday - 1) as usize;
                    if occupied[position][day] & mask != 0 {
                        continue;
                    }
                    let mut positions = vec![position];
                    if rng.gen_bool(TWO_ROOM_SLOTS) {
                        let partner = (0..s.resources.len()).find(|p| {
                            *p != position
                                && occupied[*p][day] & mask == 0
                                && catalogue.resources[s.resources[*p]].usage.sport() == usage.sport()
                        });
                        positions.extend(partner);
                    }
                    let pool = if usage.sport() { &sport } else { &culture };
                    let Some(organization) = pool.choose(rng).or_else(|| clubs.choose(rng)).copied() else {
                        break;
                    };
                    for p in &positions {
                        occupied[*p][day] |= mask;
                    }
                    let hourly = [0, 0, 0, 0, 0, 0, 0, 150, 250, 450][rng.gen_range(0..10)];
                    slots.push(Template {
                        id: 0,
                        season,
                        organization,
                        wday,
                        from: clock(from),
                        to: clock(from + length),
                        cost: i64::from(hourly * length / 60) * 100,
                        resources: positions.iter().map(|p| s.resources[*p]).collect(),
                    });
                    break;
                }
            }
        }
        slots.sort_by_key(|t| (t.wday, t.from, t.resources.first().copied()));
        for mut slot in slots {
            slot.id = i32::try_from(self.templates.len() + 1).unwrap_or(i32::MAX);
            self.templates.push(slot);
        }
        first..self.templates.len()
    }

    /// One allocation per template slot and week of `season`, day by day; then the bookings inside them.
    fn occurrences_of(
        &mut self,
        rng: &mut StdRng,
        catalogue: &Catalogue,
        season: usize,
        templates: Range<usize>,
        today: NaiveDate,
    ) {
        let Some(s) = self.seasons.get(season) else { return };
        let billed_until = today - Days::new(BILLING_LAG_DAYS);
        let first = templates.start;
        // How each slot's organization hands it on: None, or the groups and the part of the slot.
        let plans: Vec<Option<Plan>> =
            templates.clone().map(|t| plan(rng, catalogue, &self.templates[t], s.to)).collect();
        let first_allocation = self.allocations.len();
        let mut day = s.from;
        while day <= s.to {
            let wday = day.weekday().number_from_monday();
            for t in templates.clone() {
                let template = &self.templates[t];
                if template.wday != wday || template.resources.iter().any(|r| !catalogue.resources[*r].in_use(day)) {
                    continue;
                }
                let (from, to) = (day.and_time(template.from), day.and_time(template.to));
                let active = !rng.gen_bool(CANCELLED_ALLOCATIONS);
                self.allocations.push(Allocation {
                    id: i32::try_from(self.allocations.len() + 1).unwrap_or(i32::MAX),
                    template: t,
                    from,
                    to,
                    active,
                    completed: active && to.date() < billed_until,
                    invoice_note: template.cost > 0 && rng.gen_bool(0.05),
                });
            }
            day = day + Days::new(1);
        }
        // Bookings are made after the allocations exist: one pass over the season's allocations.
        for allocation in first_allocation..self.allocations.len() {
            let a = &self.allocations[allocation];
            let Some(Some(plan)) = plans.get(a.template - first) else { continue };
            // A cancelled allocation often had its bookings already: they were cancelled with it.
            let (book, cancelled_with_it) =
                if a.active { (rng.gen_bool(0.9), false) } else { (rng.gen_bool(0.5), true) };
            if !book {
                continue;
            }
            for (group, from, to) in plan.parts(a.from, a.to) {
                let active = !cancelled_with_it && !rng.gen_bool(CANCELLED_BOOKINGS);
                self.bookings.push(Booking {
                    id: i32::try_from(self.bookings.len() + 1).unwrap_or(i32::MAX),
                    allocation,
                    group,
                    from,
                    to,
                    active,
                    completed: active && to.date() < billed_until,
                    secret: super::names::secret(rng),
                });
            }
        }
    }
}

/// How an organization uses a slot through its groups.
#[derive(Debug, Clone, Copy)]
enum Plan {
    /// One group has the whole slot.
    Whole(usize),
    /// Two groups share it, one after the other.
    Split(usize, usize),
    /// One group uses it but the last half hour.
    Part(usize),
}

/// How a slot's organization hands it on, with groups that exist until `season_end`.
fn plan(rng: &mut StdRng, catalogue: &Catalogue, template: &Template, season_end: NaiveDate) -> Option<Plan> {
    if !rng.gen_bool(BOOKED_SLOTS) {
        return None;
    }
    let organization = catalogue.organizations.get(template.organization)?;
    let groups: Vec<usize> = organization
        .groups
        .iter()
        .copied()
        .filter(|g| catalogue.groups[*g].disbanded.is_none_or(|d| d >= season_end))
        .collect();
    let first = *groups.choose(rng)?;
    let minutes = (template.to - template.from).num_minutes();
    Some(match rng.gen_range(0..100) {
        0..=34 if groups.len() > 1 => {
            let second = groups.iter().copied().find(|g| *g != first).unwrap_or(first);
            Plan::Split(first, second)
        }
        35..=59 if minutes >= 90 => Plan::Part(first),
        _ => Plan::Whole(first),
    })
}

impl Plan {
    /// The bookings of one occurrence `from..to`: (group, from, to), each inside the occurrence.
    fn parts(self, from: NaiveDateTime, to: NaiveDateTime) -> Vec<(usize, NaiveDateTime, NaiveDateTime)> {
        match self {
            Plan::Whole(group) => vec![(group, from, to)],
            Plan::Part(group) => vec![(group, from, to - chrono::Duration::minutes(30))],
            Plan::Split(first, second) => {
                // Split on the quarter hour nearest the middle.
                let half = (to - from).num_minutes() / 2 / 15 * 15;
                let middle = from + chrono::Duration::minutes(half);
                vec![(first, from, middle), (second, middle, to)]
            }
        }
    }
}
