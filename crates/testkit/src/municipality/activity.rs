//! The second phase: [`Activity`] changes a loaded municipality the way the booking system's users and cron
//! jobs do, one transaction per change. The choices live here, the statements in `writes`, the memory of
//! what exists in `ledger`.
//!
//! Invariant: a step's choices depend only on the seed and the steps before it, never on what a query
//! returns, so rows others write (roomsync's imported events) change at most the ids new rows get.

mod ledger;
mod writes;

use std::sync::Arc;

use anyhow::Result;
use chrono::{Days, Duration, NaiveDate, Timelike};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio_postgres::Client;
use vocabulary::ReservationKind;

use super::calendar::Calendar;
use super::catalogue::Catalogue;
use super::events::{self, Event};
use super::names;
use super::Summary;
use ledger::{Known, Ledger, RECENT_DAYS};
use writes::{BookingSave, EventSave};

/// How far ahead new events are made, in days.
const BOOKING_HORIZON_DAYS: u64 = 120;

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChangeKind {
    /// A new event with its resources and date row.
    NewEvent,
    /// An event saved with a new name, description, contact or rooms.
    EditEvent,
    /// A booking saved with another group of its organization or another part of its allocation.
    EditBooking,
    /// An event or booking moved to another time.
    Move,
    /// An event, booking or allocation set `active = 0`.
    Cancel,
    /// A cancelled event, booking or allocation set `active = 1` again.
    Reactivate,
    /// A new booking inside an allocation.
    NewBooking,
    /// The full-table `id_string` UPDATE of bb_allocation.
    AllocationIdStrings,
    /// The billing cron's `completed = 1` on ended rows.
    BillingRun,
}

impl ChangeKind {
    /// Every kind.
    pub const ALL: [ChangeKind; 9] = [
        ChangeKind::NewEvent,
        ChangeKind::EditEvent,
        ChangeKind::EditBooking,
        ChangeKind::Move,
        ChangeKind::Cancel,
        ChangeKind::Reactivate,
        ChangeKind::NewBooking,
        ChangeKind::AllocationIdStrings,
        ChangeKind::BillingRun,
    ];
}

/// One change the activity made.
#[derive(Debug, Clone)]
pub struct Change {
    /// What it was.
    pub kind: ChangeKind,
    /// The reservations whose rows it wrote (for the full-table kinds: none).
    pub reservations: Vec<(ReservationKind, i32)>,
    /// Rows inserted, updated or deleted.
    pub rows: u64,
    /// What happened, for a test's log.
    pub description: String,
}

/// How many of each kind of change a deck of cards holds; a deck is dealt in a seeded order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    /// New events.
    pub new_events: u32,
    /// Event edits.
    pub event_edits: u32,
    /// Booking edits.
    pub booking_edits: u32,
    /// Moves of events and bookings.
    pub moves: u32,
    /// Cancellations.
    pub cancellations: u32,
    /// Reactivations.
    pub reactivations: u32,
    /// New bookings.
    pub new_bookings: u32,
    /// Full-table `id_string` updates of bb_allocation (each touches every allocation row).
    pub allocation_id_strings: u32,
    /// Billing runs.
    pub billing_runs: u32,
}

impl Default for Mix {
    /// 200 cards: the everyday changes, one full-table `id_string` update and two billing runs.
    fn default() -> Self {
        Mix {
            new_events: 34,
            event_edits: 28,
            booking_edits: 22,
            moves: 30,
            cancellations: 30,
            reactivations: 18,
            new_bookings: 35,
            allocation_id_strings: 1,
            billing_runs: 2,
        }
    }
}

impl Mix {
    /// The same mix without the heavy kinds (full-table updates, billing runs): for a benchmark that wants only
    /// single-reservation changes.
    pub fn everyday() -> Self {
        Mix { allocation_id_strings: 0, billing_runs: 0, ..Mix::default() }
    }

