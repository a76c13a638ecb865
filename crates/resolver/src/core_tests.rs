//! Stage-2 rules end to end through the core: desired items, idempotence, room mapping, Outlook events.

use std::time::Duration;

use vocabulary::records::{GraphEvent, GraphEventBody, ImportOp, RoomsyncTags, UpsertOrDelete};
use vocabulary::ReservationKind;

use super::*;
use crate::config::{ConflictPolicy, EditPolicy};
use crate::fixtures::{allocation_101, base, event_305, int, text, utc, Tx, HALL_A, HALL_B};
use crate::kafka::cdc::Cell;

fn now() -> i64 {
    utc("2026-03-20 12:00")
}

fn core() -> (Core, Output) {
    let mut core = Core::new(Policies::default(), WindowConfig::default());
    let output = core.apply_transaction(&base(), now());
    (core, output)
}

fn keys(output: &Output) -> Vec<(String, String, UpsertOrDelete)> {
    output.desired.iter().map(|d| (d.mailbox.clone(), d.item_key.clone(), d.op)).collect()
}

fn body(subject: &str, start: i64, end: i64, tags: RoomsyncTags) -> GraphEventBody {
    GraphEventBody {
        change_key: Some("ck-1".into()),
        ical_uid: None,
        subject: Some(subject.into()),
        start,
        end,
        time_zone: None,
        is_all_day: false,
        is_cancelled: false,
        show_as: "busy".into(),
        sensitivity: "normal".into(),
        event_type: "singleInstance".into(),
        series_master_id: None,
        organizer: None,
        attendees: vec![],
        categories: vec![],
        created: None,
        last_modified: None,
        transaction_id: None,
        tags,
    }
}

fn graph(mailbox: &str, id: &str, body: GraphEventBody) -> GraphEvent {
    GraphEvent {
        op: UpsertOrDelete::Upsert,
        mailbox: mailbox.into(),
        event_id: id.into(),
        observed_at: 0,
        event: Some(body),
    }
}

fn ours(item_key: &str) -> RoomsyncTags {
    RoomsyncTags { item_key: Some(item_key.into()), ..RoomsyncTags::default() }
}

#[test]
fn the_booking_trims_its_allocation_and_times_are_oslo_instants() {
    let (_, output) = core();
    assert_eq!(
        keys(&output),
        vec![
            (HALL_B.into(), "allocation:101".into(), UpsertOrDelete::Upsert),
            (HALL_B.into(), "booking:201".into(), UpsertOrDelete::Upsert)
        ]
    );
    let allocation = output.desired.iter().find(|d| d.kind == ReservationKind::Allocation).expect("allocation");
    let content = allocation.content.as_ref().expect("content");
    // 19:00-20:00 Oslo winter time (the booking owns 18:00-19:00).
    assert_eq!((content.start, content.end), (utc("2026-03-24 18:00"), utc("2026-03-24 19:00")));
    assert_eq!(content.subject, "Fjordvik Idrettslag");
    assert_eq!(allocation.priority, 3);
    assert_eq!(allocation.content_hash, crate::stage2::hash::content_hash(content));
}

#[test]
fn duplicate_and_replayed_inputs_produce_no_output() {
    let (mut core, _) = core();
    assert!(core.apply_transaction(&base(), now()).desired.is_empty());
    assert!(core.tick(now()).desired.is_empty());
    let rewrite = Tx::new(20)
        .delete("bb_allocation_resource", &[("allocation_id", int(101)), ("resource_id", int(2))])
        .insert("bb_allocation_resource", &[("allocation_id", int(101)), ("resource_id", int(2))])
        .done();
    let output = core.apply_transaction(&rewrite, now());
    assert!(output.desired.is_empty() && output.reservations.is_empty(), "link rewrite: no change");
}

#[test]
fn cancelling_the_booking_gives_the_allocation_its_whole_slot_back_under_its_plain_key() {
    let (mut core, _) = core();
    let cancel = Tx::new(20).update("bb_booking", &[("id", int(201)), ("active", int(0))]).done();
    let output = core.apply_transaction(&cancel, now());
    assert_eq!(
        keys(&output),
        vec![
            (HALL_B.into(), "allocation:101".into(), UpsertOrDelete::Upsert),
            (HALL_B.into(), "booking:201".into(), UpsertOrDelete::Delete)
        ]
    );
    let content = output.desired[0].content.as_ref().expect("content");
    assert_eq!((content.start, content.end), (utc("2026-03-24 17:00"), utc("2026-03-24 19:00")));
}

