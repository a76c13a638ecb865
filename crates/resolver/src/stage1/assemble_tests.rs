//! Stage-1 rules on synthetic transactions shaped like the sample data.

use vocabulary::records::UpsertOrDelete;
use vocabulary::ReservationKind;

use crate::fixtures::{allocation_101, base, event_305, int, local, text, Tx};
use crate::stage1::reservations::Assembler;

fn loaded() -> Assembler {
    let mut assembler = Assembler::new();
    let applied = assembler.apply_transaction(&base());
    assert_eq!(applied.reservations.len(), 2, "allocation 101 and booking 201 in Hall B");
    assembler
}

fn ops(reservations: &[vocabulary::records::Reservation]) -> Vec<(ReservationKind, i32, i32, UpsertOrDelete)> {
    reservations.iter().map(|r| (r.kind, r.reservation_id, r.resource_id, r.op)).collect()
}

#[test]
fn titles_are_what_the_booking_system_shows() {
    let mut assembler = loaded();
    let all = assembler.refresh_all();
    assert!(all.is_empty(), "nothing changed since the load");
    let by_resource = assembler.by_resource();
    let hall_b = by_resource.get(&2).expect("hall b");
    let allocation = hall_b.iter().find(|r| r.kind == ReservationKind::Allocation).expect("allocation");
    assert_eq!(allocation.title, "Fjordvik Idrettslag", "allocation: its organization's name");
    assert_eq!(allocation.resource_name.as_deref(), Some("Hall B"));
    let booking = hall_b.iter().find(|r| r.kind == ReservationKind::Booking).expect("booking");
    assert_eq!(booking.title, "Fotball G12", "booking: its group's name");
    let applied = assembler.apply_transaction(&event_305(20, 1, &[1, 2]));
    assert_eq!(applied.reservations.len(), 2, "the STENGT event is one record per resource");
    assert!(applied.reservations.iter().all(|r| r.title == "STENGT - gulvvedlikehold"));
    assert!(applied.reservations.iter().all(|r| r.description.as_deref() == Some("Hallen er stengt.")));
}

#[test]
fn a_private_event_keeps_its_name_without_personal_details() {
    let mut assembler = loaded();
    let applied = assembler.apply_transaction(&event_305(20, 0, &[1]));
    let event = applied.reservations.first().expect("event record");
    assert_eq!(event.title, "STENGT - gulvvedlikehold");
    assert!(!event.is_public);
    assert_eq!(
        (&event.description, &event.organizer, &event.contact_name, &event.contact_email, &event.contact_phone),
        (&None, &None, &None, &None, &None)
    );
}

#[test]
fn a_link_rewrite_in_one_transaction_changes_nothing() {
    let mut assembler = loaded();
    assembler.apply_transaction(&event_305(20, 1, &[1, 2]));
    // A title-less save: UPDATE of every column, then DELETE + INSERT of the same links.
    let save = Tx::new(30)
        .update("bb_event", &[("id", int(305)), ("active", int(1)), ("name", text("STENGT - gulvvedlikehold"))])
        .delete("bb_event_resource", &[("event_id", int(305)), ("resource_id", int(1))])
        .delete("bb_event_resource", &[("event_id", int(305)), ("resource_id", int(2))])
        .insert("bb_event_resource", &[("event_id", int(305)), ("resource_id", int(1))])
        .insert("bb_event_resource", &[("event_id", int(305)), ("resource_id", int(2))])
        .done();
    assert!(assembler.apply_transaction(&save).reservations.is_empty());
}

#[test]
fn insert_then_update_of_id_string_changes_nothing_after_the_insert() {
    let mut assembler = loaded();
    let mut row = allocation_101(1);
    row[0] = ("id", int(106));
    row.retain(|(c, _)| *c != "id_string");
    let insert = Tx::new(20)
        .insert("bb_allocation", &row)
        .insert("bb_allocation_resource", &[("allocation_id", int(106)), ("resource_id", int(2))])
        .done();
    assert_eq!(assembler.apply_transaction(&insert).reservations.len(), 1);
    let id_string = Tx::new(21).update("bb_allocation", &[("id", int(106)), ("id_string", text("106"))]).done();
    assert!(assembler.apply_transaction(&id_string).reservations.is_empty());
}

