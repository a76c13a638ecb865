//! What the system actually holds (the emulator's room calendars, outlook_calendar_mapping, roomsync_conflicts)
//! against the oracle's expectation, as a list of readable differences (empty = converged), and the loop check
//! on the emulator's request log.
//!
//! Differences reported: a missing item, a duplicate (two events with one item key), a stale item (an event for an
//! item that must not exist), wrong content, an Outlook booking lost or an unknown untagged event, a mapping row
//! that disagrees with the calendar, a conflict not recorded, a conflict recorded against one of roomsync's own
//! events, an import missing or not cancelled.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDateTime, Utc};
use graph_emulator::Emulator;
use serde_json::Value;
use tokio_postgres::Client;

use super::oracle::{Expected, Slot};
use super::outlook::item_key;
use super::workload::History;

/// `reservation_type, outlook_event_id, sync_status, intent` of a mapping row.
type MappingRow = (String, Option<String>, String, String);

/// `outlook_item_id, outlook_event_id, reservation_type, reservation_id, starts_at, ends_at` of a conflict.
type ConflictRow = (String, String, String, i32, DateTime<Utc>, DateTime<Utc>);

fn slot_of(event: &Value) -> Slot {
    let text = |v: &Value| {
        let raw = v["dateTime"].as_str().unwrap_or_default();
        NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f")
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string())
            .unwrap_or_else(|_| raw.to_owned())
    };
    Slot { start: text(&event["start"]), end: text(&event["end"]), all_day: event["isAllDay"].as_bool() == Some(true) }
}

/// Every difference between the system and `expected`.
pub async fn differences(
    emu: &Emulator,
    db: &Client,
    expected: &Expected,
    history: &History,
) -> anyhow::Result<Vec<String>> {
    let mut diffs = Vec::new();
    let mut event_ids: HashMap<(String, String), String> = HashMap::new();
    let mut roomsync_event_ids = Vec::new();
    for mailbox in &expected.mailboxes {
        let events = emu.mailbox_events(mailbox).unwrap_or_default();
        let mut ours: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
        let mut theirs = Vec::new();
        for event in &events {
            match item_key(event) {
                Some(key) => ours.entry(key.to_owned()).or_default().push(event),
                None => theirs.push((event["subject"].as_str().unwrap_or_default().to_owned(), slot_of(event))),
            }
        }
        let want = expected.items.get(mailbox).cloned().unwrap_or_default();
        for (key, (subject, slot)) in &want {
            match ours.get(key).map(Vec::as_slice) {
                None | Some([]) => diffs.push(format!("missing  {mailbox} {key} {subject:?} {slot:?}")),
                Some([event]) => {
                    let got = (event["subject"].as_str().unwrap_or_default().to_owned(), slot_of(event));
                    if got != (subject.clone(), slot.clone()) {
                        diffs.push(format!("content  {mailbox} {key}: want {subject:?} {slot:?}, got {got:?}"));
                    }
                    if let Some(id) = event["id"].as_str() {
                        event_ids.insert((mailbox.clone(), key.clone()), id.to_owned());
                    }
                }
                Some(many) => diffs.push(format!("duplicate {mailbox} {key}: {} events", many.len())),
            }
        }
        for (key, events) in &ours {
            roomsync_event_ids.extend(events.iter().filter_map(|e| e["id"].as_str().map(str::to_owned)));
            if !want.contains_key(key) {
                let subject = events.first().and_then(|e| e["subject"].as_str()).unwrap_or_default();
                diffs.push(format!("stale    {mailbox} {key} {subject:?} ({} events)", events.len()));
            }
        }
        theirs.sort();
        let want_theirs = expected.outlook.get(mailbox).cloned().unwrap_or_default();
        if theirs != want_theirs {
            let lost: Vec<_> = want_theirs.iter().filter(|x| !theirs.contains(x)).collect();
            let unknown: Vec<_> = theirs.iter().filter(|x| !want_theirs.contains(x)).collect();
            diffs.push(format!("outlook  {mailbox}: lost {lost:?}, unknown untagged {unknown:?}"));
        }
    }
    let imports = mapping_differences(db, expected, history, &event_ids, &mut diffs).await?;
    conflict_differences(db, expected, &roomsync_event_ids, &imports, &mut diffs).await?;
    Ok(diffs)
}

