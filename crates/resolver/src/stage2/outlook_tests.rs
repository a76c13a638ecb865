//! Outlook classification edge cases (the main paths are exercised through the core in core_tests.rs).

use vocabulary::records::RoomsyncTags;

use super::*;

fn body(change_key: &str, cancelled: bool, show_as: &str) -> GraphEventBody {
    GraphEventBody {
        change_key: Some(change_key.into()),
        ical_uid: None,
        subject: Some("x".into()),
        start: 10,
        end: 20,
        time_zone: None,
        is_all_day: false,
        is_cancelled: cancelled,
        show_as: show_as.into(),
        sensitivity: "normal".into(),
        event_type: "singleInstance".into(),
        series_master_id: None,
        organizer: None,
        attendees: vec![],
        categories: vec![],
        created: None,
        last_modified: None,
        transaction_id: None,
        tags: RoomsyncTags::default(),
    }
}

fn event(body: GraphEventBody) -> GraphEvent {
    GraphEvent {
        op: UpsertOrDelete::Upsert,
        mailbox: "room".into(),
        event_id: "e1".into(),
        observed_at: 0,
        event: Some(body),
    }
}

fn room(items: &[Item]) -> RoomView<'_> {
    RoomView { resource_id: Some(2), reservations: Reservations::Items(items), window: Window { start: 0, end: 100 } }
}

#[test]
fn the_change_key_stored_after_roomsyncs_write_marks_an_echo_even_without_tags() {
    let mapping = MappingRow {
        reservation_type: "booking".into(),
        reservation_id: 201,
        item_key: "booking:201".into(),
        change_key: Some("ck-9".into()),
        ends_at: None,
    };
    let verdict = classify(&event(body("ck-9", false, "busy")), None, Some(&mapping), |_| None, room(&[]));
    assert_eq!(verdict, Verdict::Echo);
}

#[test]
fn cancelled_free_and_unmapped_events_are_ignored() {
    let e = event(body("a", true, "busy"));
    assert!(matches!(classify(&e, None, None, |_| None, room(&[])), Verdict::Ignore(_)));
    let e = event(body("a", false, "free"));
    assert!(matches!(classify(&e, None, None, |_| None, room(&[])), Verdict::Ignore(_)));
    let unmapped = RoomView { resource_id: None, ..room(&[]) };
    assert!(matches!(classify(&event(body("a", false, "busy")), None, None, |_| None, unmapped), Verdict::Ignore(_)));
}

#[test]
fn an_imported_booking_is_updated_not_seen_as_a_conflict_with_its_own_reservation() {
    let mapping = MappingRow {
        reservation_type: "outlook".into(),
        reservation_id: 900,
        item_key: "outlook:e1".into(),
        change_key: None,
        ends_at: None,
    };
    let verdict = classify(&event(body("b", false, "busy")), None, Some(&mapping), |_| None, room(&[]));
    assert!(matches!(verdict, Verdict::Import(ImportRecord { op: ImportOp::Upsert, .. })));
}

#[test]
fn an_imported_booking_that_a_later_reservation_overlaps_is_a_conflict() {
    let mapping = MappingRow {
        reservation_type: "outlook".into(),
        reservation_id: 900,
        item_key: "outlook:e1".into(),
        change_key: None,
        ends_at: None,
    };
    let later = [Item { kind: vocabulary::ReservationKind::Event, reservation_id: 343, start: 15, end: 40 }];
    let verdict = classify(&event(body("b", false, "busy")), None, Some(&mapping), |_| None, room(&later));
    let Verdict::Conflict(hits) = verdict else { panic!("expected a conflict, got {verdict:?}") };
    assert_eq!((hits[0].reservation_id, hits[0].start, hits[0].end), (343, 15, 20));
    // Cancelled in Outlook meanwhile: it blocks nothing, the import is updated (and the sink cancels it).
    let cancelled = classify(&event(body("c", true, "busy")), None, Some(&mapping), |_| None, room(&later));
    assert!(matches!(cancelled, Verdict::Import(ImportRecord { op: ImportOp::Upsert, .. })), "{cancelled:?}");
}