    fn deck(&self) -> Vec<ChangeKind> {
        let counts = [
            (ChangeKind::NewEvent, self.new_events),
            (ChangeKind::EditEvent, self.event_edits),
            (ChangeKind::EditBooking, self.booking_edits),
            (ChangeKind::Move, self.moves),
            (ChangeKind::Cancel, self.cancellations),
            (ChangeKind::Reactivate, self.reactivations),
            (ChangeKind::NewBooking, self.new_bookings),
            (ChangeKind::AllocationIdStrings, self.allocation_id_strings),
            (ChangeKind::BillingRun, self.billing_runs),
        ];
        let deck: Vec<ChangeKind> =
            counts.iter().flat_map(|(kind, n)| std::iter::repeat_n(*kind, *n as usize)).collect();
        if deck.is_empty() {
            vec![ChangeKind::NewEvent]
        } else {
            deck
        }
    }
}

/// What the load hands to activities: the catalogue and the ledger of a freshly loaded municipality.
#[derive(Debug)]
pub(crate) struct World {
    catalogue: Arc<Catalogue>,
    ledger: Ledger,
}

impl World {
    /// What an activity starting at `today` may act on.
    pub fn new(catalogue: Catalogue, calendar: &Calendar, events: &[Event], today: NaiveDate) -> World {
        World { catalogue: Arc::new(catalogue), ledger: Ledger::new(calendar, events, today) }
    }

    /// Rows of bb_allocation, bb_booking and their links, per season id, in season id order.
    pub fn season_rows(&self) -> impl Iterator<Item = (i32, u64)> + '_ {
        self.ledger.seasons.iter().map(|s| (s.id, s.rows))
    }
}

/// The booking system's users and cron jobs, changing a loaded municipality one transaction at a time, each
/// change written the way PorticoEstate writes it (docs/booking-schema.md §3):
///
/// | change | statements, in one transaction |
/// |---|---|
/// | new event | INSERT bb_event (id_string left at its default), INSERT each bb_event_resource, INSERT bb_event_date, UPDATE id_string = id (§3.4) |
/// | event edit or move | the legacy ORM's save (§3.1): UPDATE bb_event SET every column, DELETE its links and INSERT them again, DELETE its bb_event_date and INSERT it again (new id) |
/// | booking edit or move | UPDATE bb_booking SET every column, DELETE and INSERT its bb_booking_resource rows |
/// | cancellation | either the save above with `active = 0` (a customer's cancel, §3) or one `UPDATE ... SET active = 0` (an application rejected, `deactivateAssociation`); an allocation takes its bookings with it |
/// | reactivation | `UPDATE ... SET active = 1` (`set_active` / `activateAssociation`), or the save for an event |
/// | new booking | INSERT bb_booking inside a free allocation of the future, INSERT its bb_booking_resource rows |
/// | allocation id strings | `update bb_allocation set id_string = cast(id as varchar)` without WHERE (§3.2): every allocation row |
/// | billing run | `completed = 1` on up to 1000 ended rows of bb_event, bb_booking and bb_allocation each (§3.3) |
///
///
/// [`Activity::delete_season`] deletes a season's bookings and allocations, links first, in one transaction of
/// thousands of rows (the full-table `id_string` update is the other large one).
///
/// The kinds are dealt from a shuffled deck of [`Mix`] cards, shuffled again when it runs out, so every deck
/// holds exactly the mix and the order depends only on the seed. The activity remembers the reservations of
/// the last four weeks and the future (from the load and its own changes) and chooses among them; new events
/// go mostly to rooms with a mailbox, up to four months ahead.
#[derive(Debug)]
pub struct Activity {
    rng: StdRng,
    today: NaiveDate,
    catalogue: Arc<Catalogue>,
    ledger: Ledger,
    mix: Mix,
    deck: Vec<ChangeKind>,
    dealt: usize,
}

