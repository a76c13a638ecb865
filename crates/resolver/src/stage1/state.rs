//! The booking-system rows the resolver needs, rebuilt from the CDC topics and kept current record by record.
//!
//! Invariants:
//! - a record at or below the position already applied for its key is a replay and changes nothing;
//! - an UPDATE merges into the stored row: columns whose value PostgreSQL did not send (unchanged TOAST) keep
//!   their stored value;
//! - a DELETE of a main row carries only the key: the stored row is simply removed;
//! - [`BookingState::apply`] says what a record touched, so only affected reservations are assembled again.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use vocabulary::rooms::ActiveRooms;
use vocabulary::tables::{self, Role};
use vocabulary::ReservationKind;

use crate::kafka::cdc::{CdcRecord, Cell, Op, Row};

/// A stored row with the position of the record that last wrote it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stored {
    /// Column values.
    pub row: Row,
    /// (commit LSN, position in transaction) of the last applied record.
    pub position: (i64, i64),
}

impl Stored {
    /// An integer column.
    pub fn int(&self, column: &str) -> Option<i64> {
        self.row.get(column).and_then(Cell::int)
    }

    /// A text column.
    pub fn text(&self, column: &str) -> Option<&str> {
        self.row.get(column).and_then(Cell::text)
    }

    /// A wall-clock timestamp column (µs).
    pub fn local(&self, column: &str) -> Option<i64> {
        match self.row.get(column) {
            Some(Cell::Local(v)) => Some(*v),
            _ => None,
        }
    }

    /// A `timestamp with time zone` column (µs since the epoch).
    pub fn instant(&self, column: &str) -> Option<i64> {
        match self.row.get(column) {
            Some(Cell::Instant(v)) => Some(*v),
            _ => None,
        }
    }

    /// A 0/1 flag column is 1.
    pub fn flag(&self, column: &str) -> bool {
        self.int(column) == Some(1)
    }
}

/// What one applied record touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touched {
    /// A replay, an unknown table or a no-op.
    Nothing,
    /// One reservation (its main row or one of its links).
    Reservation(ReservationKind, i32),
    /// A season, organization, group or resource: names or visibility of many reservations.
    Dimension,
    /// The resource-to-room mapping.
    Rooms,
    /// roomsync's own calendar mapping, in the mailbox given (when known).
    CalendarMapping(Option<String>),
}

/// Rows of one table by integer id.
pub type ById = HashMap<i64, Stored>;

/// The booking-system state the assembler reads. It is what the resolver's checkpoint holds of stage 1
/// ([`crate::checkpoint`]): everything else of stage 1 is assembled from it again.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct BookingState {
    /// bb_event, bb_booking, bb_allocation by kind.
    pub main: HashMap<ReservationKind, ById>,
    /// Resource links by kind: reservation id -> resource ids.
    pub links: HashMap<ReservationKind, HashMap<i32, BTreeSet<i32>>>,
    link_positions: HashMap<(ReservationKind, i32, i32), (i64, i64)>,
    /// bb_season.
    pub seasons: ById,
    /// bb_organization.
    pub organizations: ById,
    /// bb_group.
    pub groups: ById,
    /// bb_resource.
    pub resources: ById,
    /// bb_resource_outlook_item (changed only through [`BookingState::apply`], which keeps `active_rooms`).
    rooms: ById,
    /// The active rooms of `rooms` by the one rule ([`vocabulary::rooms`]), derived on first use after each
    /// change of `rooms`: every transaction asks which rooms its reservations concern, and deriving them from
    /// every mapping row each time made the resolver spend most of its time there on a large municipality.
    #[serde(skip)]
    active_rooms: OnceLock<Arc<BTreeMap<String, Vec<i32>>>>,
    /// outlook_calendar_mapping, indexed.
    pub calendar_mapping: crate::stage1::mappings::CalendarMappings,
    /// Wall-clock µs before which a reservation that ended is not kept (the window's past end, with slack):
    /// memory stays bounded by the window even while years of history are replayed.
    pub floor_local: Option<i64>,
}

fn role_of(table: &str) -> Option<Role> {
    tables::by_name(table).map(|t| t.role)
}

fn kind_of_main(table: &str) -> Option<ReservationKind> {
    match role_of(table)? {
        Role::Main(kind) => Some(kind),
        _ => None,
    }
}

