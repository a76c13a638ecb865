//! Stage 1 as a state machine: apply whole source transactions to the booking state, re-assemble what they
//! touched, and say which reservation records changed.
//!
//! ```text
//!  transaction (records in commit order) --apply--> BookingState --touched--> assemble --compare hash--> changes
//! ```
//! Invariants:
//! - replays are harmless record by record: the state ignores a record at or below its key's applied position
//!   (never a whole transaction by its commit LSN: a record of a transaction applied incomplete, released early
//!   by the assembler's buffer bound or stall timeout, arrives after later transactions and must still count);
//! - a record is emitted only when its content hash differs from the last one emitted for its key, so a link
//!   rewrite, an `id_string` UPDATE, a `completed = 1` batch or a full-table UPDATE emit nothing;
//! - a reservation that stops applying (cancelled, deleted, unlinked, season hidden) gets a delete record for
//!   each resource it was emitted for; one that applies again gets its upserts back.

use std::collections::{BTreeMap, HashMap, HashSet};

use vocabulary::records::Reservation;
use vocabulary::ReservationKind;

use crate::kafka::cdc::CdcRecord;
use crate::stage1::assemble::{assemble, deleted, reservation_hash};
use crate::stage1::state::{BookingState, Touched};

/// What a transaction changed beyond reservation records.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Applied {
    /// Reservation records that changed (upserts and deletes).
    pub reservations: Vec<Reservation>,
    /// The resource-to-room mapping changed.
    pub rooms: bool,
    /// Mailboxes whose rows in roomsync's calendar mapping changed.
    pub calendar_mapping: Vec<String>,
}

/// Stage 1: booking state plus the last emitted record per (reservation, resource).
#[derive(Debug, Default)]
pub struct Assembler {
    /// The booking-system rows.
    pub state: BookingState,
    /// Current records by reservation, then resource (indexed by reservation: a refresh touches one
    /// reservation's resources without scanning the others).
    current: HashMap<(ReservationKind, i32), BTreeMap<i32, (String, Reservation)>>,
    /// The reservations in `current` by resource, kept with it: a transaction's rooms are evaluated from their
    /// resources' reservations without scanning every current one (which made each transaction cost the whole
    /// window on a large municipality: benches/README.md, `pipeline --municipality`).
    by_resource: HashMap<i32, HashSet<(ReservationKind, i32)>>,
    /// Reservations touched by transactions applied quietly (a catch-up, a snapshot read in parts), assembled by
    /// the next [`Assembler::settle`] or deciding transaction. A season, organisation or resource record touches
    /// every reservation, and the snapshot sends those tables after the reservations: assembling after each such
    /// record assembled the whole window once per record (minutes on a large municipality). Bounded by the
    /// reservations the state holds ([`Assembler::prune`] drops what the state forgot).
    deferred: Deferred,
    applied_lsn: i64,
}

/// What quiet transactions touched since the last assembly.
#[derive(Debug, Default)]
struct Deferred {
    /// A dimension (or a whole table) changed: every reservation.
    all: bool,
    some: HashSet<(ReservationKind, i32)>,
}

impl Assembler {
    /// An empty assembler.
    pub fn new() -> Self {
        Assembler::default()
    }

    /// An assembler over `state` (read from a checkpoint), every reservation assembled again; each carries the
    /// commit LSN of its main row (the checkpoint does not say which later transaction touched it last).
    pub fn restore(state: BookingState, applied_lsn: i64) -> Self {
        let mut assembler = Assembler { state, applied_lsn, ..Assembler::default() };
        let targets = assembler.known();
        assembler.refresh(&targets, 0, 0);
        assembler
    }

    /// The commit LSN of the newest transaction applied.
    pub fn applied_lsn(&self) -> i64 {
        self.applied_lsn
    }

    /// Applies one whole source transaction (or one snapshot record) and re-assembles what it touched, and what
    /// quiet transactions touched before it.
    pub fn apply_transaction(&mut self, records: &[CdcRecord]) -> Applied {
        let mut applied = Applied::default();
        if records.is_empty() {
            return applied;
        }
        let deferred = std::mem::take(&mut self.deferred);
        let (mut dirty, all) = self.apply_records(records, &mut applied);
        dirty.extend(deferred.some);
        let ts = records.iter().map(|r| r.commit_ts_ms).max().unwrap_or(0);
        let lsn = records.iter().map(|r| r.commit_lsn).max().unwrap_or(0);
        let targets = if all || deferred.all { self.known() } else { dirty };
        applied.reservations = self.refresh(&targets, lsn, ts);
        applied
    }

    /// Applies one whole source transaction to the state only; what it touched is assembled by the next
    /// [`Assembler::settle`] or [`Assembler::apply_transaction`].
    pub fn apply_quietly(&mut self, records: &[CdcRecord]) {
        let (dirty, all) = self.apply_records(records, &mut Applied::default());
        self.deferred.all |= all;
        if !self.deferred.all {
            self.deferred.some.extend(dirty);
        }
    }

    /// Assembles what quiet transactions touched; returns the records whose content changed.
    pub fn settle(&mut self) -> Vec<Reservation> {
        let deferred = std::mem::take(&mut self.deferred);
        let targets = if deferred.all { self.known() } else { deferred.some };
        // As on a restore: each record carries the commit LSN its rows say.
        self.refresh(&targets, 0, 0)
    }