impl Activity {
    /// An activity on the municipality `summary` describes, its choices seeded by `seed`.
    pub fn new(summary: &Summary, seed: u64) -> Activity {
        Activity {
            // Not the load's stream: the same seed for both must not replay the load's choices.
            rng: StdRng::seed_from_u64(seed ^ 0x6163_7469_7669_7479),
            today: summary.today,
            catalogue: Arc::clone(&summary.world.catalogue),
            ledger: summary.world.ledger.clone(),
            mix: Mix::default(),
            deck: Vec::new(),
            dealt: 0,
        }
    }

    /// The same activity with another mix of changes (a fresh deck).
    pub fn with_mix(mut self, mix: Mix) -> Activity {
        self.mix = mix;
        self.deck.clear();
        self.dealt = 0;
        self
    }

    /// The season with the most rows in bb_allocation, bb_booking and their link tables, as `(season id, rows)`
    /// (the smallest id among equals); `None` when every season is empty.
    pub fn largest_season(&self) -> Option<(i32, u64)> {
        self.ledger.seasons.iter().filter(|s| s.rows > 0).max_by_key(|s| (s.rows, -s.id)).map(|s| (s.id, s.rows))
    }

    fn next_kind(&mut self) -> ChangeKind {
        if self.dealt >= self.deck.len() {
            self.deck = self.mix.deck();
            self.deck.shuffle(&mut self.rng);
            self.dealt = 0;
        }
        self.dealt += 1;
        self.deck.get(self.dealt - 1).copied().unwrap_or(ChangeKind::NewEvent)
    }

    /// Makes one change, in its own transaction. A kind with nothing to act on (no cancelled reservation left to
    /// reactivate, say) makes a new event instead.
    pub async fn step(&mut self, client: &mut Client) -> Result<Change> {
        let change = match self.next_kind() {
            ChangeKind::NewEvent => None,
            ChangeKind::EditEvent => self.edit_event(client).await?,
            ChangeKind::EditBooking => self.edit_booking(client).await?,
            ChangeKind::Move => match self.move_booking(client).await? {
                Some(change) => Some(change),
                None => self.move_event(client).await?,
            },
            ChangeKind::Cancel => self.set_active(client, false).await?,
            ChangeKind::Reactivate => self.set_active(client, true).await?,
            ChangeKind::NewBooking => self.new_booking(client).await?,
            ChangeKind::AllocationIdStrings => {
                let rows = writes::allocation_id_strings(client).await?;
                let description = format!("full-table id_string update of bb_allocation ({rows} rows)");
                Some(Change { kind: ChangeKind::AllocationIdStrings, reservations: Vec::new(), rows, description })
            }
            ChangeKind::BillingRun => {
                let rows = writes::billing_run(client, self.today).await?;
                let description = format!("billing run: {rows} rows completed");
                Some(Change { kind: ChangeKind::BillingRun, reservations: Vec::new(), rows, description })
            }
        };
        match change {
            Some(change) => Ok(change),
            None => self.new_event(client).await,
        }
    }

    /// Deletes every booking and allocation of season `season_id` with their resource links, children first, in
    /// one transaction; returns the rows deleted. The season row and its week template stay.
    pub async fn delete_season(&mut self, client: &mut Client, season_id: i32) -> Result<u64> {
        self.delete_seasons(client, &[season_id], false).await
    }

    /// [`Activity::delete_season`] for several seasons and, with `renumber`, the full-table `id_string` update
    /// of bb_allocation (about 300,000 rows at full size), all in ONE transaction: a source transaction as large
    /// as the caller wants. Deleting many seasons at once is slow in PostgreSQL itself, as in the booking system:
    /// bb_booking.allocation_id has no index, so the foreign-key check of each deleted allocation scans
    /// bb_booking; the full-table update is the cheap way to a large transaction.
    pub async fn delete_seasons(&mut self, client: &mut Client, season_ids: &[i32], renumber: bool) -> Result<u64> {
        let rows = writes::delete_seasons(client, season_ids, renumber).await?;
        for season in season_ids {
            self.ledger.forget_season(*season);
        }
        Ok(rows)
    }