#[test]
fn a_booking_in_the_middle_splits_the_allocation_into_numbered_pieces() {
    let (mut core, _) = core();
    let moved = Tx::new(20)
        .update(
            "bb_booking",
            &[
                ("id", int(201)),
                ("from_", crate::fixtures::local("2026-03-24 18:30")),
                ("to_", crate::fixtures::local("2026-03-24 19:00")),
            ],
        )
        .done();
    let output = core.apply_transaction(&moved, now());
    assert_eq!(
        keys(&output),
        vec![
            (HALL_B.into(), "allocation:101:1".into(), UpsertOrDelete::Upsert),
            (HALL_B.into(), "allocation:101:2".into(), UpsertOrDelete::Upsert),
            (HALL_B.into(), "booking:201".into(), UpsertOrDelete::Upsert),
            (HALL_B.into(), "allocation:101".into(), UpsertOrDelete::Delete)
        ]
    );
}

#[test]
fn deactivating_a_room_mapping_deletes_roomsyncs_items_in_that_room_only() {
    let (mut core, _) = core();
    core.apply_transaction(&event_305(15, 1, &[1, 2]), now());
    let foreign = graph(
        HALL_B,
        "outlook-1",
        body("Styremøte", utc("2026-04-01 10:00"), utc("2026-04-01 11:00"), RoomsyncTags::default()),
    );
    core.apply_graph_event(&foreign, now());
    let off = Tx::new(20).update("bb_resource_outlook_item", &[("id", int(1)), ("active", int(0))]).done();
    let output = core.apply_transaction(&off, now());
    let mut deleted = keys(&output);
    deleted.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        deleted,
        vec![
            (HALL_B.into(), "allocation:101".into(), UpsertOrDelete::Delete),
            (HALL_B.into(), "booking:201".into(), UpsertOrDelete::Delete),
            (HALL_B.into(), "event:305".into(), UpsertOrDelete::Delete)
        ],
        "Hall A keeps event 305; the Outlook-origin booking in Hall B gets no record"
    );
    assert!(output.imports.is_empty());
}

#[test]
fn the_stengt_event_shows_in_both_rooms_and_a_private_event_is_marked_private() {
    let (mut core, _) = core();
    let output = core.apply_transaction(&event_305(15, 0, &[1, 2]), now());
    let mut rooms: Vec<String> = output.desired.iter().map(|d| d.mailbox.clone()).collect();
    rooms.sort();
    assert_eq!(rooms, vec![HALL_A.to_owned(), HALL_B.to_owned()]);
    let content = output.desired[0].content.as_ref().expect("content");
    assert_eq!(content.subject, "STENGT - gulvvedlikehold");
    assert_eq!((content.body.as_deref(), content.sensitivity.as_str()), (None, "private"));
}

#[test]
fn items_enter_the_window_as_time_passes() {
    let window = WindowConfig { horizon: Duration::from_secs(7 * 86_400), ..WindowConfig::default() };
    let mut core = Core::new(Policies::default(), window);
    let early = utc("2026-03-01 12:00");
    assert!(core.apply_transaction(&base(), early).desired.is_empty(), "24 March is beyond a one-week horizon");
    assert!(core.tick(early).desired.is_empty(), "the first tick evaluates every room");
    // Later ticks evaluate the rooms with something in what entered the window since the last one.
    assert!(core.tick(utc("2026-03-10 12:00")).desired.is_empty());
    let output = core.tick(utc("2026-03-20 12:00"));
    assert_eq!(output.desired.len(), 2);
    let later = core.tick(utc("2026-03-30 12:00"));
    assert!(later.desired.is_empty(), "past items leave without deletes");
}