#[test]
fn a_full_table_update_of_bb_allocation_emits_nothing() {
    let mut assembler = loaded();
    let mut tx = Tx::new(20);
    for id in [101, 102, 103] {
        tx = tx.update("bb_allocation", &[("id", int(id)), ("id_string", text(&id.to_string()))]);
    }
    assert!(assembler.apply_transaction(&tx.done()).reservations.is_empty());
    let completed = Tx::new(21).update("bb_allocation", &[("id", int(101)), ("completed", int(1))]).done();
    assert!(assembler.apply_transaction(&completed).reservations.is_empty(), "the nightly completed batch");
}

#[test]
fn soft_cancel_and_hard_delete_are_deletes_and_reactivation_brings_it_back() {
    let mut assembler = loaded();
    let cancel = Tx::new(20).update("bb_allocation", &allocation_101(0)).done();
    let applied = assembler.apply_transaction(&cancel);
    assert_eq!(ops(&applied.reservations), vec![(ReservationKind::Allocation, 101, 2, UpsertOrDelete::Delete)]);
    let reactivate = Tx::new(21).update("bb_allocation", &allocation_101(1)).done();
    let applied = assembler.apply_transaction(&reactivate);
    assert_eq!(ops(&applied.reservations), vec![(ReservationKind::Allocation, 101, 2, UpsertOrDelete::Upsert)]);
    let hard = Tx::new(22)
        .delete("bb_booking_resource", &[("booking_id", int(201)), ("resource_id", int(2))])
        .delete("bb_booking", &[("id", int(201))])
        .done();
    let applied = assembler.apply_transaction(&hard);
    assert_eq!(ops(&applied.reservations), vec![(ReservationKind::Booking, 201, 2, UpsertOrDelete::Delete)]);
}

#[test]
fn a_season_archived_or_unpublished_hides_all_its_allocations_and_bookings() {
    let mut assembler = loaded();
    let archive = Tx::new(20).update("bb_season", &[("id", int(1)), ("status", text("ARCHIVED"))]).done();
    let applied = assembler.apply_transaction(&archive);
    let mut deleted = ops(&applied.reservations);
    deleted.sort_by_key(|(kind, id, _, _)| (kind.priority(), *id));
    assert_eq!(
        deleted,
        vec![
            (ReservationKind::Booking, 201, 2, UpsertOrDelete::Delete),
            (ReservationKind::Allocation, 101, 2, UpsertOrDelete::Delete)
        ]
    );
    let publish = Tx::new(21).update("bb_season", &[("id", int(1)), ("status", text("PUBLISHED"))]).done();
    assert_eq!(assembler.apply_transaction(&publish).reservations.len(), 2, "published again: both back");
    let planning_row = Tx::new(22)
        .insert("bb_allocation", &{
            let mut row = allocation_101(1);
            row[0] = ("id", int(107));
            row[3] = ("season_id", int(5));
            row
        })
        .insert("bb_allocation_resource", &[("allocation_id", int(107)), ("resource_id", int(2))])
        .done();
    assert!(assembler.apply_transaction(&planning_row).reservations.is_empty(), "archived season: not shown");
}

#[test]
fn replayed_transactions_and_records_change_nothing() {
    let mut assembler = loaded();
    assert!(assembler.apply_transaction(&base()).reservations.is_empty(), "whole transaction replayed");
    let cancel = Tx::new(20).update("bb_allocation", &allocation_101(0)).done();
    assert_eq!(assembler.apply_transaction(&cancel).reservations.len(), 1);
    assert!(assembler.apply_transaction(&cancel).reservations.is_empty(), "replay after a restart");
}

#[test]
fn an_update_without_an_unchanged_toast_value_keeps_the_stored_value() {
    let mut assembler = loaded();
    assembler.apply_transaction(&event_305(20, 1, &[1]));
    // description not sent (unchanged TOAST): the update carries only the other columns.
    let update = Tx::new(21).update("bb_event", &[("id", int(305)), ("from_", local("2026-06-22 08:00"))]).done();
    let applied = assembler.apply_transaction(&update);
    let event = applied.reservations.first().expect("moved");
    assert_eq!(event.description.as_deref(), Some("Hallen er stengt."));
}