    fn resource_ids(&self, resources: &[usize]) -> Vec<i32> {
        resources.iter().filter_map(|r| self.catalogue.resources.get(*r)).map(|r| r.id).collect()
    }

    /// The groups of organization `organization` that still exist, as `(group_id, activity_id)`.
    fn groups_of(&self, organization: Option<usize>) -> Vec<(i32, i32)> {
        let Some(organization) = organization.and_then(|o| self.catalogue.organizations.get(o)) else {
            return Vec::new();
        };
        organization
            .groups
            .iter()
            .filter_map(|g| self.catalogue.groups.get(*g))
            .filter(|g| g.disbanded.is_none())
            .map(|g| (g.id, g.activity))
            .collect()
    }

    /// The first resource of a new event: mostly a room with a mailbox, since those are what a sync sees.
    fn event_resource(&mut self) -> Option<usize> {
        let catalogue = &self.catalogue;
        let in_use = |r: usize| catalogue.resources.get(r).is_some_and(|r| r.retired.is_none());
        if self.rng.gen_bool(0.85) {
            let mapped: Vec<usize> =
                catalogue.mappings.iter().filter(|m| m.active && in_use(m.resource)).map(|m| m.resource).collect();
            if let Some(r) = mapped.choose(&mut self.rng) {
                return Some(*r);
            }
        }
        let all: Vec<usize> = (0..catalogue.resources.len()).filter(|r| in_use(*r)).collect();
        all.choose(&mut self.rng).copied()
    }

    async fn new_event(&mut self, client: &mut Client) -> Result<Change> {
        let mut draft = None;
        for _ in 0..8 {
            let Some(first) = self.event_resource() else { break };
            let day = self.today + Days::new(self.rng.gen_range(1..=BOOKING_HORIZON_DAYS));
            let event = events::draft(&mut self.rng, &self.catalogue, first, day, self.today);
            if !self.ledger.event_clash(&event.resources, event.from, event.to, 0) {
                draft = Some(event);
                break;
            }
        }
        let Some(event) = draft else {
            let description = "no free room for a new event".to_owned();
            return Ok(Change { kind: ChangeKind::NewEvent, reservations: Vec::new(), rows: 0, description });
        };
        let (id, rows) = writes::insert_event(client, &self.catalogue, &event).await?;
        let description = format!(
            "new event {id} {:?} {}..{} on {:?}",
            event.name,
            event.from,
            event.to,
            self.resource_ids(&event.resources)
        );
        self.ledger.remember(Known {
            kind: ReservationKind::Event,
            id,
            season: None,
            allocation: None,
            organization: None,
            resources: event.resources,
            from: event.from,
            to: event.to,
            active: true,
            bookings: 0,
            deleted: false,
        });
        Ok(Change { kind: ChangeKind::NewEvent, reservations: vec![(ReservationKind::Event, id)], rows, description })
    }

    /// Saves event `ledger.known[index]` and remembers what the save wrote.
    async fn save_event(&mut self, client: &mut Client, index: usize, save: EventSave) -> Result<u64> {
        let Some(id) = self.ledger.known.get(index).map(|k| k.id) else { return Ok(0) };
        let rows = writes::save_event(client, &self.catalogue, id, &save).await?;
        if let Some(k) = self.ledger.known.get_mut(index) {
            k.active = save.active;
            k.from = save.from;
            k.to = save.to;
            k.resources = save.resources;
        }
        Ok(rows)
    }

    /// Saves booking `ledger.known[index]` and remembers what the save wrote.
    async fn save_booking(&mut self, client: &mut Client, index: usize, save: BookingSave) -> Result<u64> {
        let Some(id) = self.ledger.known.get(index).map(|k| k.id) else { return Ok(0) };
        let rows = writes::save_booking(client, id, &save).await?;
        self.ledger.update_booking(index, Some(save.allocation), save.active);
        if let Some(k) = self.ledger.known.get_mut(index) {
            k.from = save.from;
            k.to = save.to;
        }
        Ok(rows)
    }

