//! The resolver's state machine without I/O: inputs (whole source transactions, Outlook events, clock ticks)
//! in, records to emit out. The Kafka driver (`consume.rs`) only feeds it and sends what it returns.
//!
//! Invariants:
//! - output is a function of the input state and the window: duplicates and replays emit nothing
//!   (stage 1 compares reservation hashes, stage 2 compares desired hashes in the [`Ledger`]);
//! - a room is evaluated whole (its desired state is never patched), so deactivating a room mapping yields a
//!   delete for every item roomsync emitted there, and Outlook-origin events there are left alone;
//! - only the rooms (and reservation keys) this instance owns are emitted ([`Ownership`]), so several
//!   instances can share the rooms without emitting the same key.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use tracing::{debug, info};
use vocabulary::keys::room_partition;
use vocabulary::records::{DesiredItem, GraphEvent, GraphEventBody, ImportRecord, Reservation, UpsertOrDelete};
use vocabulary::ReservationKind;

use crate::cdc::CdcRecord;
use crate::config::{ConflictPolicy, EditPolicy, Policies, WindowConfig};
use crate::desired::{desired_for_room, items_of};
use crate::ledger::Ledger;
use crate::outlook::{classify, ConflictHit, MappingRow, RoomView, Verdict};
use crate::reservations::Assembler;
use crate::window::Window;

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
    /// `open` (policy record) or `declined` (policy decline).
    pub status: &'static str,
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
}

