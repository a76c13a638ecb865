//! The resolver's state machine without I/O, where the two stages meet: inputs (whole source transactions,
//! Outlook events, clock ticks) in, records to emit out. A transaction goes through stage 1
//! ([`crate::stage1`]), whose changed reservations are compared with what was emitted to `<prefix>.reservations`
//! (loaded back at start, [`Core::load_reservation`]); the rooms they touch are evaluated by stage 2
//! ([`crate::stage2`]). The Kafka driver ([`crate::kafka::consume`]) only feeds it and sends what it returns.
//!
//! Invariants:
//! - output is a function of the input state and the window: duplicates and replays emit nothing
//!   (stage 1 compares reservation hashes, stage 2 compares desired hashes in the [`Ledger`]);
//! - a room is evaluated whole (its desired state is never patched), so deactivating a room mapping yields a
//!   delete for every item roomsync emitted there, and Outlook-origin events there are left alone;
//! - only the rooms (and reservation keys) this instance owns are emitted ([`Ownership`]), so several
//!   instances can share the rooms without emitting the same key.
//!
//! Memory: what the resolver holds is bounded by the sync window and the number of rooms, not by the years of
//! history its input topics hold. [`Core::prune`] runs once the inputs are read at start and at every tick;
//! "before the window" below means ended more than a day (the slack for wall-clock readings) before its start.
//!
//! | structure | what bounds it |
//! |---|---|
//! | booking rows (`stage1::state::BookingState::main`, links, link positions) | reservations not over before the window; one that ends before it is not even stored ([`crate::stage1::state`]); while catching up, also the links read after their past reservation's main row (dropped once caught up) |
//! | dimension rows (seasons, organizations, groups, resources, room mappings) | the booking system's own tables of them (hundreds to a few thousand rows, not per reservation) |
//! | reservation records (`stage1::reservations::Assembler`), `emitted_reservations`, the reservations applied quietly and not assembled yet (`Assembler::settle`) | the booking rows above |
//! | the desired-state [`Ledger`] | items in the window, plus [`crate::stage2::ledger::EARLIER_KEPT`] earlier contents per item |
//! | Outlook events (`graph`) | events not over before the window (the Graph source reads only the window) |
//! | the import ledger (`imports`) | imports not over before the window, or whose mapping row is still kept |
//! | recorded conflicts (`conflicts`) | overlaps not over before the window |
//! | undecided deletions (`unseen_deletes`) | their last body not over before the window; without one, mapping rows |
//! | reverted versions (`reverted`) | a fixed cap (`REVERTED_KEPT` in [`crate::stage2::outlook_events`]) |
//! | the mapping mirror (`stage1::mappings::CalendarMappings`) | imports not over before the window, items in the ledger or whose reservation is still stored |
//! | buffered CDC records ([`crate::kafka::transaction`]) | `max_buffered_records`, plus the positions of at most `RELEASED_EARLY_KEPT` transactions released incomplete (their largest one: a snapshot's record count) |

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use tracing::debug;
use vocabulary::keys::room_partition;
use vocabulary::records::{DesiredItem, GraphEventBody, ImportRecord, Reservation, UpsertOrDelete};
use vocabulary::ReservationKind;

use crate::config::{ConflictPolicy, Policies, WindowConfig};
use crate::kafka::cdc::CdcRecord;
use crate::stage1::reservations::Assembler;
use crate::stage2::desired::desired_for_room;
use crate::stage2::ledger::Ledger;
use crate::stage2::outlook::ConflictHit;
use crate::stage2::window::Window;

/// Which keys this instance emits: those whose partition (murmur2 of the key, as Kafka places it) it owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    /// Partitions of the output topics.
    pub partitions: i32,
    /// Owned partitions; `None` = all (a single instance, the unit tests).
    pub owned: Option<BTreeSet<i32>>,
}

impl Ownership {
    /// An instance that owns everything.
    pub fn all() -> Self {
        Ownership { partitions: 1, owned: None }
    }

    /// Whether records keyed by `key` (a mailbox, or a resource id for reservations) are this instance's.
    pub fn owns(&self, key: &str) -> bool {
        self.owned.as_ref().is_none_or(|owned| owned.contains(&room_partition(key, self.partitions)))
    }
}

/// An Outlook-origin booking that overlaps reservations, to record in `roomsync_conflicts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// Room mailbox.
    pub mailbox: String,
    /// Resource of the room.
    pub resource_id: i32,
    /// Graph event id.
    pub event_id: String,
    /// Its changeKey.
    pub change_key: Option<String>,
    /// The reservation it overlaps.
    pub hit: ConflictHit,
    /// The policy it is recorded under (its status when new).
    pub policy: ConflictPolicy,
}