    /// An active reservation of `kind` that starts after today.
    fn pick_future(&mut self, kind: ReservationKind) -> Option<usize> {
        let today = self.today;
        self.ledger.pick(&mut self.rng, |k| k.kind == kind && k.active && k.from.date() > today)
    }

    async fn edit_event(&mut self, client: &mut Client) -> Result<Option<Change>> {
        let Some(index) = self.pick_future(ReservationKind::Event) else { return Ok(None) };
        let k = self.ledger.known[index].clone();
        let mut save = EventSave {
            active: true,
            name: None,
            description: None,
            contact_phone: None,
            from: k.from,
            to: k.to,
            resources: k.resources.clone(),
        };
        let what = match self.rng.gen_range(0..4) {
            0 => {
                let first = k.resources.first().copied().unwrap_or(0);
                save.name = Some(events::draft(&mut self.rng, &self.catalogue, first, k.from.date(), self.today).name);
                "renamed"
            }
            1 => {
                let words = self.rng.gen_range(6..40);
                save.description = Some(Some(names::prose(&mut self.rng, words)));
                "new description"
            }
            2 => {
                save.contact_phone = Some(names::mobile(&mut self.rng));
                "new contact phone"
            }
            _ => {
                // Another room of the same building instead of (or besides) the one it has.
                let resources = &self.catalogue.resources;
                let building = k.resources.first().and_then(|r| resources.get(*r)).map(|r| r.building);
                let others: Vec<usize> = (0..resources.len())
                    .filter(|r| {
                        Some(resources[*r].building) == building
                            && !k.resources.contains(r)
                            && resources[*r].retired.is_none()
                    })
                    .collect();
                match others.choose(&mut self.rng).copied() {
                    Some(other) if !self.ledger.event_clash(&[other], k.from, k.to, k.id) => {
                        if k.resources.len() > 1 || self.rng.gen_bool(0.5) {
                            save.resources = vec![other];
                        } else {
                            save.resources.push(other);
                        }
                        "rooms changed"
                    }
                    _ => "saved unchanged",
                }
            }
        };
        let rows = self.save_event(client, index, save).await?;
        let description = format!("event {} {what}", k.id);
        Ok(Some(Change {
            kind: ChangeKind::EditEvent,
            reservations: vec![(ReservationKind::Event, k.id)],
            rows,
            description,
        }))
    }

    async fn edit_booking(&mut self, client: &mut Client) -> Result<Option<Change>> {
        let Some(index) = self.pick_future(ReservationKind::Booking) else { return Ok(None) };
        let k = self.ledger.known[index].clone();
        let Some(allocation) = k.allocation else { return Ok(None) };
        let group = self.groups_of(k.organization).choose(&mut self.rng).copied();
        let resources = self.resource_ids(&k.resources);
        let save = BookingSave { group, allocation, from: k.from, to: k.to, active: true, resources };
        let rows = self.save_booking(client, index, save).await?;
        let what = group.map_or("saved unchanged".to_owned(), |(g, _)| format!("given to group {g}"));
        let description = format!("booking {} {what}", k.id);
        Ok(Some(Change {
            kind: ChangeKind::EditBooking,
            reservations: vec![(ReservationKind::Booking, k.id)],
            rows,
            description,
        }))
    }