#[test]
fn an_echo_of_roomsyncs_own_write_produces_nothing() {
    let (mut core, output) = core();
    let booking = output.desired.iter().find(|d| d.item_key == "booking:201").expect("booking");
    let content = booking.content.clone().expect("content");
    let echo = graph(HALL_B, "AAMk-1", body(&content.subject, content.start, content.end, ours("booking:201")));
    let result = core.apply_graph_event(&echo, now());
    assert_eq!(result, Output::default());
}

#[test]
fn an_outlook_edit_of_a_roomsync_event_is_reverted_by_reemitting_the_desired_state() {
    let (mut core, output) = core();
    let booking = output.desired.iter().find(|d| d.item_key == "booking:201").expect("booking").clone();
    let content = booking.content.clone().expect("content");
    let edited =
        graph(HALL_B, "AAMk-1", body("Moved by hand", content.start, content.end + 3_600_000_000, ours("booking:201")));
    let result = core.apply_graph_event(&edited, now());
    assert_eq!(
        result.desired,
        vec![DesiredItem { source_committed_at: None, rewrite: true, ..booking.clone() }],
        "flagged, so the sink rewrites the unchanged content"
    );
    assert_eq!(result.reverts, vec![(booking.mailbox.clone(), "booking:201".to_owned())]);

    let mut recording =
        Core::new(Policies { outlook_edit: EditPolicy::Record, ..Policies::default() }, WindowConfig::default());
    recording.apply_transaction(&base(), now());
    let recorded = recording.apply_graph_event(&edited, now());
    assert!(recorded.desired.is_empty() && recorded.reverts.is_empty());
}

#[test]
fn an_outlook_edit_reported_again_and_again_is_reverted_once_per_version() {
    let (mut core, output) = core();
    let booking = output.desired.iter().find(|d| d.item_key == "booking:201").expect("booking").clone();
    let content = booking.content.clone().expect("content");
    let edit = |change_key: &str, subject: &str| {
        let body = GraphEventBody {
            change_key: Some(change_key.into()),
            ..body(subject, content.start, content.end, ours("booking:201"))
        };
        graph(HALL_B, "AAMk-1", body)
    };
    let first = edit("ck-edit-1", "Moved by hand");
    assert_eq!(core.apply_graph_event(&first, now()).reverts.len(), 1);
    for _ in 0..3 {
        // Duplicate notifications, a delta replay, the next poll: the same version.
        assert_eq!(core.apply_graph_event(&first, now()), Output::default(), "reverted already");
    }
    let second = edit("ck-edit-2", "Moved by hand again");
    assert_eq!(core.apply_graph_event(&second, now()).reverts.len(), 1, "a new edit is reverted again");
    // The sink's rewrite comes back (an echo), then somebody makes the first edit once more.
    let rewritten = graph(HALL_B, "AAMk-1", body(&content.subject, content.start, content.end, ours("booking:201")));
    assert_eq!(core.apply_graph_event(&rewritten, now()), Output::default());
    assert_eq!(core.apply_graph_event(&first, now()).reverts.len(), 1, "after the rewrite, an edit is new again");
}

#[test]
fn a_late_view_of_roomsyncs_earlier_write_is_an_echo_but_an_edit_back_to_it_is_reverted() {
    let (mut core, output) = core();
    let first = output.desired.iter().find(|d| d.item_key == "booking:201").expect("booking").clone();
    let moved =
        Tx::new(20).update("bb_booking", &[("id", int(201)), ("to_", crate::fixtures::local("2026-03-24 18:30"))]);
    let second = core.apply_transaction(&moved.done(), now());
    let second = second.desired.iter().find(|d| d.item_key == "booking:201").expect("the booking moved").clone();
    assert_ne!(first.content_hash, second.content_hash);

    // The Graph source reports the event as the sink wrote it first, after the second version was emitted.
    let old = first.content.clone().expect("content");
    let tags = |hash: &str| RoomsyncTags { content_hash: Some(hash.to_owned()), ..ours("booking:201") };
    let late = graph(HALL_B, "AAMk-1", body(&old.subject, old.start, old.end, tags(&first.content_hash)));
    assert_eq!(core.apply_graph_event(&late, now()), Output::default(), "roomsync's own earlier write");

    // Somebody sets the event back to the first version by hand after the second was written: the tag still
    // names the second version, so this is an edit.
    let by_hand = graph(HALL_B, "AAMk-1", body(&old.subject, old.start, old.end, tags(&second.content_hash)));
    let reverted = core.apply_graph_event(&by_hand, now());
    assert_eq!(second.source_committed_at, Some(20), "the moving transaction's commit time (fixture: its LSN)");
    assert_eq!(
        reverted.desired,
        vec![DesiredItem { source_committed_at: None, rewrite: true, ..second }],
        "no commit behind it"
    );
}