/// What to emit.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Output {
    /// To `<prefix>.reservations`.
    pub reservations: Vec<Reservation>,
    /// To `<prefix>.sync.desired`.
    pub desired: Vec<DesiredItem>,
    /// To `<prefix>.sync.imports`.
    pub imports: Vec<ImportRecord>,
    /// To `roomsync_conflicts`.
    pub conflicts: Vec<Conflict>,
    /// (mailbox, item key) of roomsync events edited in Outlook that are reverted: their desired record is in
    /// `desired` again, flagged `rewrite`, because the sink skips a record whose hash it has already written and
    /// the edit happened behind its back.
    pub reverts: Vec<(String, String)>,
}

/// The resolver state.
#[derive(Debug)]
pub struct Core {
    /// Stage 1.
    pub assembler: Assembler,
    /// Last emitted desired state.
    pub ledger: Ledger,
    pub(crate) policies: Policies,
    pub(crate) window: WindowConfig,
    /// Which keys this instance emits.
    pub ownership: Ownership,
    /// Last reservation record emitted per (kind, id, resource): hash and wall-clock end.
    pub(crate) emitted_reservations: HashMap<(ReservationKind, i32, i32), (String, i64)>,
    /// The Outlook events by (mailbox, event id); ordered so one room's events are a range.
    pub(crate) graph: BTreeMap<(String, String), GraphEventBody>,
    pub(crate) imports: HashMap<(String, String), ImportRecord>,
    /// Outlook deletions read without a decision (while catching up, or while another instance owned the
    /// room), with the last body seen; decided when the room is evaluated from the start.
    pub(crate) unseen_deletes: BTreeMap<(String, String), Option<GraphEventBody>>,
    /// The Outlook version (change key; `None` for a deletion) of each event whose edit was reverted last, so
    /// repeated reports of that version revert once.
    pub(crate) reverted: HashMap<(String, String), Option<Option<String>>>,
    pub(crate) conflicts: HashSet<(String, String, ConflictHit)>,
    /// The window's end at the last tick (µs since the epoch): the next tick evaluates only the rooms with
    /// something that entered the window since (`None`: every room).
    pub(crate) ticked_to: Option<i64>,
}

impl Core {
    /// An empty state.
    pub fn new(policies: Policies, window: WindowConfig) -> Self {
        Core {
            assembler: Assembler::new(),
            ledger: Ledger::default(),
            policies,
            window,
            ownership: Ownership::all(),
            emitted_reservations: HashMap::new(),
            graph: BTreeMap::new(),
            imports: HashMap::new(),
            unseen_deletes: BTreeMap::new(),
            reverted: HashMap::new(),
            conflicts: HashSet::new(),
            ticked_to: None,
        }
    }

    pub(crate) fn window_at(&self, now: i64) -> Window {
        Window::at(now, &self.window)
    }

    /// Active room mappings: mailbox -> resources (ascending), by the one active-room rule
    /// ([`vocabulary::rooms`]).
    pub fn rooms(&self) -> Arc<BTreeMap<String, Vec<i32>>> {
        self.assembler.state.active_rooms()
    }

    pub(crate) fn reservations_of(&self, resources: &[i32]) -> Vec<&Reservation> {
        resources.iter().flat_map(|r| self.assembler.of_resource(*r)).collect()
    }

    /// Reservations `records` move back into the window although they were forgotten: their rows must be read
    /// again ([`crate::postgres::lookup`]) and applied before `records`.
    pub fn forgotten_in(&self, records: &[CdcRecord]) -> Vec<(ReservationKind, i32)> {
        self.assembler.state.forgotten_in(records)
    }

    /// Applies one whole source transaction; returns what to emit.
    pub fn apply_transaction(&mut self, records: &[CdcRecord], now: i64) -> Output {
        let applied = self.assembler.apply_transaction(records);
        let affected = self.affected(&applied);
        let mut output = Output { reservations: self.reservation_changes(applied.reservations), ..Output::default() };
        if affected.as_ref().is_none_or(|a| !a.is_empty()) {
            self.evaluate_rooms(now, &mut output, affected.as_ref(), false);
        }
        // What this evaluation emits, the transaction caused: its commit time lets the sink measure the
        // end-to-end latency. A snapshot is not a commit anybody waits for.
        let committed = records.iter().filter(|r| !r.snapshot).map(|r| r.commit_ts_ms).max().filter(|ms| *ms > 0);
        for item in &mut output.desired {
            item.source_committed_at = committed;
        }
        output
    }

    /// Applies a transaction while catching up at start: the state changes, nothing is decided or emitted
    /// ([`Core::full`] follows once every input is read).
    pub fn apply_transaction_quietly(&mut self, records: &[CdcRecord]) {
        self.assembler.apply_quietly(records);
    }

