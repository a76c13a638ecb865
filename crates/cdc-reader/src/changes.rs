//! From a row message to the changes it makes: a pure function of the message and the table's shape (no I/O, no
//! clock, no place in the transaction).
//!
//! ```text
//!  Insert                      -> c
//!  Update, same key            -> u  (before: the old row or key if sent; unchanged TOAST filled from the old row)
//!  Update, key changed         -> d + tombstone of the old key, then c of the new key
//!  Delete                      -> d + tombstone
//!  Truncate                    -> t, once per table
//!  a snapshot or backfill row  -> r
//! ```
//! The stream sequences what comes out (each change takes the next `source.tx_position` of its transaction), and
//! the pipeline encodes and produces it ([`crate::pipeline`]). A row that cannot be turned into a record carries its
//! [`RowError`]; the pipeline sends it to the dead-letter topic.

use apache_avro::types::Value;

use crate::envelope::{self, Row, RowError, Source};
use crate::pgoutput::{Datum, Message};
use crate::relation::TableShape;

/// One change to one row (or a whole table, for `t`), before it has its place in the transaction.
pub struct RowChange {
    /// `c`, `u`, `d`, `r` or `t`.
    pub op: &'static str,
    /// Follow the record with a tombstone for its key (deletes).
    pub tombstone: bool,
    key: Option<Result<Value, RowError>>,
    before: Option<Result<Row, RowError>>,
    after: Option<Result<Row, RowError>>,
}

impl RowChange {
    /// A row read by the snapshot or a backfill.
    pub fn read(shape: &TableShape, tuple: &[Datum]) -> Self {
        Self::created("r", shape, tuple)
    }

    /// The table was emptied.
    pub fn truncate() -> Self {
        RowChange { op: "t", tombstone: false, key: None, before: None, after: None }
    }

    fn created(op: &'static str, shape: &TableShape, new: &[Datum]) -> Self {
        let after = envelope::row(shape, new, None, false);
        RowChange { op, tombstone: false, key: Some(envelope::key(shape, new)), before: None, after: Some(after) }
    }

    fn deleted(shape: &TableShape, old: &[Datum]) -> Self {
        let before = envelope::row(shape, old, None, !shape.full_identity);
        RowChange { op: "d", tombstone: true, key: Some(envelope::key(shape, old)), before: Some(before), after: None }
    }

    /// The key and envelope of this change at `source` (which carries its place in the transaction); `now_ms` is
    /// the envelope's `ts_ms`.
    pub fn record(self, shape: &TableShape, source: &Source, now_ms: i64) -> Result<(Option<Value>, Value), RowError> {
        let key = self.key.transpose()?;
        let before = self.before.transpose()?;
        let after = self.after.transpose()?;
        Ok((key, envelope::envelope(shape, self.op, before, after, source, now_ms)))
    }
}

/// The changes an Insert, Update or Delete of a table of `shape` makes, in the order they happen. Other messages
/// make none (a Truncate names several tables: each gets [`RowChange::truncate`]).
pub fn of_message(shape: &TableShape, message: &Message) -> Vec<RowChange> {
    match message {
        Message::Insert { new, .. } => vec![RowChange::created("c", shape, new)],
        Message::Update { old: Some(old), new, .. } if key_changed(shape, old, new) => {
            // The key changed: the old key is deleted (and tombstoned), the new key created.
            vec![RowChange::deleted(shape, old), RowChange::created("c", shape, new)]
        }
        Message::Update { old, new, .. } => {
            let key_only = !shape.full_identity;
            let before = old.as_deref().map(|old| envelope::row(shape, old, None, key_only));
            let after = envelope::row(shape, new, old.as_deref(), false);
            vec![RowChange {
                op: "u",
                tombstone: false,
                key: Some(envelope::key(shape, new)),
                before,
                after: Some(after),
            }]
        }
        Message::Delete { old, .. } => vec![RowChange::deleted(shape, old)],
        Message::Truncate { .. } | Message::Relation(_) | Message::Other(_) => Vec::new(),
    }
}

fn key_changed(shape: &TableShape, old: &[Datum], new: &[Datum]) -> bool {
    shape.key_columns().any(|(i, _)| match (old.get(i), new.get(i)) {
        (Some(Datum::Text(a)), Some(Datum::Text(b))) => a != b,
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    use crate::relation::{oid, Column};

    fn shape() -> TableShape {
        let column = |name: &str, type_oid, key| Column { name: name.into(), type_oid, key };
        TableShape {
            schema: "public".into(),
            table: "bb_event_resource".into(),
            columns: vec![column("event_id", oid::INT4, true), column("resource_id", oid::INT4, true)],
            full_identity: false,
        }
    }

    fn row(event: &str, resource: &str) -> Vec<Datum> {
        vec![
            Datum::Text(Bytes::copy_from_slice(event.as_bytes())),
            Datum::Text(Bytes::copy_from_slice(resource.as_bytes())),
        ]
    }

    fn ops(changes: &[RowChange]) -> Vec<(&'static str, bool)> {
        changes.iter().map(|c| (c.op, c.tombstone)).collect()
    }

    #[test]
    fn a_key_change_deletes_the_old_key_then_creates_the_new_one() {
        let update = Message::Update { relation: 1, old: Some(row("301", "4")), new: row("301", "7") };
        let changes = of_message(&shape(), &update);
        assert_eq!(ops(&changes), [("d", true), ("c", false)]);
        let keys: Vec<_> = changes.into_iter().map(|c| c.key.and_then(Result::ok)).collect();
        assert_ne!(keys[0], keys[1], "the delete names the old key, the create the new one");
    }

    #[test]
    fn each_row_message_makes_its_changes_and_the_others_none() {
        let shape = shape();
        assert_eq!(ops(&of_message(&shape, &Message::Insert { relation: 1, new: row("1", "2") })), [("c", false)]);
        let same_key = Message::Update { relation: 1, old: None, new: row("1", "2") };
        assert_eq!(ops(&of_message(&shape, &same_key)), [("u", false)]);
        assert_eq!(ops(&of_message(&shape, &Message::Delete { relation: 1, old: row("1", "2") })), [("d", true)]);
        let truncate = Message::Truncate { relations: vec![1], options: 0 };
        assert!(of_message(&shape, &truncate).is_empty(), "a truncate is one change per table, made by the caller");
    }

    #[test]
    fn a_row_that_does_not_fit_its_shape_carries_the_reason() {
        let change = RowChange::read(&shape(), &row("1", "2")[..1]);
        let source = Source {
            name: "roomsync".into(),
            db: "booking".into(),
            snapshot: "true",
            ts_ms: 0,
            tx_id: None,
            lsn: None,
            commit_lsn: 0,
            tx_position: 0,
        };
        assert!(change.record(&shape(), &source, 0).is_err());
    }
}