#[test]
fn a_non_conflicting_outlook_booking_is_imported_once() {
    let (mut core, _) = core();
    let meeting = graph(
        HALL_B,
        "outlook-1",
        body("Styremøte", utc("2026-03-25 10:00"), utc("2026-03-25 11:00"), RoomsyncTags::default()),
    );
    let output = core.apply_graph_event(&meeting, now());
    assert_eq!(output.imports.len(), 1);
    assert_eq!(output.imports[0].op, ImportOp::Upsert);
    assert_eq!((output.imports[0].resource_id, output.imports[0].event_id.as_str()), (2, "outlook-1"));
    assert!(core.apply_graph_event(&meeting, now()).imports.is_empty(), "duplicate: nothing new");
    let gone = GraphEvent { op: UpsertOrDelete::Delete, event: None, ..meeting };
    let cancelled = core.apply_graph_event(&gone, now());
    assert_eq!(cancelled.imports.first().map(|i| i.op), Some(ImportOp::Cancel));
}

#[test]
fn an_outlook_booking_over_a_reservation_is_a_conflict_not_an_import() {
    let (mut core, _) = core();
    let clash = graph(
        HALL_B,
        "outlook-2",
        body("Kurs", utc("2026-03-24 17:30"), utc("2026-03-24 18:30"), RoomsyncTags::default()),
    );
    let output = core.apply_graph_event(&clash, now());
    assert!(output.imports.is_empty());
    let mut hits: Vec<(ReservationKind, i32)> =
        output.conflicts.iter().map(|c| (c.hit.kind, c.hit.reservation_id)).collect();
    hits.sort_by_key(|(k, id)| (k.priority(), *id));
    assert_eq!(hits, vec![(ReservationKind::Booking, 201), (ReservationKind::Allocation, 101)]);
    assert!(output.conflicts.iter().all(|c| c.policy == ConflictPolicy::Record));
    assert!(core.apply_graph_event(&clash, now()).conflicts.is_empty(), "recorded once");
}

#[test]
fn only_owned_rooms_are_emitted() {
    let mut core = Core::new(Policies::default(), WindowConfig::default());
    let partitions = 8;
    let hall_b = vocabulary::keys::room_partition(HALL_B, partitions);
    core.ownership = Ownership { partitions, owned: Some([(hall_b + 1) % partitions].into_iter().collect()) };
    let output = core.apply_transaction(&base(), now());
    assert!(output.desired.iter().all(|d| d.mailbox != HALL_B));
    let _ = (allocation_101(1), text("x"));
}

#[test]
fn a_midnight_to_midnight_event_is_an_all_day_item() {
    let (mut core, _) = core();
    let day = Tx::new(20)
        .insert(
            "bb_event",
            &[
                ("id", int(306)),
                ("active", int(1)),
                ("is_public", int(1)),
                ("name", text("17. mai")),
                ("from_", crate::fixtures::local("2026-05-17 00:00")),
                ("to_", crate::fixtures::local("2026-05-18 00:00")),
            ],
        )
        .insert("bb_event_resource", &[("event_id", int(306)), ("resource_id", int(1))])
        .done();
    let output = core.apply_transaction(&day, now());
    let content = output.desired.first().and_then(|d| d.content.as_ref()).expect("item");
    assert!(content.is_all_day);
    assert_eq!((content.start, content.end), (utc("2026-05-16 22:00"), utc("2026-05-17 22:00")));
}