    /// Applies `records` to the state; returns the reservations they touched and whether a dimension changed
    /// (every reservation is touched), and notes room and mapping changes in `applied`.
    fn apply_records(
        &mut self,
        records: &[CdcRecord],
        applied: &mut Applied,
    ) -> (HashSet<(ReservationKind, i32)>, bool) {
        let mut dirty = HashSet::new();
        let mut all = false;
        for record in records {
            match self.state.apply(record) {
                Touched::Nothing => {}
                Touched::Reservation(kind, id) => {
                    dirty.insert((kind, id));
                }
                Touched::Dimension => all = true,
                Touched::Rooms => applied.rooms = true,
                Touched::CalendarMapping(mailbox) => applied.calendar_mapping.extend(mailbox),
            }
        }
        if records.first().is_some_and(|first| !first.snapshot) {
            self.applied_lsn =
                records.iter().map(|r| r.commit_lsn).max().unwrap_or(self.applied_lsn).max(self.applied_lsn);
        }
        (dirty, all)
    }

    fn known(&self) -> HashSet<(ReservationKind, i32)> {
        let mut all = self.state.all_reservations();
        all.extend(self.current.keys().copied());
        all
    }

    /// Re-assembles `targets`; returns the records whose content changed.
    fn refresh(&mut self, targets: &HashSet<(ReservationKind, i32)>, lsn: i64, ts: i64) -> Vec<Reservation> {
        let mut out = Vec::new();
        let mut ordered: Vec<(ReservationKind, i32)> = targets.iter().copied().collect();
        ordered.sort_by_key(|(kind, id)| (kind.priority(), *id));
        for (kind, id) in ordered {
            let now = assemble(&self.state, kind, id);
            let entry = self.current.entry((kind, id)).or_default();
            let before: Vec<i32> = entry.keys().copied().collect();
            for resource in before {
                if !now.contains_key(&resource) && entry.remove(&resource).is_some() {
                    unindex(&mut self.by_resource, resource, (kind, id));
                    let mut record = deleted(kind, id, resource, lsn);
                    record.commit_ts_ms = ts;
                    out.push(record);
                }
            }
            for (resource, mut reservation) in now {
                let hash = reservation_hash(&reservation);
                if entry.get(&resource).is_some_and(|(h, _)| *h == hash) {
                    continue;
                }
                reservation.commit_lsn = reservation.commit_lsn.max(lsn);
                reservation.commit_ts_ms = ts;
                entry.insert(resource, (hash, reservation.clone()));
                self.by_resource.entry(resource).or_default().insert((kind, id));
                out.push(reservation);
            }
            if entry.is_empty() {
                self.current.remove(&(kind, id));
            }
        }
        out
    }

    /// Re-assembles everything (after the initial catch-up or a window move).
    pub fn refresh_all(&mut self) -> Vec<Reservation> {
        let targets = self.known();
        self.refresh(&targets, self.applied_lsn, 0)
    }

    /// The reservations that currently apply, by resource: a scan of every one (tests compare the index that
    /// [`Assembler::of_resource`] answers from with it).
    #[cfg(test)]
    pub fn by_resource(&self) -> BTreeMap<i32, Vec<&Reservation>> {
        let mut out: BTreeMap<i32, Vec<&Reservation>> = BTreeMap::new();
        for (resource, (_, reservation)) in self.current.values().flatten() {
            out.entry(*resource).or_default().push(reservation);
        }
        out
    }

    /// Every reservation that currently applies.
    pub fn current(&self) -> impl Iterator<Item = &Reservation> {
        self.current.values().flat_map(|m| m.values()).map(|(_, r)| r)
    }

    /// The reservations of one resource that currently apply (through the index: no scan).
    pub fn of_resource(&self, resource: i32) -> Vec<&Reservation> {
        let Some(keys) = self.by_resource.get(&resource) else { return Vec::new() };
        keys.iter().filter_map(|key| self.current.get(key)?.get(&resource)).map(|(_, r)| r).collect()
    }

    /// Resources the index holds an entry for (tests: pruned entries leave it).
    #[cfg(test)]
    pub(crate) fn indexed_resources(&self) -> usize {
        self.by_resource.len()
    }

    /// Forgets reservations that ended before `before_local` without emitting deletes (they left the window
    /// at its past end: Outlook keeps them, roomsync stops managing them); `orphans` as in
    /// [`BookingState::prune`].
    pub fn prune(&mut self, before_local: i64, orphans: bool) {
        self.state.prune(before_local, orphans);
        // A deferred reservation still matters while its row is stored (it is assembled) or records of it are
        // current (a deletion: they must go).
        let (main, current) = (&self.state.main, &self.current);
        self.deferred.some.retain(|key| {
            current.contains_key(key) || main.get(&key.0).is_some_and(|rows| rows.contains_key(&i64::from(key.1)))
        });
        let by_resource = &mut self.by_resource;
        for (key, records) in &mut self.current {
            records.retain(|resource, (_, r)| {
                let keep = r.end_local >= before_local;
                if !keep {
                    unindex(by_resource, *resource, *key);
                }
                keep
            });
        }
        self.current.retain(|_, records| !records.is_empty());
    }
}

/// Removes `key` from `resource`'s entry of the index, and the entry once empty.
fn unindex(
    by_resource: &mut HashMap<i32, HashSet<(ReservationKind, i32)>>,
    resource: i32,
    key: (ReservationKind, i32),
) {
    if let Some(keys) = by_resource.get_mut(&resource) {
        keys.remove(&key);
        if keys.is_empty() {
            by_resource.remove(&resource);
        }
    }
}
