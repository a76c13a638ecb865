//! Stage 1: from booking-system rows to one [`Reservation`] per (reservation, resource), as the booking
//! system's public calendar shows it.
//!
//! Rules (docs/booking-schema.md §1, ScheduleEntityService):
//! - a reservation applies when `active = 1`; bookings and allocations also need their season active and
//!   PUBLISHED ([`crate::stage1::season`]);
//! - titles: event -> its name, booking -> its group's name, allocation -> its organization's name;
//! - a private event (`is_public = 0`) keeps its name but carries no description, organizer or contact.
//!
//! Invariant: the result depends only on the current rows, never on the order of the changes that led to
//! them, so a link rewrite inside one transaction or an `id_string` UPDATE yields the same records (and the
//! same [`reservation_hash`]) as before.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use vocabulary::records::{Reservation, UpsertOrDelete};
use vocabulary::ReservationKind;

use crate::stage1::season::season_is_visible;
use crate::stage1::state::BookingState;

/// The stage-1 key of one reservation in one resource.
pub type ReservationKey = (ReservationKind, i32, i32);

fn name_of(rows: &crate::stage1::state::ById, id: Option<i64>) -> Option<String> {
    rows.get(&id?)?.text("name").map(str::to_owned)
}

/// The reservation records of one reservation, by resource; empty when it does not apply (cancelled,
/// deleted, season not published, no links).
pub fn assemble(state: &BookingState, kind: ReservationKind, id: i32) -> BTreeMap<i32, Reservation> {
    let mut out = BTreeMap::new();
    let Some(main) = state.main_row(kind, id) else { return out };
    if !main.flag("active") {
        return out;
    }
    let (Some(start_local), Some(end_local)) = (main.local("from_"), main.local("to_")) else { return out };
    let season_id = main.int("season_id");
    if matches!(kind, ReservationKind::Booking | ReservationKind::Allocation)
        && !season_id.and_then(|s| state.seasons.get(&s)).is_some_and(season_is_visible)
    {
        return out;
    }
    let text = |column: &str| main.text(column).map(str::to_owned);
    let is_public = kind != ReservationKind::Event || main.int("is_public") != Some(0);
    let (title, organizer) = match kind {
        ReservationKind::Event => (text("name").unwrap_or_default(), text("organizer")),
        ReservationKind::Booking => {
            let group = main.int("group_id").and_then(|g| state.groups.get(&g));
            let organization = name_of(&state.organizations, group.and_then(|g| g.int("organization_id")));
            (name_of(&state.groups, main.int("group_id")).unwrap_or_default(), organization)
        }
        ReservationKind::Allocation => {
            let organization = name_of(&state.organizations, main.int("organization_id"));
            (organization.clone().unwrap_or_default(), organization)
        }
    };
    let private = |value: Option<String>| if is_public { value } else { None };
    for resource_id in state.resources_of(kind, id) {
        let reservation = Reservation {
            op: UpsertOrDelete::Upsert,
            kind,
            reservation_id: id,
            resource_id,
            start_local,
            end_local,
            title: title.clone(),
            description: private(if kind == ReservationKind::Event { text("description") } else { None }),
            organizer: private(organizer.clone()),
            contact_name: private(if kind == ReservationKind::Event { text("contact_name") } else { None }),
            contact_email: private(if kind == ReservationKind::Event { text("contact_email") } else { None }),
            contact_phone: private(if kind == ReservationKind::Event { text("contact_phone") } else { None }),
            is_public,
            building_name: text("building_name"),
            resource_name: name_of(&state.resources, Some(i64::from(resource_id))),
            season_id: season_id.and_then(|s| i32::try_from(s).ok()),
            application_id: main.int("application_id").and_then(|a| i32::try_from(a).ok()),
            commit_lsn: main.position.0,
            commit_ts_ms: 0,
        };
        out.insert(resource_id, reservation);
    }
    out
}

/// A delete record for a reservation in a resource that no longer applies.
pub fn deleted(kind: ReservationKind, id: i32, resource_id: i32, commit_lsn: i64) -> Reservation {
    Reservation {
        op: UpsertOrDelete::Delete,
        kind,
        reservation_id: id,
        resource_id,
        start_local: 0,
        end_local: 0,
        title: String::new(),
        description: None,
        organizer: None,
        contact_name: None,
        contact_email: None,
        contact_phone: None,
        is_public: false,
        building_name: None,
        resource_name: None,
        season_id: None,
        application_id: None,
        commit_lsn,
        commit_ts_ms: 0,
    }
}

/// The hash of what a reservation record says, without its provenance (commit LSN and time): equal hashes
/// mean nothing visible changed.
pub fn reservation_hash(reservation: &Reservation) -> String {
    let mut copy = reservation.clone();
    copy.commit_lsn = 0;
    copy.commit_ts_ms = 0;
    let canonical = serde_json::to_vec(&copy).unwrap_or_default();
    hex::encode(Sha256::digest(&canonical))
}

#[cfg(test)]
#[path = "assemble_tests.rs"]
mod tests;