async fn mapping_differences(
    db: &Client,
    expected: &Expected,
    history: &History,
    event_ids: &HashMap<(String, String), String>,
    diffs: &mut Vec<String>,
) -> anyhow::Result<HashMap<(String, String), String>> {
    let rows = db
        .query(
            "select outlook_item_id, item_key, reservation_type, outlook_event_id, sync_status, intent \
             from outlook_calendar_mapping",
            &[],
        )
        .await?;
    let mut mapping: HashMap<(String, String), MappingRow> = HashMap::new();
    let mut imports: HashMap<(String, String), String> = HashMap::new();
    for row in rows {
        let (mailbox, key, kind): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        let (event, status, intent): (Option<String>, String, String) = (row.get(3), row.get(4), row.get(5));
        if kind == "outlook" {
            if let Some(event) = &event {
                imports.insert((mailbox.clone(), event.clone()), status.clone());
            }
        }
        mapping.insert((mailbox, key), (kind, event, status, intent));
    }
    for (mailbox, items) in &expected.items {
        for key in items.keys() {
            let row = mapping.get(&(mailbox.clone(), key.clone()));
            let calendar = event_ids.get(&(mailbox.clone(), key.clone()));
            match row {
                Some((_, event, status, intent))
                    if status == "synced" && intent == "none" && event.as_ref() == calendar => {}
                other => diffs.push(format!("mapping  {mailbox} {key}: row {other:?}, calendar event {calendar:?}")),
            }
        }
    }
    for ((mailbox, key), (kind, _, status, _)) in &mapping {
        let live = expected.items.get(mailbox).is_some_and(|items| items.contains_key(key));
        if kind != "outlook" && status == "synced" && !live {
            diffs.push(format!("mapping  {mailbox} {key}: row says synced for an item that must not exist"));
        }
    }
    for (mailbox, event) in &expected.imports {
        match imports.get(&(mailbox.clone(), event.clone())) {
            Some(status) if status != "deleted" => {}
            other => diffs.push(format!("import   {mailbox} {event}: must be imported, mapping status {other:?}")),
        }
    }
    // Bookings that took place during the run keep their imports: only a deletion cancels one. At least one of
    // them must have been imported while it was still in the window, or the check tested nothing.
    let mut aging_imported = 0;
    for event in &history.aging_outlook_bookings {
        let Some(booking) = history.outlook_bookings.get(event) else { continue };
        match imports.get(&(booking.mailbox.clone(), event.clone())).map(String::as_str) {
            Some("deleted") => diffs.push(format!(
                "import   {} {event}: cancelled, but its booking only ended and left the window",
                booking.mailbox
            )),
            Some(_) => aging_imported += 1,
            None => {}
        }
    }
    if !history.aging_outlook_bookings.is_empty() && aging_imported == 0 {
        diffs.push("import   none of the bookings that age out during the run was imported".to_owned());
    }
    for (event, booking) in &history.deleted_outlook_bookings {
        if let Some(status) = imports.get(&(booking.mailbox.clone(), event.clone())) {
            if status != "deleted" {
                diffs
                    .push(format!("import   {} {event}: deleted in Outlook, mapping status {status}", booking.mailbox));
            }
        }
    }
    Ok(imports)
}

async fn conflict_differences(
    db: &Client,
    expected: &Expected,
    roomsync_event_ids: &[String],
    imports: &HashMap<(String, String), String>,
    diffs: &mut Vec<String>,
) -> anyhow::Result<()> {
    let rows = db
        .query(
            "select outlook_item_id, outlook_event_id, reservation_type, reservation_id, starts_at, ends_at \
             from roomsync_conflicts",
            &[],
        )
        .await?;
    let recorded: Vec<ConflictRow> =
        rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5))).collect();
    for (mailbox, event, kind, id, start, end) in &expected.conflicts {
        // The row's span is not compared: it keeps the overlap of its first detection (F6).
        let found = recorded
            .iter()
            .any(|(m, e, k, i, _, _)| m == mailbox && k == kind && i == id && event.as_ref().is_none_or(|x| x == e));
        if !found {
            let import = event.as_ref().and_then(|e| imports.get(&(mailbox.clone(), e.clone())));
            diffs.push(format!(
                "conflict {mailbox} outlook event {event:?} vs {kind} {id} {start}..{end}: not recorded \
                 (import mapping row: {import:?})"
            ));
        }
    }
    for (mailbox, event, kind, id, _, _) in &recorded {
        if roomsync_event_ids.contains(event) {
            diffs.push(format!(
                "conflict {mailbox}: roomsync's own event {event} recorded as a conflict with {kind} {id}"
            ));
        }
    }
    Ok(())
}

/// Successful Graph writes (create, update, delete; `$batch` inner requests too) so far.
pub fn graph_writes(emu: &Emulator) -> Vec<(String, String)> {
    emu.requests()
        .into_iter()
        .filter(|r| matches!(r.method.as_str(), "POST" | "PATCH" | "DELETE"))
        .filter(|r| r.path.contains("/events") && (200..300).contains(&r.status))
        .map(|r| (r.method, r.path))
        .collect()
}

/// The event id a write addressed (`.../events/{id}`), `None` for a create.
pub fn addressed_event(path: &str) -> Option<String> {
    let rest = path.split("/events/").nth(1)?;
    let id = rest.split(['/', '?']).next()?;
    (!id.is_empty()).then(|| id.to_owned())
}