    /// Records a reservation record read back from `<prefix>.reservations` at start.
    pub fn load_reservation(&mut self, reservation: &Reservation) {
        let key = (reservation.kind, reservation.reservation_id, reservation.resource_id);
        match reservation.op {
            UpsertOrDelete::Upsert => {
                let hash = crate::stage1::assemble::reservation_hash(reservation);
                self.emitted_reservations.insert(key, (hash, reservation.end_local));
            }
            UpsertOrDelete::Delete => {
                self.emitted_reservations.remove(&key);
            }
        }
    }

    /// The changed records this instance owns and has not emitted yet.
    fn reservation_changes(&mut self, changes: Vec<Reservation>) -> Vec<Reservation> {
        let mut out = Vec::new();
        for reservation in changes {
            if !self.ownership.owns(&reservation.resource_id.to_string()) {
                continue;
            }
            let key = (reservation.kind, reservation.reservation_id, reservation.resource_id);
            match reservation.op {
                UpsertOrDelete::Upsert => {
                    let hash = crate::stage1::assemble::reservation_hash(&reservation);
                    if self.emitted_reservations.get(&key).is_some_and(|(h, _)| *h == hash) {
                        continue;
                    }
                    self.emitted_reservations.insert(key, (hash, reservation.end_local));
                }
                UpsertOrDelete::Delete => {
                    if self.emitted_reservations.remove(&key).is_none() {
                        continue;
                    }
                }
            }
            out.push(reservation);
        }
        out
    }

    /// Forgets what ended before the window (reservations, Outlook events, ledger entries) and keeps what
    /// arrives later from being stored: memory stays bounded by the window.
    pub fn prune(&mut self, now: i64) {
        self.prune_with(now, true);
    }

    /// [`Core::prune`] while catching up: links whose reservation has not been read yet are kept (the topics are
    /// read at different speeds), see [`crate::stage1::state::BookingState::prune`].
    pub fn prune_replayed(&mut self, now: i64) {
        self.prune_with(now, false);
    }

    fn prune_with(&mut self, now: i64, orphans: bool) {
        let window = self.window_at(now);
        let before_local = self.window_start_local(now);
        self.assembler.state.floor_local = Some(before_local);
        self.assembler.prune(before_local, orphans);
        self.emitted_reservations.retain(|_, (_, end)| *end >= before_local);
        self.graph.retain(|_, body| !window.is_past(body.end));
        self.ledger.forget_past(window);
        // Outlook-side memory: what ended before the window (a day of slack, as for the booking rows).
        let before = window.start.saturating_sub(DAY_MICROS);
        self.conflicts.retain(|(_, _, hit)| hit.end >= before);
        // An item's row is kept while the item is current or its reservation is still stored (another instance
        // may own its room).
        let (ledger, main) = (&self.ledger, &self.assembler.state.main);
        let keep_item = |mailbox: &str, row: &crate::stage2::outlook::MappingRow| {
            ledger.get(mailbox, &row.item_key).is_some()
                || ReservationKind::parse(&row.reservation_type)
                    .and_then(|kind| main.get(&kind))
                    .is_some_and(|rows| rows.contains_key(&i64::from(row.reservation_id)))
        };
        let forgotten = self.assembler.state.calendar_mapping.forget(before, keep_item);
        let mappings = &self.assembler.state.calendar_mapping;
        // The import ledger says what was emitted for an event: kept while the booking is current, and while
        // roomsync's row of the event is there (a cancel decided without the booking's body knows no end).
        self.imports
            .retain(|(mailbox, event_id), import| import.end >= before || mappings.row(mailbox, event_id).is_some());
        self.unseen_deletes.retain(|(mailbox, event_id), body| match body {
            Some(body) => !window.is_past(body.end),
            // Without its last body only a mapping row says what the deletion means; without one it means nothing.
            None => mappings.row(mailbox, event_id).is_some(),
        });
        if forgotten > 0 {
            debug!(forgotten, "mapping rows of past items forgotten");
        }
    }

    /// Moves the window: items enter as time passes, past ones are forgotten. Returns what to emit.
    ///
    /// Only the rooms with a reservation or an Outlook event that overlaps what entered the window since the last
    /// tick are evaluated (every room at the first tick): nothing else of a room's evaluation depends on the
    /// clock (items leave at the past end without a delete). Evaluating every room each minute held the
    /// resolver for a large municipality's whole window at a time, which showed as the steady state's tail
    /// latency (benches/README.md).
    pub fn tick(&mut self, now: i64) -> Output {
        self.prune(now);
        let window = self.window_at(now);
        let entered = self.ticked_to.replace(window.end).map(|from| self.rooms_overlapping(from, window.end));
        let mut output = Output::default();
        self.evaluate_rooms(now, &mut output, entered.as_ref(), false);
        output
    }