#[test]
fn a_conflict_records_the_overlap_and_the_decline_policy_marks_it_declined() {
    let policies = Policies { conflict: ConflictPolicy::Decline, ..Policies::default() };
    let mut core = Core::new(policies, WindowConfig::default());
    core.apply_transaction(&base(), now());
    let clash = graph(
        HALL_B,
        "outlook-2",
        body("Kurs", utc("2026-03-24 16:00"), utc("2026-03-24 17:30"), RoomsyncTags::default()),
    );
    let output = core.apply_graph_event(&clash, now());
    let booking = output.conflicts.iter().find(|c| c.hit.kind == ReservationKind::Booking).expect("booking hit");
    assert_eq!((booking.hit.start, booking.hit.end), (utc("2026-03-24 17:00"), utc("2026-03-24 17:30")));
    assert!(output.conflicts.iter().all(|c| c.policy == ConflictPolicy::Decline));
}

#[test]
fn with_imports_off_an_outlook_booking_is_not_imported() {
    let policies = Policies { import_outlook_bookings: false, ..Policies::default() };
    let mut core = Core::new(policies, WindowConfig::default());
    core.apply_transaction(&base(), now());
    let meeting = graph(
        HALL_B,
        "outlook-1",
        body("Styremøte", utc("2026-03-25 10:00"), utc("2026-03-25 11:00"), RoomsyncTags::default()),
    );
    assert_eq!(core.apply_graph_event(&meeting, now()), Output::default());
}

#[test]
fn history_before_the_window_is_not_kept_and_a_reservation_moved_into_the_past_leaves() {
    let (mut core, _) = core();
    core.prune(now());
    let mut old = allocation_101(1);
    old[0] = ("id", int(90));
    old[5] = ("from_", crate::fixtures::local("2025-01-07 18:00"));
    old[6] = ("to_", crate::fixtures::local("2025-01-07 20:00"));
    let history = Tx::new(20)
        .insert("bb_allocation", &old)
        .insert("bb_allocation_resource", &[("allocation_id", int(90)), ("resource_id", int(2))])
        .done();
    assert_eq!(core.apply_transaction(&history, now()), Output::default());
    assert!(core.assembler.state.main_row(ReservationKind::Allocation, 90).is_none(), "not stored");

    let moved = Tx::new(21)
        .update(
            "bb_allocation",
            &[
                ("id", int(101)),
                ("from_", crate::fixtures::local("2026-01-06 18:00")),
                ("to_", crate::fixtures::local("2026-01-06 20:00")),
            ],
        )
        .done();
    let output = core.apply_transaction(&moved, now());
    assert_eq!(keys(&output), vec![(HALL_B.into(), "allocation:101".into(), UpsertOrDelete::Delete)]);
}

#[test]
fn deleting_an_outlook_booking_that_was_never_imported_cancels_nothing() {
    let (mut core, _) = core();
    let clash = graph(
        HALL_B,
        "outlook-2",
        body("Kurs", utc("2026-03-24 17:30"), utc("2026-03-24 18:30"), RoomsyncTags::default()),
    );
    core.apply_graph_event(&clash, now());
    let gone = GraphEvent { op: UpsertOrDelete::Delete, event: None, ..clash };
    assert!(core.apply_graph_event(&gone, now()).imports.is_empty());
}

/// An import whose Outlook event the Graph state no longer holds is cancelled at the room's next evaluation,
/// whatever became of the deletion itself (read before the import's mapping row after a rebuild, or compacted
/// away): the chaos test's imports left `synced` after the owner deleted them.
#[test]
fn an_import_whose_outlook_event_is_gone_is_cancelled_once() {
    let (mut gone, _) = core();
    let import_row = |status: &str| {
        Tx::new(40).insert(
            "outlook_calendar_mapping",
            &[
                ("id", int(7)),
                ("outlook_item_id", text(HALL_B)),
                ("outlook_event_id", text("outlook-9")),
                ("reservation_type", text("outlook")),
                ("reservation_id", int(0)),
                ("item_key", text("outlook:outlook-9")),
                ("sync_status", text(status)),
            ],
        )
    };
    let output = gone.apply_transaction(&import_row("synced").done(), now());
    let cancels: Vec<(&str, ImportOp)> = output.imports.iter().map(|i| (i.event_id.as_str(), i.op)).collect();
    assert_eq!(cancels, vec![("outlook-9", ImportOp::Cancel)]);
    assert!(gone.tick(now()).imports.is_empty(), "emitted once");

    // A live event keeps its import; a cancelled row asks for nothing.
    let (mut live, _) = core();
    let meeting = graph(
        HALL_B,
        "outlook-9",
        body("Styremøte", utc("2026-03-25 10:00"), utc("2026-03-25 11:00"), RoomsyncTags::default()),
    );
    live.apply_graph_event(&meeting, now());
    let output = live.apply_transaction(&import_row("synced").done(), now());
    assert!(output.imports.iter().all(|i| i.op == ImportOp::Upsert), "{:?}", output.imports);
    let (mut cancelled, _) = core();
    assert!(cancelled.apply_transaction(&import_row("deleted").done(), now()).imports.is_empty());
}

