//! Stage 2 for one room: the full desired state of its calendar from the reservations of its resource.
//!
//! ```text
//!  reservations of the resource --DST rules--> timeline items --priority policy--> pieces --window--> items
//! ```
//! Invariants: the result is a pure function of the room's reservations, the policies and the window, so a
//! duplicate or replayed input yields the same items and the same hashes; bookings imported from Outlook
//! (their bb_event is in the mapping as `outlook`) take their slot from lower priorities but are never
//! written back to Outlook (the Outlook original is already there).

use std::collections::{BTreeMap, HashMap, HashSet};

use tracing::warn;
use vocabulary::records::{DesiredContent, DesiredItem, Reservation, UpsertOrDelete};
use vocabulary::ReservationKind;

use crate::config::Policies;
use crate::stage2::hash::content_hash;
use crate::stage2::overlap::{resolve, Piece};
use crate::stage2::timeline::{is_all_day_span, item_of, Item};
use crate::stage2::window::Window;

fn body_of(reservation: &Reservation) -> Option<String> {
    let mut lines = Vec::new();
    if let Some(organizer) = reservation.organizer.as_deref().filter(|o| !o.trim().is_empty()) {
        lines.push(format!("Arrangør: {organizer}"));
    }
    if let Some(description) = reservation.description.as_deref().filter(|d| !d.trim().is_empty()) {
        lines.push(description.to_owned());
    }
    (!lines.is_empty()).then(|| lines.join("\n\n"))
}

fn content_of(reservation: &Reservation, piece: &Piece, policies: &Policies) -> DesiredContent {
    DesiredContent {
        subject: reservation.title.clone(),
        body: body_of(reservation),
        start: piece.start,
        end: piece.end,
        time_zone: policies.time_zone.clone(),
        is_all_day: is_all_day_span(piece.start, piece.end),
        show_as: "busy".to_owned(),
        sensitivity: if reservation.is_public { "normal" } else { "private" }.to_owned(),
        location: reservation.resource_name.clone(),
        categories: Vec::new(),
    }
}

/// The room's timeline items (reservations whose times have an instant under the DST rules).
pub fn items_of(reservations: &[&Reservation], policies: &Policies) -> Vec<Item> {
    reservations
        .iter()
        .filter_map(|r| match item_of(r, policies.dst) {
            Ok(item) => item,
            Err(error) => {
                warn!(kind = r.kind.as_str(), reservation = r.reservation_id, error = %error, "reservation time skipped");
                None
            }
        })
        .collect()
}

/// The desired items of one room by item key.
pub fn desired_for_room(
    mailbox: &str,
    reservations: &[&Reservation],
    imported_events: &HashSet<i32>,
    policies: &Policies,
    window: Window,
) -> BTreeMap<String, DesiredItem> {
    // A reservation linked to two resources mapped to the same mailbox is one item in that calendar.
    let mut by_id: HashMap<(ReservationKind, i32), &Reservation> = HashMap::new();
    for reservation in reservations {
        by_id.entry((reservation.kind, reservation.reservation_id)).or_insert(*reservation);
    }
    let unique: Vec<&Reservation> = by_id.values().copied().collect();
    let items = items_of(&unique, policies);
    let min_piece = i64::try_from(policies.min_piece.as_micros()).unwrap_or(i64::MAX);
    let mut out = BTreeMap::new();
    for piece in resolve(&items, policies.overlap, min_piece) {
        if piece.kind == ReservationKind::Event && imported_events.contains(&piece.reservation_id) {
            continue;
        }
        if !window.overlaps(piece.start, piece.end) {
            continue;
        }
        let Some(reservation) = by_id.get(&(piece.kind, piece.reservation_id)) else { continue };
        let content = content_of(reservation, &piece, policies);
        let item_key = piece.item_key();
        out.insert(
            item_key.clone(),
            DesiredItem {
                op: UpsertOrDelete::Upsert,
                mailbox: mailbox.to_owned(),
                resource_id: reservation.resource_id,
                item_key,
                kind: piece.kind,
                reservation_id: piece.reservation_id,
                priority: i32::from(piece.kind.priority()),
                content_hash: content_hash(&content),
                content: Some(content),
                commit_lsn: reservation.commit_lsn,
                source_committed_at: None,
                rewrite: false,
            },
        );
    }
    out
}

/// The delete record of an item that must disappear.
pub fn delete_of(last: &DesiredItem) -> DesiredItem {
    DesiredItem {
        op: UpsertOrDelete::Delete,
        mailbox: last.mailbox.clone(),
        resource_id: last.resource_id,
        item_key: last.item_key.clone(),
        kind: last.kind,
        reservation_id: last.reservation_id,
        priority: last.priority,
        content_hash: String::new(),
        content: None,
        commit_lsn: last.commit_lsn,
        source_committed_at: None,
        rewrite: false,
    }
}
