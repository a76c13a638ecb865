//! The comparison's decisions, one situation at a time.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use vocabulary::records::{DesiredContent, DesiredItem, UpsertOrDelete};
use vocabulary::ReservationKind;

use crate::actual::{Calendar, Observed, Row};
use crate::desired::{DesiredEntry, RawRecord};
use crate::drift::{differences, Action, Finding, Room};
use crate::report::DriftKind;

const ROOM: &str = "room@x";

fn at(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M").expect("time")
}

fn micros(text: &str) -> i64 {
    at(text).and_utc().timestamp_micros()
}

fn entry(key: &str, hash: &str, start: &str, end: &str) -> DesiredEntry {
    let item = DesiredItem {
        op: UpsertOrDelete::Upsert,
        mailbox: ROOM.into(),
        resource_id: 1,
        item_key: key.into(),
        kind: ReservationKind::Event,
        reservation_id: 1,
        priority: 1,
        content_hash: hash.into(),
        content: Some(DesiredContent {
            subject: "Quiz".into(),
            body: None,
            start: micros(start),
            end: micros(end),
            time_zone: "Europe/Oslo".into(),
            is_all_day: false,
            show_as: "busy".into(),
            sensitivity: "normal".into(),
            location: None,
            categories: vec![],
        }),
        commit_lsn: 1,
        source_committed_at: None,
        rewrite: false,
    };
    let raw = RawRecord { partition: 0, offset: 7, key: format!("{ROOM}/{key}"), value: Some(vec![0]) };
    DesiredEntry { item, raw }
}

fn row(key: &str, event: Option<&str>, status: &str, hash: Option<&str>, intent: &str) -> Row {
    Row {
        item_key: key.into(),
        event_id: event.map(str::to_owned),
        sync_status: status.into(),
        content_hash: hash.map(str::to_owned),
        intent: intent.into(),
    }
}

fn event(id: &str, tag: Option<&str>, start: &str, end: &str) -> Observed {
    Observed {
        id: id.into(),
        subject: Some("Quiz".into()),
        start: Some(graph_client::DateTimeTimeZone::local(at(start), "UTC")),
        end: Some(graph_client::DateTimeTimeZone::local(at(end), "UTC")),
        is_all_day: Some(false),
        tagged_key: tag.map(str::to_owned),
    }
}

fn find(desired: &[DesiredEntry], rows: &[Row], calendar: &Calendar, unknown: &[&str]) -> Vec<Finding> {
    let desired: BTreeMap<String, DesiredEntry> =
        desired.iter().map(|e| (e.item.item_key.clone(), e.clone())).collect();
    let unknown = |key: &str| unknown.contains(&key);
    Room { mailbox: ROOM, desired: &desired, rows, calendar, unknown: &unknown }.findings()
}

fn kinds(findings: &[Finding]) -> Vec<(DriftKind, String)> {
    findings.iter().map(|f| (f.drift.kind, f.drift.item_key.clone())).collect()
}

#[test]
fn an_item_in_agreement_with_its_event_is_no_drift() {
    let d = entry("event:1", "h", "2030-01-05T10:00", "2030-01-05T11:00");
    let calendar = Calendar {
        in_window: vec![event("e1", Some("event:1"), "2030-01-05T10:00", "2030-01-05T11:00")],
        ..Calendar::default()
    };
    let rows = [row("event:1", Some("e1"), "synced", Some("h"), "none")];
    assert!(find(&[d], &rows, &calendar, &[]).is_empty());
}

#[test]
fn a_gone_event_is_missing_and_its_repair_forgets_the_event() {
    let d = entry("event:1", "h", "2030-01-05T10:00", "2030-01-05T11:00");
    let calendar = Calendar { gone: ["e1".to_owned()].into(), ..Calendar::default() };
    let rows = [row("event:1", Some("e1"), "synced", Some("h"), "none")];
    let found = find(&[d], &rows, &calendar, &[]);
    assert_eq!(kinds(&found), vec![(DriftKind::Missing, "event:1".to_owned())]);
    assert!(matches!(&found[0].action, Action::Rewrite { vanished: true, row_event: Some(e), .. } if e == "e1"));
}

#[test]
fn a_moved_event_is_changed_even_when_it_left_the_window() {
    let d = entry("event:1", "h", "2030-01-05T10:00", "2030-01-05T11:00");
    let calendar = Calendar {
        elsewhere: [("e1".to_owned(), event("e1", Some("event:1"), "2031-01-05T10:00", "2031-01-05T11:00"))].into(),
        ..Calendar::default()
    };
    let rows = [row("event:1", Some("e1"), "synced", Some("h"), "none")];
    let found = find(&[d], &rows, &calendar, &[]);
    assert_eq!(kinds(&found), vec![(DriftKind::Changed, "event:1".to_owned())]);
    assert!(found[0].drift.detail.contains("start desired 2030-01-05T10:00:00Z, calendar 2031-01-05T10:00:00Z"));
    assert!(matches!(&found[0].action, Action::Rewrite { vanished: false, .. }));
}