    /// The rooms with a reservation or an Outlook event that overlaps `[from, to)` (µs since the epoch; the
    /// reservations' wall-clock times compared with a day of slack either side).
    fn rooms_overlapping(&self, from: i64, to: i64) -> BTreeSet<String> {
        let local = |instant: i64| local_micros(instant).unwrap_or(instant);
        let (from_local, to_local) = (local(from).saturating_sub(DAY_MICROS), local(to).saturating_add(DAY_MICROS));
        let resources: HashSet<i32> = self
            .assembler
            .current()
            .filter(|r| r.end_local > from_local && r.start_local < to_local)
            .map(|r| r.resource_id)
            .collect();
        let mut rooms = self.rooms_showing(&resources);
        rooms.extend(
            self.graph
                .iter()
                .filter(|(_, body)| body.end > from && body.start < to)
                .map(|((mailbox, _), _)| mailbox.clone()),
        );
        rooms
    }

    /// Everything after the initial catch-up: every reservation and every room compared with what the output
    /// topics already hold.
    pub fn full(&mut self, now: i64) -> Output {
        self.assembler.settle();
        let mut changes: Vec<Reservation> = self.assembler.current().cloned().collect();
        let current: HashSet<(ReservationKind, i32, i32)> =
            changes.iter().map(|r| (r.kind, r.reservation_id, r.resource_id)).collect();
        let window_start_local = self.window_start_local(now);
        let gone: Vec<(ReservationKind, i32, i32)> = self
            .emitted_reservations
            .iter()
            .filter(|(key, (_, end))| !current.contains(key) && *end >= window_start_local)
            .map(|(key, _)| *key)
            .collect();
        for (kind, id, resource) in gone {
            changes.push(crate::stage1::assemble::deleted(kind, id, resource, 0));
        }
        let mut output = Output { reservations: self.reservation_changes(changes), ..Output::default() };
        self.evaluate_rooms(now, &mut output, None, true);
        output
    }

    fn window_start_local(&self, now: i64) -> i64 {
        local_micros(self.window_at(now).start)
            .unwrap_or(i64::MIN)
            // a day of slack: wall clock may be hours off the instant; never forget too early
            .saturating_sub(DAY_MICROS)
    }

    /// The rooms that show any of `resources`.
    fn rooms_showing(&self, resources: &HashSet<i32>) -> BTreeSet<String> {
        self.rooms()
            .iter()
            .filter(|(_, room)| room.iter().any(|resource| resources.contains(resource)))
            .map(|(mailbox, _)| mailbox.clone())
            .collect()
    }

    /// Re-evaluates the rooms in `only` (every room when `None`) that this instance owns; `start` also reverts
    /// Outlook edits made while no instance owned the room.
    fn evaluate_rooms(&mut self, now: i64, output: &mut Output, only: Option<&BTreeSet<String>>, start: bool) {
        let window = self.window_at(now);
        let rooms = self.rooms();
        // A transaction concerns a room or two: only those are looked at, not every room of the municipality.
        let mut mailboxes: BTreeSet<String> = match only {
            Some(only) => only.iter().filter(|m| rooms.contains_key(*m) || self.ledger.holds(m)).cloned().collect(),
            None => rooms.keys().cloned().chain(self.ledger.mailboxes()).collect(),
        };
        mailboxes.retain(|m| self.ownership.owns(m));
        for mailbox in &mailboxes {
            let resources = rooms.get(mailbox).map(Vec::as_slice).unwrap_or_default();
            let reservations = self.reservations_of(resources);
            let imported = self.imported_events(mailbox);
            let desired = desired_for_room(mailbox, &reservations, &imported, &self.policies, window);
            let changes = self.ledger.diff(mailbox, &desired, window);
            for item in &changes {
                self.ledger.record(item);
            }
            if !changes.is_empty() {
                debug!(changes = changes.len(), "room re-evaluated");
            }
            output.desired.extend(changes);
        }
        for mailbox in &mailboxes {
            let resources = rooms.get(mailbox).cloned().unwrap_or_default();
            self.classify_room(mailbox, &resources, window, output, start);
        }
    }

    /// The mailboxes a transaction's changes concern.
    fn affected(&self, applied: &crate::stage1::reservations::Applied) -> Option<BTreeSet<String>> {
        if applied.rooms {
            return None;
        }
        let resources: HashSet<i32> = applied.reservations.iter().map(|r| r.resource_id).collect();
        let mut out = self.rooms_showing(&resources);
        out.extend(applied.calendar_mapping.iter().cloned());
        Some(out)
    }
}

/// A day in µs: the slack between an instant and a wall-clock reading of it.
const DAY_MICROS: i64 = 86_400_000_000;

/// The Oslo wall-clock reading of `instant` (µs since the epoch), as the booking rows store their times.
fn local_micros(instant: i64) -> Option<i64> {
    crate::stage2::timeline::local_of(instant).map(vocabulary::oslo::local_to_micros)
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