#[test]
fn a_tagged_event_deleted_before_its_mapping_row_was_read_is_put_back_if_still_wanted() {
    let mut ours = body("a", false, "busy");
    ours.tags.item_key = Some("booking:201".into());
    let deleted = GraphEvent { op: UpsertOrDelete::Delete, event: None, ..event(ours.clone()) };
    let wanted = |key: &str| (key == "booking:201").then(|| content_of(&ours));
    let verdict = classify(&deleted, Some(&ours), None, wanted, room(&[]));
    assert_eq!(verdict, Verdict::Edited { item_key: "booking:201".into() });
    // roomsync deleted it itself (the item is no longer wanted): an echo.
    assert_eq!(classify(&deleted, Some(&ours), None, |_| None, room(&[])), Verdict::Echo);
    // Nothing known about it: nothing to do.
    assert!(matches!(classify(&deleted, None, None, wanted, room(&[])), Verdict::Ignore(_)));
}

/// The desired content an event body shows.
fn content_of(body: &GraphEventBody) -> vocabulary::records::DesiredContent {
    vocabulary::records::DesiredContent {
        subject: body.subject.clone().unwrap_or_default(),
        body: None,
        start: body.start,
        end: body.end,
        time_zone: "Europe/Oslo".into(),
        is_all_day: body.is_all_day,
        show_as: "busy".into(),
        sensitivity: "normal".into(),
        location: None,
        categories: Vec::new(),
    }
}

#[test]
fn an_event_of_the_earlier_php_integration_is_ours_not_an_outlook_booking() {
    let mut legacy = body("a", false, "busy");
    legacy.tags.booking_system_type = Some("allocation".into());
    legacy.tags.booking_system_id = Some("101".into());
    let items = [Item { kind: vocabulary::ReservationKind::Allocation, reservation_id: 101, start: 0, end: 50 }];
    let verdict = classify(&event(legacy), None, None, |_| None, room(&items));
    assert_eq!(verdict, Verdict::Echo, "not a conflict with its own reservation");
}

/// tansu compacts `graph.events` (cleanup.policy=compact): a resolver rebuilt afterwards reads only the deletion
/// of an imported booking, never its body. The import mapping row is enough to cancel it (chaos test, F12).
#[test]
fn a_deleted_imported_booking_is_cancelled_even_without_its_last_body() {
    let import = MappingRow {
        reservation_type: "outlook".into(),
        reservation_id: 0,
        item_key: "outlook:e1".into(),
        change_key: Some("ck-1".into()),
        ends_at: Some(50),
    };
    let deleted = GraphEvent { op: UpsertOrDelete::Delete, event: None, ..event(body("x", false, "busy")) };
    match classify(&deleted, None, Some(&import), |_| None, room(&[])) {
        Verdict::Import(record) => {
            assert_eq!((record.op, record.event_id.as_str(), record.mailbox.as_str()), (ImportOp::Cancel, "e1", "room"))
        }
        other => panic!("expected a cancel, got {other:?}"),
    }
    // Over before the window (the window moved on: the Graph source reports it like a deletion): it stays.
    let over = MappingRow { ends_at: Some(0), ..import.clone() };
    assert!(matches!(classify(&deleted, None, Some(&over), |_| None, room(&[])), Verdict::Ignore(_)));
    // An end unknown (a row written before roomsync kept it) counts as current.
    let unknown = MappingRow { ends_at: None, ..import.clone() };
    assert!(matches!(classify(&deleted, None, Some(&unknown), |_| None, room(&[])), Verdict::Import(_)));
    // Without a mapping row and without a body nothing is known of it: nothing to cancel.
    assert!(matches!(classify(&deleted, None, None, |_| None, room(&[])), Verdict::Ignore(_)));
}