/// The mapping row the sink writes for an import of `event_id` (ending at `ends_at`, µs UTC, when known).
fn import_row(id: i64, event_id: &str, status: &str, ends_at: Option<i64>) -> Vec<(&'static str, Cell)> {
    let mut row = vec![
        ("id", int(id)),
        ("outlook_item_id", text(HALL_B)),
        ("outlook_event_id", text(event_id)),
        ("reservation_type", text("outlook")),
        ("reservation_id", int(0)),
        ("item_key", text(&format!("outlook:{event_id}"))),
        ("sync_status", text(status)),
    ];
    if let Some(end) = ends_at {
        row.push(("ends_at", Cell::Instant(end)));
    }
    row
}

/// A week of an Outlook room with a one-day past window: a meeting that took place keeps its import when it
/// leaves the window (the resolver forgets its event, and the Graph source's next full round reports it gone),
/// after a restart too; a meeting deleted in Outlook before it took place is cancelled, once.
#[test]
fn an_import_keeps_its_state_after_its_meeting_took_place_and_only_a_real_deletion_cancels_one() {
    let day = 24 * 3600 * 1_000_000_i64;
    let (mut core, _) = core();
    let held = graph(
        HALL_B,
        "outlook-1",
        body("Styremøte", utc("2026-03-21 10:00"), utc("2026-03-21 11:00"), RoomsyncTags::default()),
    );
    let deleted = graph(
        HALL_B,
        "outlook-2",
        body("Kurs", utc("2026-03-26 10:00"), utc("2026-03-26 11:00"), RoomsyncTags::default()),
    );
    let mut imports: Vec<(String, ImportOp)> = Vec::new();
    let mut note = |output: &Output| imports.extend(output.imports.iter().map(|i| (i.event_id.clone(), i.op)));
    note(&core.apply_graph_event(&held, now()));
    note(&core.apply_graph_event(&deleted, now()));
    // The sink applies both imports.
    let rows = Tx::new(40)
        .insert(
            "outlook_calendar_mapping",
            &import_row(7, "outlook-1", "synced", Some(held.event.as_ref().map_or(0, |b| b.end))),
        )
        .insert(
            "outlook_calendar_mapping",
            &import_row(8, "outlook-2", "synced", Some(deleted.event.as_ref().map_or(0, |b| b.end))),
        );
    note(&core.apply_transaction(&rows.done(), now()));
    for days in 1..=7 {
        let at = now() + days * day;
        note(&core.tick(at));
        if days == 2 {
            // The window moved on: the Graph source's full round no longer finds the meeting.
            note(&core.apply_graph_event(&GraphEvent { op: UpsertOrDelete::Delete, event: None, ..held.clone() }, at));
        }
        if days == 3 {
            // Its owner deletes the other booking before it takes place.
            note(
                &core.apply_graph_event(&GraphEvent { op: UpsertOrDelete::Delete, event: None, ..deleted.clone() }, at),
            );
            let row = Tx::new(50).update(
                "outlook_calendar_mapping",
                &import_row(8, "outlook-2", "deleted", Some(deleted.event.as_ref().map_or(0, |b| b.end))),
            );
            note(&core.apply_transaction(&row.done(), at));
        }
    }
    let expected = |id: &str, op| (id.to_owned(), op);
    assert_eq!(
        imports,
        vec![
            expected("outlook-1", ImportOp::Upsert),
            expected("outlook-2", ImportOp::Upsert),
            expected("outlook-2", ImportOp::Cancel)
        ],
        "the meeting that took place is never cancelled"
    );

    // Restarted a week later: the compacted Graph topic holds only the deletion, the mapping row its end.
    let at = now() + 7 * day;
    let mut restarted = Core::new(Policies::default(), WindowConfig::default());
    restarted.apply_transaction_quietly(&base());
    restarted.apply_transaction_quietly(&rows_after_the_week());
    restarted.apply_graph_event_quietly(&GraphEvent { op: UpsertOrDelete::Delete, event: None, ..held.clone() });
    restarted.prune(at);
    assert!(restarted.full(at).imports.is_empty(), "nothing to cancel after a restart either");

    fn rows_after_the_week() -> Vec<crate::kafka::cdc::CdcRecord> {
        Tx::new(60)
            .insert("outlook_calendar_mapping", &import_row(7, "outlook-1", "synced", Some(utc("2026-03-21 11:00"))))
            .insert("outlook_calendar_mapping", &import_row(8, "outlook-2", "deleted", Some(utc("2026-03-26 11:00"))))
            .done()
    }
}