    async fn move_event(&mut self, client: &mut Client) -> Result<Option<Change>> {
        let Some(index) = self.pick_future(ReservationKind::Event) else { return Ok(None) };
        let k = self.ledger.known[index].clone();
        let shifts = [7, 14, 1, -1].map(Duration::days).into_iter().chain([1, -1].map(Duration::hours));
        let shifts: Vec<Duration> = shifts.collect();
        let mut chosen = None;
        for _ in 0..6 {
            let Some(shift) = shifts.choose(&mut self.rng).copied() else { break };
            let (from, to) = (k.from + shift, k.to + shift);
            let same_days = (to.date() - from.date()) == (k.to.date() - k.from.date());
            let in_hours = from.hour() >= 7 && (to.hour() < 23 || (to.hour() == 23 && to.minute() == 0));
            if from.date() > self.today
                && same_days
                && in_hours
                && !self.ledger.event_clash(&k.resources, from, to, k.id)
            {
                chosen = Some((from, to));
                break;
            }
        }
        let Some((from, to)) = chosen else { return Ok(None) };
        let save = EventSave {
            active: true,
            name: None,
            description: None,
            contact_phone: None,
            from,
            to,
            resources: k.resources,
        };
        let rows = self.save_event(client, index, save).await?;
        let description = format!("event {} moved from {} to {from}..{to}", k.id, k.from);
        Ok(Some(Change {
            kind: ChangeKind::Move,
            reservations: vec![(ReservationKind::Event, k.id)],
            rows,
            description,
        }))
    }

    /// Moves a booking (two moves in five) to the same part of another week's occurrence of its slot (same
    /// organization, rooms, weekday and time) that no group has booked yet.
    async fn move_booking(&mut self, client: &mut Client) -> Result<Option<Change>> {
        if !self.rng.gen_bool(0.4) {
            return Ok(None);
        }
        let Some(index) = self.pick_future(ReservationKind::Booking) else { return Ok(None) };
        let k = self.ledger.known[index].clone();
        let Some(current) = self.ledger.allocation(k.allocation).cloned() else { return Ok(None) };
        let today = self.today;
        let Some(target) = self.ledger.pick(&mut self.rng, |a| {
            a.kind == ReservationKind::Allocation
                && a.active
                && a.bookings == 0
                && a.id != current.id
                && a.from.date() > today
                && a.organization == current.organization
                && a.resources == current.resources
                && a.from.time() == current.from.time()
                && a.to - a.from == current.to - current.from
        }) else {
            return Ok(None);
        };
        let target = self.ledger.known[target].clone();
        let (from, to) = (target.from + (k.from - current.from), target.from + (k.to - current.from));
        let resources = self.resource_ids(&k.resources);
        let save = BookingSave { group: None, allocation: target.id, from, to, active: true, resources };
        let rows = self.save_booking(client, index, save).await?;
        let description =
            format!("booking {} moved from allocation {} to {} ({from}..{to})", k.id, current.id, target.id);
        Ok(Some(Change {
            kind: ChangeKind::Move,
            reservations: vec![(ReservationKind::Booking, k.id)],
            rows,
            description,
        }))
    }

