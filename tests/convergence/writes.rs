//! The loop check: Graph writes roomsync made per event, against a bound derived from what the workload did.
//!
//! A write is a successful POST, PATCH or DELETE on an event (inner `$batch` requests included); the simulated
//! Outlook users' own writes are taken off. The bound for one event is twice the number of things that may
//! legitimately rewrite it: booking-system writes to its reservation and to reservations overlapping it in the
//! same room (trimming), Outlook edits of it, changes that touch many items at once (season changes, bulk
//! updates), crashes and restarts (a replayed unit may repeat a write), plus a small constant. A feedback loop
//! (roomsync reacting to its own writes) grows without bound and breaks it; a healthy run stays far below.

use std::collections::HashMap;
use std::fmt::Write as _;

use anyhow::bail;

use super::booking::Reservation;
use super::compare::{addressed_event, graph_writes};
use super::harness::Harness;
use super::outlook::item_key;
use super::workload::{History, Kind, ROOMS};

fn kind_of(text: &str) -> Option<Kind> {
    match text {
        "event" => Some(Kind::Event),
        "booking" => Some(Kind::Booking),
        "allocation" => Some(Kind::Allocation),
        _ => None,
    }
}

/// Booking-system writes that may change the item of `(kind, id)`: its own and those of reservations sharing a
/// resource and overlapping it in time; `None` when the generator does not know the reservation (sample data).
fn touches_near(history: &History, reservations: &[Reservation], kind: Kind, id: i32) -> Option<usize> {
    let own = reservations.iter().find(|r| r.kind == kind && r.id == id)?;
    let near: usize = reservations
        .iter()
        .filter(|r| r.resources.iter().any(|x| own.resources.contains(x)) && r.from < own.to && own.from < r.to)
        .map(|r| history.touches.get(&(r.kind, r.id)).copied().unwrap_or(0))
        .sum();
    Some(near + history.touches.get(&(kind, id)).copied().unwrap_or(0))
}

/// Fails when an event got more roomsync writes than its bound; adds a summary to `report`.
pub fn check(
    harness: &Harness,
    history: &History,
    reservations: &[Reservation],
    crashes: usize,
    report: &mut String,
) -> anyhow::Result<()> {
    let mut key_of: HashMap<String, String> = HashMap::new();
    for room in ROOMS {
        for event in harness.emu.mailbox_events(room.mailbox).unwrap_or_default() {
            if let (Some(id), Some(key)) = (event["id"].as_str(), item_key(&event)) {
                key_of.insert(id.to_owned(), key.to_owned());
            }
        }
    }
    let most_touched = history.touches.values().copied().max().unwrap_or(0);
    let slack = history.bulk_changes + crashes + 3;
    let mut per_event: HashMap<String, (usize, usize)> = HashMap::new();
    let mut creates = 0usize;
    for (method, path) in graph_writes(&harness.emu) {
        match (addressed_event(&path), method.as_str()) {
            (Some(id), "PATCH") => per_event.entry(id).or_default().0 += 1,
            (Some(id), "DELETE") => per_event.entry(id).or_default().1 += 1,
            _ => creates += 1,
        }
    }
    let mut rows = Vec::new();
    for (id, (patches, deletes)) in &per_event {
        let own = history.user_writes.get(id).copied().unwrap_or(0);
        let roomsync = (patches + deletes).saturating_sub(own);
        let edits = history.roomsync_event_edits.get(id).copied().unwrap_or(0);
        let key = key_of.get(id).cloned().unwrap_or_else(|| "(gone)".to_owned());
        let mut parts = key.split(':');
        let reservation = parts.next().and_then(kind_of).zip(parts.next().and_then(|i| i.parse().ok()));
        let near = reservation.and_then(|(k, i)| touches_near(history, reservations, k, i)).unwrap_or(most_touched);
        let bound = 2 * (near + edits + slack);
        rows.push((
            roomsync,
            bound,
            format!(
                "{id} {key}: {patches} PATCH, {deletes} DELETE, user {own}, near touches {near}, outlook edits {edits}"
            ),
        ));
    }
    rows.sort_by_key(|row| std::cmp::Reverse(row.0));
    let over: Vec<&(usize, usize, String)> = rows.iter().filter(|(w, b, _)| w > b).collect();
    if !over.is_empty() {
        let lines: Vec<String> = over.iter().map(|(w, b, t)| format!("{w} writes > bound {b}: {t}")).collect();
        bail!("loop? Graph writes per event over their bound:\n  {}", lines.join("\n  "));
    }
    let all_touches: usize = history.touches.values().sum();
    let all_edits: usize = history.roomsync_event_edits.values().sum();
    let create_bound =
        2 * (all_touches + all_edits) + (history.bulk_changes + crashes + 1) * (history.touches.len() + 40);
    if creates > create_bound {
        bail!("loop? {creates} creates, bound {create_bound}");
    }
    let _ = writeln!(report, "graph writes: {creates} creates (bound {create_bound}); most rewritten events:");
    for (writes, bound, text) in rows.iter().take(3) {
        let _ = writeln!(report, "  {writes} (bound {bound}) {text}");
    }
    Ok(())
}