/// Months of uptime in a busy room: Outlook bookings imported, a conflict, deletions noted without a decision,
/// the sink's mapping rows for roomsync's items and for the imports. Once the window has moved past all of it,
/// the resolver keeps none of it: its memory is bounded by the window and the rooms, not by history.
#[test]
fn months_of_outlook_traffic_leave_nothing_behind_once_the_window_has_moved_past_it() {
    let (day, hour) = (24 * 3600 * 1_000_000_i64, 3600 * 1_000_000_i64);
    let (mut core, first) = core();
    let clash = body("Kurs", utc("2026-03-24 17:30"), utc("2026-03-24 18:30"), RoomsyncTags::default());
    assert!(!core.apply_graph_event(&graph(HALL_B, "clash", clash), now()).conflicts.is_empty());
    // The sink's rows for the items it wrote.
    let mut rows = Tx::new(30);
    for (n, item) in first.desired.iter().enumerate() {
        let id = 500 + i64::try_from(n).unwrap_or_default();
        rows = rows.insert(
            "outlook_calendar_mapping",
            &[
                ("id", int(id)),
                ("outlook_item_id", text(&item.mailbox)),
                ("outlook_event_id", text(&format!("ev-{id}"))),
                ("reservation_type", text(item.kind.as_str())),
                ("reservation_id", int(i64::from(item.reservation_id))),
                ("item_key", text(&item.item_key)),
                ("sync_status", text("synced")),
            ],
        );
    }
    core.apply_transaction(&rows.done(), now());
    for d in 0..90_i64 {
        let at = now() + d * day;
        let start = at + day - 2 * hour;
        let meeting = graph(HALL_B, &format!("o-{d}"), body("Møte", start, start + hour, RoomsyncTags::default()));
        assert_eq!(core.apply_graph_event(&meeting, at).imports.len(), 1, "day {d}: imported");
        let row = import_row(1_000 + d, &format!("o-{d}"), "synced", Some(start + hour));
        core.apply_transaction(&Tx::new(100 + d).insert("outlook_calendar_mapping", &row).done(), at);
        // A deletion read while another instance owned the room: no decision, no body.
        core.apply_graph_event_quietly(&GraphEvent {
            op: UpsertOrDelete::Delete,
            event: None,
            ..graph(HALL_A, &format!("gone-{d}"), body("", 0, 0, RoomsyncTags::default()))
        });
        core.tick(at);
    }
    assert!(core.imports.len() > 1 && core.assembler.state.calendar_mapping.len() > 1, "remembered while current");

    core.tick(now() + 400 * day);
    let left = (
        core.imports.len(),
        core.conflicts.len(),
        core.unseen_deletes.len(),
        core.assembler.state.calendar_mapping.len(),
        core.graph.len(),
    );
    assert_eq!(left, (0, 0, 0, 0, 0), "(imports, conflicts, undecided deletions, mapping rows, Outlook events)");
}

