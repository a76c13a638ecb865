//! Builders of synthetic CDC transactions for the unit tests (shaped like the sample data in bb_sample.sql).

use chrono::NaiveDateTime;
use vocabulary::oslo::local_to_micros;

use crate::kafka::cdc::{CdcRecord, Cell, Op, Row};

/// An Oslo wall-clock time as a cell.
pub fn local(s: &str) -> Cell {
    Cell::Local(local_to_micros(NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("test literal")))
}

/// The UTC instant of `s` (µs).
pub fn utc(s: &str) -> i64 {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("test literal").and_utc().timestamp_micros()
}

/// A text cell.
pub fn text(s: &str) -> Cell {
    Cell::Text(s.to_owned())
}

/// An integer cell.
pub fn int(v: i64) -> Cell {
    Cell::Int(v)
}

fn key_columns(table: &str) -> &'static [&'static str] {
    vocabulary::tables::by_name(table).map_or(&["id"], |t| t.key)
}

/// One source transaction under construction.
pub struct Tx {
    lsn: i64,
    records: Vec<CdcRecord>,
}

impl Tx {
    /// A transaction committing at `lsn`.
    pub fn new(lsn: i64) -> Self {
        Tx { lsn, records: Vec::new() }
    }

    fn push(mut self, table: &str, op: Op, columns: &[(&str, Cell)]) -> Self {
        let row: Row = columns.iter().map(|(n, v)| ((*n).to_owned(), v.clone())).collect();
        let key: Row =
            key_columns(table).iter().filter_map(|k| row.get(*k).map(|v| ((*k).to_owned(), v.clone()))).collect();
        let after = if op == Op::Delete { None } else { Some(row) };
        let position = self.records.len() as i64;
        self.records.push(CdcRecord {
            table: table.to_owned(),
            op,
            key,
            after,
            commit_lsn: self.lsn,
            tx_position: position,
            commit_ts_ms: self.lsn,
            snapshot: false,
        });
        self
    }

    /// An INSERT.
    pub fn insert(self, table: &str, columns: &[(&str, Cell)]) -> Self {
        self.push(table, Op::Insert, columns)
    }

    /// An UPDATE (the columns given; others unknown and kept).
    pub fn update(self, table: &str, columns: &[(&str, Cell)]) -> Self {
        self.push(table, Op::Update, columns)
    }

    /// A DELETE by key.
    pub fn delete(self, table: &str, key: &[(&str, Cell)]) -> Self {
        self.push(table, Op::Delete, key)
    }

    /// The records.
    pub fn done(self) -> Vec<CdcRecord> {
        self.records
    }
}

/// Hall B (resource 2) is mapped to hallb@kommune.no; Hall A (resource 1) to halla@kommune.no.
pub const HALL_B: &str = "hallb@kommune.no";
/// Mailbox of resource 1.
pub const HALL_A: &str = "halla@kommune.no";

/// The base state: seasons, organization, group, resources, room mappings, allocation 101 (Tuesday 18-20 in
/// Hall B) with booking 201 (18-19), and event 305 on Hall A and Hall B.
pub fn base() -> Vec<CdcRecord> {
    Tx::new(10)
        .insert("bb_season", &[("id", int(1)), ("active", int(1)), ("status", text("PUBLISHED"))])
        .insert("bb_season", &[("id", int(5)), ("active", int(1)), ("status", text("ARCHIVED"))])
        .insert("bb_organization", &[("id", int(1)), ("name", text("Fjordvik Idrettslag"))])
        .insert("bb_group", &[("id", int(1)), ("organization_id", int(1)), ("name", text("Fotball G12"))])
        .insert("bb_resource", &[("id", int(1)), ("name", text("Hall A"))])
        .insert("bb_resource", &[("id", int(2)), ("name", text("Hall B"))])
        .insert(
            "bb_resource_outlook_item",
            &[("id", int(1)), ("resource_id", int(2)), ("outlook_item_id", text(HALL_B)), ("active", int(1))],
        )
        .insert(
            "bb_resource_outlook_item",
            &[("id", int(2)), ("resource_id", int(1)), ("outlook_item_id", text(HALL_A)), ("active", int(1))],
        )
        .insert("bb_allocation", &allocation_101(1))
        .insert("bb_allocation_resource", &[("allocation_id", int(101)), ("resource_id", int(2))])
        .insert(
            "bb_booking",
            &[
                ("id", int(201)),
                ("active", int(1)),
                ("group_id", int(1)),
                ("season_id", int(1)),
                ("allocation_id", int(101)),
                ("from_", local("2026-03-24 18:00")),
                ("to_", local("2026-03-24 19:00")),
            ],
        )
        .insert("bb_booking_resource", &[("booking_id", int(201)), ("resource_id", int(2))])
        .done()
}

/// Allocation 101's row with `active`.
pub fn allocation_101(active: i64) -> Vec<(&'static str, Cell)> {
    vec![
        ("id", int(101)),
        ("active", int(active)),
        ("organization_id", int(1)),
        ("season_id", int(1)),
        ("building_name", text("Fjordvik idrettshall")),
        ("from_", local("2026-03-24 18:00")),
        ("to_", local("2026-03-24 20:00")),
        ("id_string", text("101")),
        ("completed", int(0)),
    ]
}

/// Event 305 (STENGT) on `resources`, with `is_public`.
pub fn event_305(lsn: i64, is_public: i64, resources: &[i64]) -> Vec<CdcRecord> {
    let mut tx = Tx::new(lsn).insert(
        "bb_event",
        &[
            ("id", int(305)),
            ("active", int(1)),
            ("is_public", int(is_public)),
            ("name", text("STENGT - gulvvedlikehold")),
            ("organizer", text("Fjordvik kommune, Eiendom")),
            ("description", text("Hallen er stengt.")),
            ("contact_name", text("Per Lie")),
            ("contact_email", text("per.lie@fjordvik.kommune.no")),
            ("contact_phone", text("900 11 222")),
            ("from_", local("2026-06-22 07:00")),
            ("to_", local("2026-06-26 23:00")),
        ],
    );
    for r in resources {
        tx = tx.insert("bb_event_resource", &[("event_id", int(305)), ("resource_id", int(*r))]);
    }
    tx.done()
}