    /// Cancels (`active = false`) or reactivates (`active = true`) a reservation of the recent past or the future.
    async fn set_active(&mut self, client: &mut Client, active: bool) -> Result<Option<Change>> {
        let recent = self.today - Days::new(RECENT_DAYS);
        let kind = match self.rng.gen_range(0..100) {
            0..=44 => ReservationKind::Event,
            45..=74 => ReservationKind::Booking,
            _ => ReservationKind::Allocation,
        };
        let ledger = &self.ledger;
        // A booking comes back only into an allocation that is active itself.
        let allocation_active = |k: &Known| ledger.allocation(k.allocation).is_none_or(|a| a.active);
        let Some(index) = ledger.pick(&mut self.rng, |k| {
            k.kind == kind
                && k.active != active
                && k.to.date() >= recent
                && (!active || kind != ReservationKind::Booking || allocation_active(k))
        }) else {
            return Ok(None);
        };
        let k = self.ledger.known[index].clone();
        // Customers cancel future events and bookings through the form (a save); a rejected or re-accepted
        // application flips the flag alone.
        let through_save = k.from.date() > self.today && self.rng.gen_bool(0.5);
        let (rows, path) = match (k.kind, through_save) {
            (ReservationKind::Event, true) => {
                let save = EventSave {
                    active,
                    name: None,
                    description: None,
                    contact_phone: None,
                    from: k.from,
                    to: k.to,
                    resources: k.resources.clone(),
                };
                (self.save_event(client, index, save).await?, "through a save")
            }
            (ReservationKind::Booking, true) => {
                let allocation = k.allocation.unwrap_or_default();
                let resources = self.resource_ids(&k.resources);
                let save = BookingSave { group: None, allocation, from: k.from, to: k.to, active, resources };
                (self.save_booking(client, index, save).await?, "through a save")
            }
            (ReservationKind::Allocation, _) => {
                let rows = writes::set_allocation_active(client, k.id, active).await?;
                if !active {
                    for b in self.ledger.known.iter_mut().filter(|b| b.allocation == Some(k.id)) {
                        b.active = false;
                    }
                }
                if let Some(a) = self.ledger.known.get_mut(index) {
                    a.active = active;
                    a.bookings = 0;
                }
                (rows, if active { "alone" } else { "with its bookings" })
            }
            (kind, _) => {
                let rows = writes::set_active(client, kind, k.id, active).await?;
                if kind == ReservationKind::Booking {
                    self.ledger.update_booking(index, k.allocation, active);
                } else if let Some(r) = self.ledger.known.get_mut(index) {
                    r.active = active;
                }
                (rows, "by one UPDATE")
            }
        };
        let verb = if active { "reactivated" } else { "cancelled" };
        Ok(Some(Change {
            kind: if active { ChangeKind::Reactivate } else { ChangeKind::Cancel },
            reservations: vec![(k.kind, k.id)],
            rows,
            description: format!("{} {} {verb} {path}", k.kind.as_str(), k.id),
        }))
    }

    /// A group's booking of a future allocation of its organization that nobody has booked yet: the whole
    /// slot or all but its last half hour.
    async fn new_booking(&mut self, client: &mut Client) -> Result<Option<Change>> {
        let today = self.today;
        let ledger = &self.ledger;
        let Some(index) = ledger.pick(&mut self.rng, |k| {
            k.kind == ReservationKind::Allocation
                && k.active
                && k.bookings == 0
                && k.from.date() > today
                && ledger.season_open(k.season)
        }) else {
            return Ok(None);
        };
        let a = self.ledger.known[index].clone();
        let Some(group) = self.groups_of(a.organization).choose(&mut self.rng).copied() else { return Ok(None) };
        let to = if (a.to - a.from).num_minutes() >= 90 && self.rng.gen_bool(0.4) {
            a.to - Duration::minutes(30)
        } else {
            a.to
        };
        let building = a.resources.first().and_then(|r| self.catalogue.building_of(*r)).map(|b| b.name.clone());
        let resources = self.resource_ids(&a.resources);
        let secret = names::secret(&mut self.rng);
        let booking = BookingSave { group: Some(group), allocation: a.id, from: a.from, to, active: true, resources };
        let season = a.season.unwrap_or_default();
        let (id, rows) =
            writes::insert_booking(client, &booking, &building.unwrap_or_default(), season, &secret).await?;
        self.ledger.add_rows(a.season, rows);
        self.ledger.remember(Known {
            kind: ReservationKind::Booking,
            id,
            season: a.season,
            allocation: Some(a.id),
            organization: a.organization,
            resources: a.resources.clone(),
            from: a.from,
            to,
            active: true,
            bookings: 0,
            deleted: false,
        });
        let description = format!("new booking {id} for group {} in allocation {} ({}..{to})", group.0, a.id, a.from);
        Ok(Some(Change {
            kind: ChangeKind::NewBooking,
            reservations: vec![(ReservationKind::Booking, id)],
            rows,
            description,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deck_holds_exactly_the_mix() {
        let deck = Mix::default().deck();
        assert_eq!(deck.len(), 200);
        for kind in ChangeKind::ALL {
            assert!(deck.contains(&kind), "{kind:?}");
        }
        assert!(!Mix::everyday().deck().contains(&ChangeKind::AllocationIdStrings));
    }
}