#[test]
fn the_rooms_follow_the_one_active_room_rule() {
    let (mut core, _) = core();
    // A mapping row being filled in (no address yet), a padded copy of Hall A's address for another resource,
    // and a row whose flag is not 1.
    let rows = Tx::new(20)
        .insert(
            "bb_resource_outlook_item",
            &[("id", int(3)), ("resource_id", int(7)), ("outlook_item_id", text("  ")), ("active", int(1))],
        )
        .insert(
            "bb_resource_outlook_item",
            &[
                ("id", int(4)),
                ("resource_id", int(0)),
                ("outlook_item_id", text(&format!(" {HALL_A} "))),
                ("active", int(1)),
            ],
        )
        .insert(
            "bb_resource_outlook_item",
            &[
                ("id", int(5)),
                ("resource_id", int(8)),
                ("outlook_item_id", text("hall-c@example.org")),
                ("active", int(2)),
            ],
        )
        .done();
    core.apply_transaction(&rows, now());
    let expected = vocabulary::rooms::ActiveRooms::from_rows([
        (Some(2), Some(HALL_B), Some(1)),
        (Some(1), Some(HALL_A), Some(1)),
        (Some(7), Some("  "), Some(1)),
        (Some(0), Some(HALL_A), Some(1)),
        (Some(8), Some("hall-c@example.org"), Some(2)),
    ]);
    assert_eq!(&*core.rooms(), expected.by_mailbox());
    assert_eq!(core.rooms()[HALL_A], vec![0, 1], "the lowest resource speaks for the room");

    // The rooms are derived once and kept: each later change of a mapping row shows in the next answer.
    let changes = Tx::new(21)
        .update(
            "bb_resource_outlook_item",
            &[
                ("id", int(5)),
                ("resource_id", int(8)),
                ("outlook_item_id", text("hall-c@example.org")),
                ("active", int(1)),
            ],
        )
        .delete("bb_resource_outlook_item", &[("id", int(4))])
        .done();
    core.apply_transaction(&changes, now());
    assert_eq!(core.rooms()["hall-c@example.org"], vec![8], "a row set active maps its room");
    assert_eq!(core.rooms()[HALL_A], vec![1], "a deleted row no longer maps its resource");
}

#[test]
fn an_outlook_booking_beyond_the_horizon_is_decided_at_the_tick_it_enters_the_window() {
    let window = WindowConfig { horizon: Duration::from_secs(7 * 86_400), ..WindowConfig::default() };
    let mut core = Core::new(Policies::default(), window);
    let early = utc("2026-03-01 12:00");
    core.apply_transaction(&base(), early);
    core.tick(early);
    let course = body("Kurs", utc("2026-03-26 10:00"), utc("2026-03-26 11:00"), RoomsyncTags::default());
    let booked = core.apply_graph_event(&graph(HALL_A, "outlook-9", course), early);
    assert!(booked.imports.is_empty(), "beyond the horizon: nothing decided yet");
    assert!(core.tick(utc("2026-03-10 12:00")).imports.is_empty(), "still beyond it");
    let entered = core.tick(utc("2026-03-20 12:00"));
    let imported: Vec<&str> = entered.imports.iter().map(|i| i.event_id.as_str()).collect();
    assert_eq!(imported, vec!["outlook-9"], "imported at the tick it entered the window");
}

#[test]
fn an_echo_is_classified_without_working_out_the_rooms_items_and_an_outlook_booking_with_them() {
    use crate::stage2::outlook::Verdict;
    use crate::stage2::outlook_events::RoomItems;
    let (core, output) = core();
    let booking = output.desired.iter().find(|d| d.item_key == "booking:201").expect("booking");
    let content = booking.content.clone().expect("content");
    let (resources, window) = (vec![2], core.window_at(now()));
    let items = RoomItems::new(HALL_B, &resources);
    let echo = graph(HALL_B, "AAMk-1", body(&content.subject, content.start, content.end, ours("booking:201")));
    assert_eq!(core.verdict(&echo, None, &resources, window, &items), Verdict::Echo);
    assert!(!items.worked_out(), "an echo needs no reservations of the room");
    let meeting = graph(HALL_B, "outlook-5", body("Møte", content.start, content.end, RoomsyncTags::default()));
    let verdict = core.verdict(&meeting, None, &resources, window, &items);
    assert!(matches!(verdict, Verdict::Conflict(_)), "{verdict:?}");
    assert!(items.worked_out());
}

#[path = "core_restart_tests.rs"]
mod restart;
