//! Every record round-trips through its published schema, and every published schema parses.

use std::collections::BTreeMap;

use apache_avro::Schema;

use super::*;

fn round_trip<T: AvroRecord + PartialEq + std::fmt::Debug>(record: &T) {
    let value = record.to_avro().expect("record fits its schema");
    let bytes = apache_avro::to_avro_datum(T::schema(), value).expect("encodes");
    let decoded = apache_avro::from_avro_datum(T::schema(), &mut bytes.as_slice(), None).expect("decodes");
    let back = T::from_avro(decoded).expect("record from value");
    assert_eq!(&back, record);
}

fn graph_event() -> GraphEvent {
    GraphEvent {
        op: UpsertOrDelete::Upsert,
        mailbox: "hall-a@kommune.no".into(),
        event_id: "AAMkAG=".into(),
        observed_at: 1_790_000_000_000,
        event: Some(GraphEventBody {
            change_key: Some("ck1".into()),
            ical_uid: Some("uid".into()),
            subject: Some("Korpsøving".into()),
            start: 1_790_000_000_000_000,
            end: 1_790_003_600_000_000,
            time_zone: Some("W. Europe Standard Time".into()),
            is_all_day: false,
            is_cancelled: false,
            show_as: "busy".into(),
            sensitivity: "normal".into(),
            event_type: "occurrence".into(),
            series_master_id: Some("master".into()),
            organizer: Some(EmailAddress { name: Some("Kari".into()), address: Some("kari@kommune.no".into()) }),
            attendees: vec![Attendee {
                email: EmailAddress { name: None, address: Some("hall-a@kommune.no".into()) },
                attendee_type: "resource".into(),
                response: Some("accepted".into()),
            }],
            categories: vec!["roomsync".into()],
            created: Some(1_789_000_000_000),
            last_modified: None,
            transaction_id: None,
            tags: RoomsyncTags {
                booking_system_type: Some("event".into()),
                booking_system_id: Some("301".into()),
                item_key: Some("event:301".into()),
                content_hash: Some("abc".into()),
            },
        }),
    }
}

#[test]
fn graph_event_round_trips() {
    round_trip(&graph_event());
    round_trip(&GraphEvent { op: UpsertOrDelete::Delete, event: None, ..graph_event() });
}

#[test]
fn reservation_round_trips() {
    round_trip(&Reservation {
        op: UpsertOrDelete::Upsert,
        kind: ReservationKind::Allocation,
        reservation_id: 101,
        resource_id: 4,
        start_local: 1_774_461_600_000_000,
        end_local: 1_774_468_800_000_000,
        title: "Bergen Turn".into(),
        description: None,
        organizer: None,
        contact_name: None,
        contact_email: None,
        contact_phone: None,
        is_public: true,
        building_name: Some("Idrettshall".into()),
        resource_name: Some("Hall A".into()),
        season_id: Some(3),
        application_id: None,
        commit_lsn: 0x1_6B37_4D48,
        commit_ts_ms: 1_790_000_000_000,
    });
}

#[test]
fn desired_item_round_trips() {
    let upsert = DesiredItem {
        op: UpsertOrDelete::Upsert,
        mailbox: "hall-a@kommune.no".into(),
        resource_id: 4,
        item_key: "booking:17:2".into(),
        kind: ReservationKind::Booking,
        reservation_id: 17,
        priority: 2,
        content_hash: "h".into(),
        content: Some(DesiredContent {
            subject: "Håndball G12".into(),
            body: Some("text".into()),
            start: 1,
            end: 2,
            time_zone: "Europe/Oslo".into(),
            is_all_day: false,
            show_as: "busy".into(),
            sensitivity: "normal".into(),
            location: Some("Hall A".into()),
            categories: vec![],
        }),
        commit_lsn: 5,
        source_committed_at: Some(1_774_000_000_123),
        rewrite: false,
    };
    round_trip(&upsert);
    round_trip(&DesiredItem { op: UpsertOrDelete::Delete, content: None, ..upsert });
}

#[test]
fn import_record_round_trips() {
    round_trip(&ImportRecord {
        op: ImportOp::Cancel,
        mailbox: "hall-a@kommune.no".into(),
        resource_id: 4,
        event_id: "AAMk".into(),
        change_key: None,
        ical_uid: Some("uid".into()),
        subject: Some("Møte".into()),
        start: 10,
        end: 20,
        is_all_day: true,
        organizer_name: None,
        organizer_address: Some("ola@kommune.no".into()),
    });
}

#[test]
fn dead_letter_round_trips_with_raw_bytes() {
    round_trip(&DeadLetter {
        stage: "cdc-reader".into(),
        error_kind: "encode".into(),
        reason: "from_ is not a timestamp".into(),
        source_topic: Some("roomsync.cdc.public.bb_event".into()),
        source_partition: Some(0),
        source_offset: Some(42),
        source_key: Some(vec![0, 1, 2, 255]),
        source_value: None,
        context: BTreeMap::from([("lsn".to_owned(), "0/16B374D8".to_owned())]),
        occurred_at: 1_790_000_000_000,
    });
}

#[test]
fn every_published_schema_parses_and_is_a_named_record() {
    for (file, text) in SCHEMA_FILES {
        let schema = Schema::parse_str(text).unwrap_or_else(|err| panic!("{file}: {err}"));
        assert!(matches!(schema, Schema::Record(_)), "{file} is a record");
    }
    let on_disk = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas"))
        .expect("schemas folder")
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "avsc"))
        .count();
    assert_eq!(on_disk, SCHEMA_FILES.len(), "every top-level .avsc is compiled in");
}

#[test]
fn a_value_of_the_wrong_shape_is_an_error_not_a_panic() {
    let err = GraphEvent::from_avro(apache_avro::types::Value::Int(3)).expect_err("not a record");
    assert_eq!(err.record, "GraphEvent");
}