pub(crate) fn apply_by_id(rows: &mut ById, record: &CdcRecord) -> bool {
    if record.op == Op::Truncate {
        // Only what was written before the TRUNCATE goes: a replayed or late TRUNCATE never removes a row that
        // a later transaction wrote.
        let before = rows.len();
        rows.retain(|_, stored| stored.position > record.position());
        return rows.len() != before;
    }
    let Some(id) = record.key.get("id").and_then(Cell::int) else { return false };
    if rows.get(&id).is_some_and(|stored| stored.position >= record.position()) {
        ::metrics::counter!(crate::metrics::REPLAYS_DROPPED).increment(1);
        return false;
    }
    match &record.after {
        None => rows.remove(&id).is_some(),
        Some(after) => {
            let stored = rows.entry(id).or_insert_with(|| Stored { row: Row::new(), position: (i64::MIN, 0) });
            let before = stored.row.clone();
            for (column, value) in after {
                stored.row.insert(column.clone(), value.clone());
            }
            stored.position = record.position();
            stored.row != before
        }
    }
}

impl BookingState {
    /// Applies one record; says what it touched.
    pub fn apply(&mut self, record: &CdcRecord) -> Touched {
        let Some(role) = role_of(&record.table) else { return Touched::Nothing };
        let (rows, touched) = match role {
            Role::Main(kind) => return self.apply_main(kind, record),
            Role::Link { kind, column } => return self.apply_link(kind, column, record),
            Role::CalendarMapping => {
                let id = record.key.get("id").and_then(Cell::int);
                let before = id.and_then(|id| self.calendar_mapping.mailbox_of(id));
                if !self.calendar_mapping.apply(record) {
                    return Touched::Nothing;
                }
                let after = id.and_then(|id| self.calendar_mapping.mailbox_of(id));
                return Touched::CalendarMapping(after.or(before));
            }
            Role::Seasons => (&mut self.seasons, Touched::Dimension),
            Role::Organizations => (&mut self.organizations, Touched::Dimension),
            Role::Groups => (&mut self.groups, Touched::Dimension),
            Role::Resources => (&mut self.resources, Touched::Dimension),
            Role::Rooms => (&mut self.rooms, Touched::Rooms),
            Role::Buildings | Role::Signals => return Touched::Nothing,
        };
        if !apply_by_id(rows, record) {
            return Touched::Nothing;
        }
        if touched == Touched::Rooms {
            self.active_rooms = OnceLock::new();
        }
        touched
    }

    /// The active rooms: each mailbox with the resources it shows (ascending), by the active-room rule.
    pub fn active_rooms(&self) -> Arc<BTreeMap<String, Vec<i32>>> {
        let rooms = self.active_rooms.get_or_init(|| {
            let rows = self.rooms.values();
            let active = ActiveRooms::from_rows(
                rows.map(|row| (row.int("resource_id"), row.text("outlook_item_id"), row.int("active"))),
            );
            Arc::new(active.into())
        });
        Arc::clone(rooms)
    }

    fn apply_main(&mut self, kind: ReservationKind, record: &CdcRecord) -> Touched {
        if record.op == Op::Truncate {
            apply_by_id(self.main.entry(kind).or_default(), record);
            return Touched::Dimension;
        }
        let key = record.key.get("id").and_then(Cell::int);
        let id = key.and_then(|id| i32::try_from(id).ok());
        let rows = self.main.entry(kind).or_default();
        let existed = key.is_some_and(|k| rows.contains_key(&k));
        let mut changed = apply_by_id(rows, record);
        if let (Some(floor), Some(k)) = (self.floor_local, key) {
            if rows.get(&k).and_then(|r| r.local("to_")).is_some_and(|end| end < floor) {
                rows.remove(&k);
                if let Some(id) = id {
                    self.forget_links(kind, id);
                }
                // A reservation moved into the past must leave the calendar; one that was always past
                // is simply not kept.
                changed = existed;
            }
        }
        match (changed, id) {
            (true, Some(id)) => Touched::Reservation(kind, id),
            _ => Touched::Nothing,
        }
    }

    fn apply_link(&mut self, kind: ReservationKind, column: &str, record: &CdcRecord) -> Touched {
        let links = self.links.entry(kind).or_default();
        if record.op == Op::Truncate {
            // As for rows: links written after the TRUNCATE stay.
            let truncated = record.position();
            let positions = &mut self.link_positions;
            positions.retain(|(k, _, _), position| *k != kind || *position > truncated);
            for (id, resources) in links.iter_mut() {
                resources.retain(|resource| positions.contains_key(&(kind, *id, *resource)));
            }
            links.retain(|_, resources| !resources.is_empty());
            return Touched::Dimension;
        }
        let int = |name: &str| record.key.get(name).and_then(Cell::int).and_then(|v| i32::try_from(v).ok());
        let (Some(id), Some(resource)) = (int(column), int("resource_id")) else { return Touched::Nothing };
        let position = self.link_positions.entry((kind, id, resource)).or_insert((i64::MIN, 0));
        if *position >= record.position() {
            ::metrics::counter!(crate::metrics::REPLAYS_DROPPED).increment(1);
            return Touched::Nothing;
        }
        *position = record.position();
        let set = links.entry(id).or_default();
        let changed = match record.op {
            Op::Delete => set.remove(&resource),
            _ => set.insert(resource),
        };
        if set.is_empty() {
            links.remove(&id);
        }
        if changed {
            Touched::Reservation(kind, id)
        } else {
            Touched::Nothing
        }
    }