/// The resolver state.
#[derive(Debug)]
pub struct Core {
    /// Stage 1.
    pub assembler: Assembler,
    /// Last emitted desired state.
    pub ledger: Ledger,
    policies: Policies,
    window: WindowConfig,
    /// Which keys this instance emits.
    pub ownership: Ownership,
    /// Last reservation record emitted per (kind, id, resource): hash and wall-clock end.
    emitted_reservations: HashMap<(ReservationKind, i32, i32), (String, i64)>,
    graph: HashMap<(String, String), GraphEventBody>,
    imports: HashMap<(String, String), ImportRecord>,
    conflicts: HashSet<(String, String, ConflictHit)>,
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
            graph: HashMap::new(),
            imports: HashMap::new(),
            conflicts: HashSet::new(),
        }
    }

    fn window_at(&self, now: i64) -> Window {
        Window::at(now, &self.window)
    }

    /// Active room mappings: mailbox -> resources.
    pub fn rooms(&self) -> BTreeMap<String, Vec<i32>> {
        let mut out: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for row in self.assembler.state.rooms.values().filter(|r| r.flag("active")) {
            let (Some(resource), Some(mailbox)) = (row.int("resource_id"), row.text("outlook_item_id")) else {
                continue;
            };
            if let Ok(resource) = i32::try_from(resource) {
                out.entry(mailbox.trim().to_owned()).or_default().push(resource);
            }
        }
        out
    }

    fn mapping_rows(&self) -> HashMap<(String, String), MappingRow> {
        let mut out = HashMap::new();
        for row in self.assembler.state.calendar_mapping.values() {
            let (Some(mailbox), Some(event_id)) = (row.text("outlook_item_id"), row.text("outlook_event_id")) else {
                continue;
            };
            let Some(reservation_id) = row.int("reservation_id").and_then(|v| i32::try_from(v).ok()) else {
                continue;
            };
            out.insert(
                (mailbox.to_owned(), event_id.to_owned()),
                MappingRow {
                    reservation_type: row.text("reservation_type").unwrap_or_default().to_owned(),
                    reservation_id,
                    item_key: row.text("item_key").unwrap_or_default().to_owned(),
                    change_key: row.text("change_key").map(str::to_owned),
                },
            );
        }
        out
    }

    fn imported_events(&self, mailbox: &str) -> HashSet<i32> {
        self.assembler
            .state
            .calendar_mapping
            .values()
            .filter(|r| r.text("reservation_type") == Some("outlook") && r.text("outlook_item_id") == Some(mailbox))
            .filter_map(|r| r.int("reservation_id").and_then(|v| i32::try_from(v).ok()))
            .collect()
    }

    fn reservations_of(&self, resources: &[i32]) -> Vec<&Reservation> {
        resources.iter().flat_map(|r| self.assembler.of_resource(*r)).collect()
    }

    /// Applies one whole source transaction; returns what to emit.
    pub fn apply_transaction(&mut self, records: &[CdcRecord], now: i64) -> Output {
        let applied = self.assembler.apply_transaction(records);
        let affected = self.affected(&applied);
        let mut output = Output { reservations: self.reservation_changes(applied.reservations), ..Output::default() };
        if affected.as_ref().is_none_or(|a| !a.is_empty()) {
            self.evaluate_rooms(now, &mut output, affected.as_ref());
        }
        output
    }

    /// Applies a transaction while catching up at start: the state changes, nothing is decided or emitted
    /// ([`Core::full`] follows once every input is read).
    pub fn apply_transaction_quietly(&mut self, records: &[CdcRecord]) {
        self.assembler.apply_transaction(records);
    }

    /// Records a reservation record read back from `<prefix>.reservations` at start.
    pub fn load_reservation(&mut self, reservation: &Reservation) {
        let key = (reservation.kind, reservation.reservation_id, reservation.resource_id);
        match reservation.op {
            UpsertOrDelete::Upsert => {
                let hash = crate::assemble::reservation_hash(reservation);
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
                    let hash = crate::assemble::reservation_hash(&reservation);
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

    /// Moves the window: items enter as time passes, past ones are forgotten. Returns what to emit.
    pub fn tick(&mut self, now: i64) -> Output {
        let window = self.window_at(now);
        let before_local = self.window_start_local(now);
        self.assembler.prune(before_local);
        self.emitted_reservations.retain(|_, (_, end)| *end >= before_local);
        self.graph.retain(|_, body| !window.is_past(body.end));
        self.ledger.forget_past(window);
        let mut output = Output::default();
        self.evaluate_rooms(now, &mut output, None);
        output
    }

    /// Everything after the initial catch-up: every reservation and every room compared with what the output
    /// topics already hold.
    pub fn full(&mut self, now: i64) -> Output {
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
            changes.push(crate::assemble::deleted(kind, id, resource, 0));
        }
        let mut output = Output { reservations: self.reservation_changes(changes), ..Output::default() };
        self.evaluate_rooms(now, &mut output, None);
        output
    }

    fn window_start_local(&self, now: i64) -> i64 {
        crate::timeline::local_of(self.window_at(now).start)
            .map(vocabulary::oslo::local_to_micros)
            .unwrap_or(i64::MIN)
            // a day of slack: wall clock may be hours off the instant; never forget too early
            .saturating_sub(86_400_000_000)
    }

    /// Re-evaluates the rooms in `only` (every room when `None`) that this instance owns.
    fn evaluate_rooms(&mut self, now: i64, output: &mut Output, only: Option<&BTreeSet<String>>) {
        let window = self.window_at(now);
        let rooms = self.rooms();
        let mut mailboxes: BTreeSet<String> = rooms.keys().cloned().collect();
        mailboxes.extend(self.ledger.mailboxes());
        mailboxes.retain(|m| self.ownership.owns(m) && only.is_none_or(|only| only.contains(m)));
        let index = self.assembler.by_resource();
        for mailbox in &mailboxes {
            let resources = rooms.get(mailbox).map(Vec::as_slice).unwrap_or_default();
            let reservations: Vec<&Reservation> =
                resources.iter().filter_map(|r| index.get(r)).flatten().copied().collect();
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
        let mapping = self.mapping_rows();
        for mailbox in &mailboxes {
            let resources = rooms.get(mailbox).cloned().unwrap_or_default();
            self.classify_room(mailbox, &resources, window, output, &mapping);
        }
    }

    /// The mailboxes a transaction's changes concern.
    fn affected(&self, applied: &crate::reservations::Applied) -> Option<BTreeSet<String>> {
        if applied.rooms {
            return None;
        }
        let rooms = self.rooms();
        let mut out: BTreeSet<String> = applied.calendar_mapping.iter().cloned().collect();
        for reservation in &applied.reservations {
            out.extend(
                rooms
                    .iter()
                    .filter(|(_, resources)| resources.contains(&reservation.resource_id))
                    .map(|(m, _)| m.clone()),
            );
        }
        Some(out)
    }

    /// Re-classifies the Outlook events of a room (a reservation change can make a booking conflict).
    fn classify_room(
        &mut self,
        mailbox: &str,
        resources: &[i32],
        window: Window,
        output: &mut Output,
        mapping: &HashMap<(String, String), MappingRow>,
    ) {
        let events: Vec<GraphEvent> = self
            .graph
            .iter()
            .filter(|((m, _), _)| m == mailbox)
            .map(|((m, id), body)| GraphEvent {
                op: UpsertOrDelete::Upsert,
                mailbox: m.clone(),
                event_id: id.clone(),
                observed_at: 0,
                event: Some(body.clone()),
            })
            .collect();
        for event in events {
            if let Verdict::Import(_) | Verdict::Conflict(_) = self.verdict(&event, None, resources, window, mapping) {
                self.act(&event, resources, window, output, false, mapping);
            }
        }
    }

    fn verdict(
        &self,
        event: &GraphEvent,
        previous: Option<&GraphEventBody>,
        resources: &[i32],
        window: Window,
        mapping: &HashMap<(String, String), MappingRow>,
    ) -> Verdict {
        let imported = self.imported_events(&event.mailbox);
        let items = items_of(
            &self
                .reservations_of(resources)
                .into_iter()
                .filter(|r| !(r.kind == ReservationKind::Event && imported.contains(&r.reservation_id)))
                .collect::<Vec<_>>(),
            &self.policies,
        );
        let row = mapping.get(&(event.mailbox.clone(), event.event_id.clone()));
        let room = RoomView { resource_id: resources.first().copied(), reservations: &items, window };
        let ledger = &self.ledger;
        let mailbox = event.mailbox.clone();
        classify(event, previous, row, |key| ledger.get(&mailbox, key).and_then(|d| d.content.clone()), room)
    }

    fn act(
        &mut self,
        event: &GraphEvent,
        resources: &[i32],
        window: Window,
        output: &mut Output,
        arrived: bool,
        mapping: &HashMap<(String, String), MappingRow>,
    ) {
        let previous = self.graph.get(&(event.mailbox.clone(), event.event_id.clone())).cloned();
        let verdict = self.verdict(event, previous.as_ref(), resources, window, mapping);
        let class = match &verdict {
            Verdict::Ignore(_) => "ignored",
            Verdict::Echo => "echo",
            Verdict::Edited { .. } => "edited",
            Verdict::Import(_) => "import",
            Verdict::Conflict(_) => "conflict",
        };
        if arrived {
            ::metrics::counter!(crate::metrics::OUTLOOK_CLASSIFIED, "class" => class).increment(1);
        }
        let key = (event.mailbox.clone(), event.event_id.clone());
        match verdict {
            Verdict::Ignore(reason) => debug!(reason, "outlook event ignored"),
            Verdict::Echo => {}
            Verdict::Edited { item_key } => match self.policies.outlook_edit {
                EditPolicy::Revert => {
                    if let Some(last) = self.ledger.get(&event.mailbox, &item_key).cloned() {
                        info!(item = %item_key, "roomsync event edited in outlook: reverting to the booking system's state");
                        output.desired.push(last);
                    }
                }
                EditPolicy::Record => info!(item = %item_key, "roomsync event edited in outlook: recorded, left as is"),
            },
            Verdict::Import(_) if !self.policies.import_outlook_bookings => {
                debug!("outlook-origin booking not imported (import_outlook_bookings is off)");
            }
            Verdict::Import(record) => {
                if self.imports.get(&key) != Some(&record) {
                    self.imports.insert(key.clone(), record.clone());
                    output.imports.push(record);
                }
            }
            Verdict::Conflict(hits) => {
                let Some(body) = event.event.as_ref() else { return };
                let status = match self.policies.conflict {
                    ConflictPolicy::Record => "open",
                    ConflictPolicy::Decline => "declined",
                };
                for hit in hits {
                    if self.conflicts.insert((key.0.clone(), key.1.clone(), hit.clone())) {
                        output.conflicts.push(Conflict {
                            mailbox: key.0.clone(),
                            resource_id: resources.first().copied().unwrap_or_default(),
                            event_id: key.1.clone(),
                            change_key: body.change_key.clone(),
                            hit,
                            status,
                        });
                    }
                }
            }
        }
    }

    /// Remembers an Outlook event while catching up at start (decided by [`Core::full`]).
    pub fn apply_graph_event_quietly(&mut self, event: &GraphEvent) {
        self.remember(event);
    }

    /// Applies one Outlook event as the Graph source saw it; returns what to emit.
    pub fn apply_graph_event(&mut self, event: &GraphEvent, now: i64) -> Output {
        let mut output = Output::default();
        if !self.ownership.owns(&event.mailbox) {
            self.remember(event);
            return output;
        }
        let window = self.window_at(now);
        let resources = self.rooms().get(&event.mailbox).cloned().unwrap_or_default();
        let mapping = self.mapping_rows();
        self.act(event, &resources, window, &mut output, true, &mapping);
        self.remember(event);
        output
    }

    fn remember(&mut self, event: &GraphEvent) {
        let key = (event.mailbox.clone(), event.event_id.clone());
        match (&event.op, &event.event) {
            (UpsertOrDelete::Upsert, Some(body)) => {
                self.graph.insert(key, body.clone());
            }
            _ => {
                self.graph.remove(&key);
                self.imports.remove(&key);
            }
        }
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