#[test]
fn a_late_record_of_a_transaction_applied_incomplete_still_counts_after_later_transactions() {
    // Transaction 20 moved allocation 101 to Hall A (link rewrite); it was applied before its link INSERT
    // arrived (the buffer bound released it), and transaction 30 came meanwhile.
    let mut assembler = loaded();
    let link_moved = Tx::new(20)
        .delete("bb_allocation_resource", &[("allocation_id", int(101)), ("resource_id", int(2))])
        .insert("bb_allocation_resource", &[("allocation_id", int(101)), ("resource_id", int(1))])
        .done();
    let (applied_early, late) = link_moved.split_at(1);
    assembler.apply_transaction(applied_early);
    assembler.apply_transaction(&Tx::new(30).insert("bb_organization", &[("id", int(9)), ("name", text("Ny"))]).done());
    let applied = assembler.apply_transaction(late);
    assert_eq!(
        ops(&applied.reservations),
        vec![(ReservationKind::Allocation, 101, 1, UpsertOrDelete::Upsert)],
        "the late link is applied, not dropped for its commit LSN"
    );
}

#[test]
fn a_replayed_truncate_removes_only_what_was_written_before_it() {
    let mut assembler = loaded();
    let truncate = vec![crate::kafka::cdc::CdcRecord {
        table: "bb_booking".into(),
        op: crate::kafka::cdc::Op::Truncate,
        key: Default::default(),
        after: None,
        commit_lsn: 20,
        tx_position: 0,
        commit_ts_ms: 20,
        snapshot: false,
    }];
    let applied = assembler.apply_transaction(&truncate);
    assert_eq!(ops(&applied.reservations), vec![(ReservationKind::Booking, 201, 2, UpsertOrDelete::Delete)]);
    let again = Tx::new(30)
        .insert(
            "bb_booking",
            &[
                ("id", int(202)),
                ("active", int(1)),
                ("group_id", int(1)),
                ("season_id", int(1)),
                ("from_", local("2026-03-25 18:00")),
                ("to_", local("2026-03-25 19:00")),
            ],
        )
        .insert("bb_booking_resource", &[("booking_id", int(202)), ("resource_id", int(2))])
        .done();
    assert_eq!(assembler.apply_transaction(&again).reservations.len(), 1);
    assert!(assembler.apply_transaction(&truncate).reservations.is_empty(), "the replayed TRUNCATE keeps booking 202");
}

#[test]
fn a_resources_reservations_come_from_the_index_as_from_a_scan_through_links_cancels_and_pruning() {
    use std::collections::BTreeSet;
    fn agree(assembler: &Assembler, step: &str) {
        let scanned = assembler.by_resource();
        for resource in 1..=3 {
            let indexed: BTreeSet<(i32, i32)> =
                assembler.of_resource(resource).iter().map(|r| (r.reservation_id, r.resource_id)).collect();
            let by_scan: BTreeSet<(i32, i32)> = scanned
                .get(&resource)
                .map(|rs| rs.iter().map(|r| (r.reservation_id, r.resource_id)).collect())
                .unwrap_or_default();
            assert_eq!(indexed, by_scan, "{step}: resource {resource}");
        }
    }
    let mut assembler = loaded();
    agree(&assembler, "loaded");
    assert_eq!(assembler.of_resource(2).len(), 2, "allocation 101 and booking 201 in Hall B");
    assembler.apply_transaction(&event_305(20, 1, &[1, 2]));
    agree(&assembler, "an event on two resources");
    assert_eq!(assembler.of_resource(1).len(), 1);
    let unlink = Tx::new(21).delete("bb_event_resource", &[("event_id", int(305)), ("resource_id", int(1))]).done();
    assembler.apply_transaction(&unlink);
    agree(&assembler, "unlinked from one");
    assert!(assembler.of_resource(1).is_empty(), "resource 1 holds nothing once the link is gone");
    assembler.apply_transaction(&Tx::new(22).update("bb_allocation", &allocation_101(0)).done());
    agree(&assembler, "allocation cancelled");
    assert_eq!(assembler.of_resource(2).len(), 2, "booking 201 and the event");
    // Everything ends before this: pruned from the index with the records.
    let crate::kafka::cdc::Cell::Local(after_all) = local("2030-01-01 00:00") else { unreachable!("a local literal") };
    assembler.prune(after_all, true);
    agree(&assembler, "pruned");
    assert!(assembler.of_resource(2).is_empty());
    assert_eq!(assembler.indexed_resources(), 0, "the index keeps nothing of what was pruned");
}