    /// The reservations whose main row `records` update although this state forgot them (they ended before the
    /// window), into the window again: the UPDATE carries neither their room links nor the columns it did not
    /// change, so those must be read again (see `postgres::lookup`) before it is applied.
    pub fn forgotten_in(&self, records: &[CdcRecord]) -> Vec<(ReservationKind, i32)> {
        let Some(floor) = self.floor_local else { return Vec::new() };
        let mut out = Vec::new();
        for record in records.iter().filter(|r| r.op == Op::Update) {
            let Some(kind) = kind_of_main(&record.table) else { continue };
            let Some(id) = record.key.get("id").and_then(Cell::int) else { continue };
            let known = self.main.get(&kind).is_some_and(|rows| rows.contains_key(&id));
            let end = record.after.as_ref().and_then(|after| match after.get("to_") {
                Some(Cell::Local(end)) => Some(*end),
                _ => None,
            });
            if let (false, Some(end), Ok(id)) = (known, end, i32::try_from(id)) {
                if end >= floor && !out.contains(&(kind, id)) {
                    out.push((kind, id));
                }
            }
        }
        out
    }

    /// The main row of a reservation.
    pub fn main_row(&self, kind: ReservationKind, id: i32) -> Option<&Stored> {
        self.main.get(&kind)?.get(&i64::from(id))
    }

    /// The resources a reservation is linked to.
    pub fn resources_of(&self, kind: ReservationKind, id: i32) -> BTreeSet<i32> {
        self.links.get(&kind).and_then(|l| l.get(&id)).cloned().unwrap_or_default()
    }

    /// Every reservation known by main row or link.
    pub fn all_reservations(&self) -> HashSet<(ReservationKind, i32)> {
        let mut out = HashSet::new();
        for (kind, rows) in &self.main {
            out.extend(rows.keys().filter_map(|id| i32::try_from(*id).ok()).map(|id| (*kind, id)));
        }
        for (kind, links) in &self.links {
            out.extend(links.keys().map(|id| (*kind, *id)));
        }
        out
    }

    /// Forgets reservations that ended before `before_local` (wall-clock µs) with their links, and, with
    /// `orphans`, links whose reservation has no main row, so memory stays bounded by the window. Returns the
    /// forgotten reservations.
    ///
    /// Orphan links are only dropped once every input has been read (`orphans`): while catching up, the topics
    /// are read at very different speeds, and the links of a reservation in the window often arrive long before
    /// its main row. (Links of a reservation that is past when its main row arrives go with it, see
    /// [`BookingState::apply`]; what stays orphaned while catching up is the links read after such a main row.)
    pub fn prune(&mut self, before_local: i64, orphans: bool) -> Vec<(ReservationKind, i32)> {
        let mut forgotten = Vec::new();
        for (kind, rows) in &mut self.main {
            rows.retain(|id, stored| {
                let keep = stored.local("to_").is_none_or(|end| end >= before_local);
                if !keep {
                    if let Ok(id) = i32::try_from(*id) {
                        forgotten.push((*kind, id));
                    }
                }
                keep
            });
        }
        if orphans {
            for kind in ReservationKind::ALL {
                let main = self.main.get(&kind);
                if let Some(links) = self.links.get_mut(&kind) {
                    links.retain(|id, _| main.is_some_and(|m| m.contains_key(&i64::from(*id))));
                }
                self.link_positions.retain(|(k, id, _), _| {
                    *k != kind || self.main.get(&kind).is_some_and(|m| m.contains_key(&i64::from(*id)))
                });
            }
        } else {
            for (kind, id) in &forgotten {
                self.forget_links(*kind, *id);
            }
        }
        forgotten
    }

    /// Forgets the links of one reservation.
    fn forget_links(&mut self, kind: ReservationKind, id: i32) {
        if let Some(resources) = self.links.get_mut(&kind).and_then(|links| links.remove(&id)) {
            for resource in resources {
                self.link_positions.remove(&(kind, id, resource));
            }
        }
    }
}