#[test]
fn items_the_sink_has_not_settled_are_unmapped_and_never_repaired() {
    let items = [
        entry("event:1", "h", "2030-01-05T10:00", "2030-01-05T11:00"),
        entry("event:2", "h", "2030-01-05T10:00", "2030-01-05T11:00"),
        entry("event:3", "new", "2030-01-05T10:00", "2030-01-05T11:00"),
    ];
    let rows =
        [row("event:2", None, "pending", None, "create"), row("event:3", Some("e3"), "synced", Some("old"), "none")];
    let found = find(&items, &rows, &Calendar::default(), &[]);
    assert_eq!(found.len(), 3);
    assert!(found.iter().all(|f| f.drift.kind == DriftKind::Unmapped && f.action == Action::None));
}

#[test]
fn parked_items_are_not_drift() {
    let d = entry("event:1", "h", "2030-01-05T10:00", "2030-01-05T11:00");
    let rows = [row("event:1", None, "parked", Some("h"), "none")];
    assert!(find(&[d], &rows, &Calendar::default(), &[]).is_empty());
}

#[test]
fn a_tagged_event_nothing_desires_is_stale_but_outlook_events_are_never_findings() {
    let calendar = Calendar {
        in_window: vec![
            event("x", Some("event:99"), "2030-01-05T10:00", "2030-01-05T11:00"),
            event("o", None, "2030-01-05T10:00", "2030-01-05T11:00"),
        ],
        ..Calendar::default()
    };
    let found = find(&[], &[], &calendar, &[]);
    assert_eq!(kinds(&found), vec![(DriftKind::Stale, "event:99".to_owned())]);
    assert_eq!(found[0].action, Action::Delete);
}

#[test]
fn tagged_events_the_sink_may_still_be_handling_are_not_stale() {
    let calendar = Calendar {
        in_window: vec![
            // a delete the sink has not applied yet: its live row still claims the event
            event("a", Some("event:1"), "2030-01-05T10:00", "2030-01-05T11:00"),
            // a create between its POST and its result: the row has an intent
            event("b", Some("event:2"), "2030-01-05T10:00", "2030-01-05T11:00"),
            // an item whose desired state could not be decoded
            event("c", Some("event:3"), "2030-01-05T10:00", "2030-01-05T11:00"),
            // an event the sink will adopt for a desired item without a row
            event("d", Some("event:4"), "2030-01-05T10:00", "2030-01-05T11:00"),
        ],
        ..Calendar::default()
    };
    let rows =
        [row("event:1", Some("a"), "synced", Some("h"), "none"), row("event:2", None, "pending", None, "create")];
    let desired = [entry("event:4", "h", "2030-01-05T10:00", "2030-01-05T11:00")];
    let found = find(&desired, &rows, &calendar, &["event:3"]);
    assert_eq!(kinds(&found), vec![(DriftKind::Unmapped, "event:4".to_owned())]);
}

#[test]
fn a_second_event_for_a_desired_item_is_stale_unless_the_mapped_one_is_gone() {
    let d = entry("event:1", "h", "2030-01-05T10:00", "2030-01-05T11:00");
    let copy = event("copy", Some("event:1"), "2030-01-05T10:00", "2030-01-05T11:00");
    let mapped = event("e1", Some("event:1"), "2030-01-05T10:00", "2030-01-05T11:00");
    let rows = [row("event:1", Some("e1"), "synced", Some("h"), "none")];
    let both = Calendar { in_window: vec![mapped, copy.clone()], ..Calendar::default() };
    let found = find(std::slice::from_ref(&d), &rows, &both, &[]);
    assert_eq!(kinds(&found), vec![(DriftKind::Stale, "event:1".to_owned())]);
    assert_eq!(found[0].drift.event_id.as_deref(), Some("copy"));
    // The mapped one is gone: the sink's lookup adopts the copy, so only the item is missing.
    let only_copy = Calendar { in_window: vec![copy], gone: ["e1".to_owned()].into(), ..Calendar::default() };
    assert_eq!(kinds(&find(&[d], &rows, &only_copy, &[])), vec![(DriftKind::Missing, "event:1".to_owned())]);
}

#[test]
fn a_row_reset_by_an_earlier_repair_is_produced_again() {
    let d = entry("event:1", "h", "2030-01-05T10:00", "2030-01-05T11:00");
    let rows = [row("event:1", None, "deleted", None, "none")];
    let found = find(&[d], &rows, &Calendar::default(), &[]);
    assert_eq!(kinds(&found), vec![(DriftKind::Missing, "event:1".to_owned())]);
    assert!(matches!(&found[0].action, Action::Rewrite { row_event: None, row_hash: None, .. }));
}

#[test]
fn all_day_items_match_their_local_dates_and_graph_rewriting_is_ignored() {
    let mut d = entry("event:1", "h", "2030-01-04T23:00", "2030-01-05T23:00").item;
    let content = d.content.as_mut().expect("content");
    content.is_all_day = true;
    content.body = Some("plain text that Graph wraps in html".into());
    let mut seen = event("e1", Some("event:1"), "2030-01-05T00:00", "2030-01-06T00:00");
    seen.is_all_day = Some(true);
    assert!(differences(content, &seen).is_empty());
    seen.subject = Some("Other".into());
    seen.is_all_day = Some(false);
    assert_eq!(differences(content, &seen).len(), 2);
}
