//! Generic decoding of the cdc-reader's Debezium-shaped envelopes into rows addressed by column name.
//!
//! Invariants: columns are found by name, never by position (production tables may have another column
//! order, and columns may be added: unknown ones are simply carried along and ignored by the assembler);
//! a column listed in `missing_columns` is *unknown*, not NULL, so it is absent from [`CdcRecord::after`]
//! and the assembler keeps its previous value (unchanged TOAST). Decoding never panics on outside data.

use std::collections::BTreeMap;

use apache_avro::types::Value;

use crate::error::ResolverError;

/// One column value, reduced to what the assembler needs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// Any integer column (int2, int4, int8).
    Int(i64),
    /// Text-like columns (text, varchar, numeric, json ...).
    Text(String),
    /// `timestamp without time zone`: wall-clock µs since 1970-01-01T00:00.
    Local(i64),
    /// A `date`: days since 1970-01-01.
    Date(i32),
    /// `timestamp with time zone`: µs since the epoch (UTC).
    Instant(i64),
    /// A boolean.
    Bool(bool),
    /// Anything else (floats, times): kept only so that unknown columns do not fail decoding.
    Other,
}

impl Cell {
    /// The value as an integer, if it is one.
    pub fn int(&self) -> Option<i64> {
        match self {
            Cell::Int(v) => Some(*v),
            Cell::Bool(b) => Some(i64::from(*b)),
            Cell::Text(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// The value as text, if it is some.
    pub fn text(&self) -> Option<&str> {
        match self {
            Cell::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// A row: column name to value.
pub type Row = BTreeMap<String, Cell>;

/// The operation of a change record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Insert (`c`) or snapshot read (`r`).
    Insert,
    /// Update (`u`).
    Update,
    /// Delete (`d`).
    Delete,
    /// Truncate (`t`): the whole table is emptied.
    Truncate,
}

/// One decoded CDC record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdcRecord {
    /// Table name (`source.table`).
    pub table: String,
    /// What happened.
    pub op: Op,
    /// The key columns (from the envelope's `before` for deletes, `after` otherwise).
    pub key: Row,
    /// The new row without the columns whose value is unknown; `None` for deletes and truncates.
    pub after: Option<Row>,
    /// `source.commit_lsn`.
    pub commit_lsn: i64,
    /// `source.tx_position`.
    pub tx_position: i64,
    /// `source.ts_ms` (commit time).
    pub commit_ts_ms: i64,
    /// Part of the initial snapshot (`source.snapshot` is not `false`).
    pub snapshot: bool,
}

impl CdcRecord {
    /// The position that orders all records: (commit LSN, position in the transaction).
    pub fn position(&self) -> (i64, i64) {
        (self.commit_lsn, self.tx_position)
    }
}

fn field<'a>(fields: &'a [(String, Value)], name: &str) -> Option<&'a Value> {
    fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

fn unwrap_union(value: &Value) -> &Value {
    match value {
        Value::Union(_, inner) => unwrap_union(inner),
        other => other,
    }
}

fn cell(value: &Value) -> Cell {
    match unwrap_union(value) {
        Value::Null => Cell::Null,
        Value::Int(v) => Cell::Int(i64::from(*v)),
        Value::Long(v) => Cell::Int(*v),
        Value::String(s) => Cell::Text(s.clone()),
        Value::Boolean(b) => Cell::Bool(*b),
        Value::LocalTimestampMicros(v) => Cell::Local(*v),
        Value::LocalTimestampMillis(v) => Cell::Local(v.saturating_mul(1000)),
        Value::Date(d) => Cell::Date(*d),
        Value::TimestampMicros(v) => Cell::Instant(*v),
        Value::TimestampMillis(v) => Cell::Instant(v.saturating_mul(1000)),
        _ => Cell::Other,
    }
}

fn row(value: &Value, missing: &[String]) -> Option<Row> {
    match unwrap_union(value) {
        Value::Record(fields) => Some(
            fields
                .iter()
                .filter(|(name, _)| !missing.iter().any(|m| m == name))
                .map(|(name, v)| (name.clone(), cell(v)))
                .collect(),
        ),
        _ => None,
    }
}

fn long(fields: &[(String, Value)], name: &str) -> Option<i64> {
    match field(fields, name).map(unwrap_union) {
        Some(Value::Long(v)) => Some(*v),
        Some(Value::Int(v)) => Some(i64::from(*v)),
        Some(Value::TimestampMillis(v)) => Some(*v),
        _ => None,
    }
}

fn string<'a>(fields: &'a [(String, Value)], name: &str) -> Option<&'a str> {
    match field(fields, name).map(unwrap_union) {
        Some(Value::String(s)) => Some(s),
        Some(Value::Enum(_, s)) => Some(s),
        _ => None,
    }
}

/// Decodes an envelope value; `key` is the decoded record key (needed for deletes under DEFAULT identity, whose
/// `before` carries only the key anyway, and for truncates, which have none).
pub fn decode(key: Option<&Value>, value: &Value) -> Result<CdcRecord, ResolverError> {
    let bad = |what: &str| ResolverError::BadRecord(format!("cdc envelope: {what}"));
    let Value::Record(fields) = value else { return Err(bad("not a record")) };
    let Some(Value::Record(source)) = field(fields, "source").map(unwrap_union) else {
        return Err(bad("no source block"));
    };
    let table = string(source, "table").ok_or_else(|| bad("no source.table"))?.to_owned();
    let commit_lsn = long(source, "commit_lsn").ok_or_else(|| bad("no source.commit_lsn"))?;
    let tx_position = long(source, "tx_position").ok_or_else(|| bad("no source.tx_position"))?;
    let commit_ts_ms = long(source, "ts_ms").unwrap_or(0);
    let snapshot = string(source, "snapshot").is_some_and(|s| s != "false");
    let op = match string(fields, "op").ok_or_else(|| bad("no op"))? {
        "c" | "r" => Op::Insert,
        "u" => Op::Update,
        "d" => Op::Delete,
        "t" => Op::Truncate,
        other => return Err(bad(&format!("unknown op {other:?}"))),
    };
    let missing: Vec<String> = match field(fields, "missing_columns").map(unwrap_union) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let after = match op {
        Op::Insert | Op::Update => {
            Some(field(fields, "after").and_then(|v| row(v, &missing)).ok_or_else(|| bad("no after image"))?)
        }
        Op::Delete | Op::Truncate => None,
    };
    let key = match key.and_then(|k| row(k, &[])) {
        Some(key) => key,
        None => match (&after, field(fields, "before").and_then(|v| row(v, &missing))) {
            (Some(after), _) => after.clone(),
            (None, Some(before)) => before,
            (None, None) if op == Op::Truncate => Row::new(),
            (None, None) => return Err(bad("no key")),
        },
    };
    Ok(CdcRecord { table, op, key, after, commit_lsn, tx_position, commit_ts_ms, snapshot })
}

/// Decodes an END record of `<prefix>.cdc.transactions` (Debezium-style transaction metadata:
/// `{status, id, commit_lsn, commit_ts_ms, event_count, data_collections: [{data_collection, event_count}]}`,
/// where `data_collection` is the topic name). A BEGIN record (`status` = BEGIN) yields `None`.
pub fn decode_tx_end(value: &Value) -> Result<Option<crate::kafka::transaction::TxEnd>, ResolverError> {
    let bad = |what: &str| ResolverError::BadRecord(format!("transaction record: {what}"));
    let Value::Record(fields) = unwrap_union(value) else { return Err(bad("not a record")) };
    if string(fields, "status").is_some_and(|s| s != "END") {
        return Ok(None);
    }
    let commit_lsn = long(fields, "commit_lsn").ok_or_else(|| bad("no commit_lsn"))?;
    let event_count = long(fields, "event_count").unwrap_or(0);
    let mut counts = BTreeMap::new();
    if let Some(Value::Array(items)) = field(fields, "data_collections").map(unwrap_union) {
        for item in items {
            if let Value::Record(entry) = unwrap_union(item) {
                if let (Some(topic), Some(count)) = (string(entry, "data_collection"), long(entry, "event_count")) {
                    counts.insert(topic.to_owned(), count);
                }
            }
        }
    }
    Ok(Some(crate::kafka::transaction::TxEnd { commit_lsn, event_count, counts }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u<T: Into<Value>>(v: T) -> Value {
        Value::Union(1, Box::new(v.into()))
    }

    fn envelope(op: &str, after: Option<Vec<(&str, Value)>>, missing: &[&str]) -> Value {
        let source = Value::Record(vec![
            ("table".into(), Value::String("bb_event".into())),
            ("snapshot".into(), Value::String("false".into())),
            ("ts_ms".into(), Value::Long(5)),
            ("commit_lsn".into(), Value::Long(100)),
            ("tx_position".into(), Value::Long(2)),
        ]);
        let after = match after {
            Some(cols) => u(Value::Record(cols.into_iter().map(|(n, v)| (n.to_owned(), v)).collect())),
            None => Value::Union(0, Box::new(Value::Null)),
        };
        Value::Record(vec![
            ("before".into(), Value::Union(0, Box::new(Value::Null))),
            ("after".into(), after),
            ("source".into(), source),
            ("op".into(), Value::String(op.into())),
            ("missing_columns".into(), Value::Array(missing.iter().map(|m| Value::String((*m).into())).collect())),
        ])
    }

    #[test]
    fn columns_are_read_by_name_and_unknown_columns_do_not_matter() {
        let value = envelope(
            "u",
            Some(vec![
                ("new_column", u(Value::Double(1.5))),
                ("id", u(Value::Int(7))),
                ("name", u(Value::String("Konsert".into()))),
                ("from_", u(Value::LocalTimestampMicros(42))),
                ("ends_at", u(Value::TimestampMicros(43))),
            ]),
            &[],
        );
        let key = Value::Record(vec![("id".into(), Value::Int(7))]);
        let record = decode(Some(&key), &value).expect("decodes");
        let after = record.after.clone().expect("after");
        assert_eq!(after.get("id"), Some(&Cell::Int(7)));
        assert_eq!(after.get("name").and_then(Cell::text), Some("Konsert"));
        assert_eq!(after.get("from_"), Some(&Cell::Local(42)));
        assert_eq!(after.get("ends_at"), Some(&Cell::Instant(43)), "timestamptz: an instant");
        assert_eq!(record.position(), (100, 2));
        assert_eq!(record.key.get("id"), Some(&Cell::Int(7)));
    }

    #[test]
    fn missing_columns_are_unknown_not_null() {
        let value = envelope(
            "u",
            Some(vec![("id", u(Value::Int(7))), ("description", Value::Union(0, Box::new(Value::Null)))]),
            &["description"],
        );
        let record = decode(None, &value).expect("decodes");
        assert!(!record.after.expect("after").contains_key("description"));
    }

    #[test]
    fn transaction_end_records_carry_the_count_per_topic() {
        let entry = |topic: &str, n: i64| {
            Value::Record(vec![
                ("data_collection".into(), Value::String(topic.into())),
                ("event_count".into(), Value::Long(n)),
            ])
        };
        let value = Value::Record(vec![
            ("status".into(), Value::String("END".into())),
            ("commit_lsn".into(), Value::Long(77)),
            ("event_count".into(), Value::Long(3)),
            (
                "data_collections".into(),
                Value::Array(vec![entry("p.cdc.public.bb_event", 1), entry("p.cdc.public.bb_event_resource", 2)]),
            ),
        ]);
        let end = decode_tx_end(&value).expect("decodes").expect("an END");
        assert_eq!((end.commit_lsn, end.event_count), (77, 3));
        assert_eq!(end.counts.get("p.cdc.public.bb_event_resource"), Some(&2));
        assert!(decode_tx_end(&Value::Null).is_err());
    }

    #[test]
    fn a_value_that_is_not_an_envelope_is_an_error_not_a_panic() {
        assert!(decode(None, &Value::Null).is_err());
        assert!(decode(None, &Value::Record(vec![])).is_err());
        assert!(decode(None, &envelope("x", None, &[])).is_err());
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;

    /// A small deterministic generator (no extra dependency): xorshift.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
            items[(self.next() % items.len() as u64) as usize]
        }

        fn value(&mut self, depth: u32) -> Value {
            let names = [
                "op",
                "source",
                "after",
                "before",
                "table",
                "commit_lsn",
                "tx_position",
                "missing_columns",
                "status",
                "data_collections",
                "data_collection",
                "event_count",
                "id",
                "snapshot",
                "ts_ms",
            ];
            match self.next() % if depth > 3 { 6 } else { 9 } {
                0 => Value::Null,
                1 => Value::Long(self.next() as i64),
                2 => Value::Int(self.next() as i32),
                3 => Value::String(self.pick(&["c", "u", "d", "r", "t", "x", "END", "false", "bb_event"]).to_owned()),
                4 => Value::Boolean(self.next().is_multiple_of(2)),
                5 => Value::LocalTimestampMicros(self.next() as i64),
                6 => Value::Union(1, Box::new(self.value(depth + 1))),
                7 => Value::Array((0..self.next() % 4).map(|_| self.value(depth + 1)).collect()),
                _ => Value::Record(
                    (0..self.next() % 7).map(|_| (self.pick(&names).to_owned(), self.value(depth + 1))).collect(),
                ),
            }
        }
    }

    #[test]
    fn arbitrary_avro_values_never_make_the_decoders_panic() {
        let mut gen = Gen(0x5eed_1234_abcd_ef01);
        for _ in 0..20_000 {
            let value = gen.value(0);
            let key = gen.value(2);
            let _ = decode(Some(&key), &value);
            let _ = decode(None, &value);
            let _ = decode_tx_end(&value);
        }
    }
}
