//! The Avro contract of the CDC topics: per table a Key record (the key columns) and a Debezium-shaped
//! Envelope {before, after, source, op, ts_ms, missing_columns}, generated from the table's published shape,
//! and the conversion of pgoutput text values into Avro values.
//!
//! Invariants:
//! - a value PostgreSQL did not send (an unchanged TOAST value, a non-key column of a DELETE under DEFAULT
//!   replica identity) is never presented as NULL: it is filled from what the stream knows (the old row under
//!   REPLICA IDENTITY FULL) or its column is listed in `missing_columns`;
//! - every envelope carries the commit LSN, the position in its transaction, the transaction id and the commit
//!   time, so consumers can drop what they already applied after a replay.
//!
//! ```text
//!   pgoutput text  --convert by column type-->  Avro Value  --Envelope schema-->  encoder (registry, wire format)
//! ```

use apache_avro::types::Value;
use apache_avro::Schema;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use serde_json::{json, Value as Json};
use thiserror::Error;

use crate::pgoutput::Datum;
use crate::relation::{oid, Column, TableShape};

/// Connector name written into `source.connector`.
pub const CONNECTOR: &str = "roomsync-cdc";

/// Why a row could not be turned into an envelope (the row goes to the dead-letter topic).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RowError {
    /// A value does not parse as its column type (e.g. `infinity` in a timestamp).
    #[error("column {column}: {value:?} is not a valid {kind}")]
    BadValue {
        /// Column name.
        column: String,
        /// The text PostgreSQL sent (truncated).
        value: String,
        /// Expected kind.
        kind: &'static str,
    },
    /// A key column is NULL or missing.
    #[error("key column {0} has no value")]
    MissingKey(String),
    /// The tuple does not have the columns the relation announced.
    #[error("tuple has {got} columns, relation has {expected}")]
    Arity {
        /// Columns in the tuple.
        got: usize,
        /// Columns in the relation.
        expected: usize,
    },
    /// The generated schema was rejected by the Avro library.
    #[error("schema: {0}")]
    Schema(String),
}

/// The Avro schemas of one table.
#[derive(Debug, Clone)]
pub struct TableSchemas {
    /// Key record schema.
    pub key: Schema,
    /// Envelope schema.
    pub envelope: Schema,
    /// The envelope schema as JSON (the published contract, `schemas/cdc/<schema>.<table>.avsc`).
    pub envelope_json: Json,
    /// The key schema as JSON (the published contract, `schemas/cdc/<schema>.<table>.key.avsc`).
    pub key_json: Json,
}

/// The Avro type of a column (inside the `["null", T]` union of value records).
fn avro_type(type_oid: u32) -> Json {
    match type_oid {
        oid::INT2 | oid::INT4 => json!("int"),
        oid::INT8 => json!("long"),
        oid::BOOL => json!("boolean"),
        oid::FLOAT4 => json!("float"),
        oid::FLOAT8 => json!("double"),
        oid::TIMESTAMP => json!({"type": "long", "logicalType": "local-timestamp-micros"}),
        oid::TIMESTAMPTZ => json!({"type": "long", "logicalType": "timestamp-micros"}),
        oid::DATE => json!({"type": "int", "logicalType": "date"}),
        oid::TIME => json!({"type": "long", "logicalType": "time-micros"}),
        _ => json!("string"),
    }
}

/// A valid Avro name for a PostgreSQL identifier: invalid characters become `_`.
pub fn avro_name(name: &str) -> String {
    let mut out: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

impl TableSchemas {
    /// Generates the Key and Envelope schemas of a table shape.
    pub fn generate(shape: &TableShape) -> Result<Self, RowError> {
        let namespace = format!("roomsync.cdc.{}.{}", avro_name(&shape.schema), avro_name(&shape.table));
        let key_fields: Vec<Json> = shape
            .columns
            .iter()
            .filter(|c| c.key)
            .map(|c| json!({"name": avro_name(&c.name), "type": avro_type(c.type_oid)}))
            .collect();
        let key = json!({"type": "record", "name": "Key", "namespace": namespace, "fields": key_fields});
        let value_fields: Vec<Json> = shape
            .columns
            .iter()
            .map(|c| json!({"name": avro_name(&c.name), "type": ["null", avro_type(c.type_oid)], "default": null}))
            .collect();
        let value = json!({"type": "record", "name": "Value", "fields": value_fields});
        let source = json!({"type": "record", "name": "Source", "namespace": "roomsync.cdc", "fields": [
            {"name": "version", "type": "string"},
            {"name": "connector", "type": "string"},
            {"name": "name", "type": "string"},
            {"name": "ts_ms", "type": "long", "doc": "commit time (snapshot: time of the snapshot)"},
            {"name": "snapshot", "type": "string", "doc": "true, last or false"},
            {"name": "db", "type": "string"},
            {"name": "schema", "type": "string"},
            {"name": "table", "type": "string"},
            {"name": "txId", "type": ["null", "long"], "default": null},
            {"name": "lsn", "type": ["null", "long"], "default": null, "doc": "LSN of the change itself"},
            {"name": "commit_lsn", "type": "long",
             "doc": "commit LSN of the transaction (snapshot: the slot's consistent point)"},
            {"name": "tx_position", "type": "long",
             "doc": "0-based position of the change in its transaction; (commit_lsn, tx_position) orders all records"}
        ]});
        let envelope = json!({
            "type": "record", "name": "Envelope", "namespace": namespace,
            "fields": [
                {"name": "before", "type": ["null", value], "default": null},
                {"name": "after", "type": ["null", "Value"], "default": null},
                {"name": "source", "type": source},
                {"name": "op", "type": "string", "doc": "c, u, d, r (snapshot read) or t (truncate)"},
                {"name": "ts_ms", "type": ["null", "long"], "default": null, "doc": "when the reader processed it"},
                {"name": "missing_columns", "type": {"type": "array", "items": "string"}, "default": [],
                 "doc": "columns whose value PostgreSQL did not send (unchanged TOAST, non-key columns of a delete): they are unknown, not NULL"}
            ]
        });
        let parse = |json: &Json| Schema::parse(json).map_err(|e| RowError::Schema(e.to_string()));
        Ok(TableSchemas { key: parse(&key)?, envelope: parse(&envelope)?, envelope_json: envelope, key_json: key })
    }
}

/// Converts one text value of a column into its Avro value (without the null union).
pub fn convert(column: &Column, text: &str) -> Result<Value, RowError> {
    let bad = |kind: &'static str| RowError::BadValue {
        column: column.name.clone(),
        value: text.chars().take(64).collect(),
        kind,
    };
    Ok(match column.type_oid {
        oid::INT2 | oid::INT4 => Value::Int(text.parse().map_err(|_| bad("int"))?),
        oid::INT8 => Value::Long(text.parse().map_err(|_| bad("bigint"))?),
        oid::BOOL => match text {
            "t" => Value::Boolean(true),
            "f" => Value::Boolean(false),
            _ => return Err(bad("boolean")),
        },
        oid::FLOAT4 => Value::Float(text.parse().map_err(|_| bad("real"))?),
        oid::FLOAT8 => Value::Double(text.parse().map_err(|_| bad("double precision"))?),
        oid::TIMESTAMP => {
            let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").map_err(|_| bad("timestamp"))?;
            Value::LocalTimestampMicros(local.and_utc().timestamp_micros())
        }
        oid::TIMESTAMPTZ => {
            let instant = DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z").map_err(|_| bad("timestamptz"))?;
            Value::TimestampMicros(instant.timestamp_micros())
        }
        oid::DATE => {
            let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| bad("date"))?;
            let days = date.signed_duration_since(NaiveDate::default()).num_days();
            Value::Date(i32::try_from(days).map_err(|_| bad("date"))?)
        }
        oid::TIME => {
            let time = NaiveTime::parse_from_str(text, "%H:%M:%S%.f").map_err(|_| bad("time"))?;
            let micros = i64::from(time.num_seconds_from_midnight()) * 1_000_000 + i64::from(time.nanosecond() / 1000);
            Value::TimeMicros(micros)
        }
        _ => Value::String(text.to_owned()),
    })
}

fn datum_text<'a>(column: &Column, datum: &'a Datum) -> Result<Option<&'a str>, RowError> {
    match datum {
        Datum::Text(bytes) | Datum::Binary(bytes) => std::str::from_utf8(bytes)
            .map(Some)
            .map_err(|_| RowError::BadValue { column: column.name.clone(), value: "<not UTF-8>".into(), kind: "text" }),
        Datum::Null | Datum::UnchangedToast => Ok(None),
    }
}

/// A row as an Avro `Value` record, with the columns whose value is unknown.
pub struct Row {
    /// The record.
    pub value: Value,
    /// Columns PostgreSQL did not send and nothing could fill.
    pub missing: Vec<String>,
}

/// Builds the value record of a tuple. `fill` is an older image of the same row (REPLICA IDENTITY FULL old
/// tuple) used for unchanged TOAST values; `key_only` marks a DELETE/old-key tuple whose non-key columns are
/// unknown rather than NULL.
pub fn row(shape: &TableShape, tuple: &[Datum], fill: Option<&[Datum]>, key_only: bool) -> Result<Row, RowError> {
    if tuple.len() != shape.columns.len() {
        return Err(RowError::Arity { got: tuple.len(), expected: shape.columns.len() });
    }
    let mut fields = Vec::with_capacity(tuple.len());
    let mut missing = Vec::new();
    for (i, (column, datum)) in shape.columns.iter().zip(tuple).enumerate() {
        let datum = match (datum, fill.and_then(|old| old.get(i))) {
            (Datum::UnchangedToast, Some(known @ (Datum::Text(_) | Datum::Binary(_) | Datum::Null))) => known,
            _ => datum,
        };
        if matches!(datum, Datum::UnchangedToast) || (key_only && !column.key) {
            missing.push(column.name.clone());
        }
        let value = match datum_text(column, datum)? {
            Some(text) => Value::Union(1, Box::new(convert(column, text)?)),
            None => Value::Union(0, Box::new(Value::Null)),
        };
        fields.push((avro_name(&column.name), value));
    }
    Ok(Row { value: Value::Record(fields), missing })
}

/// The key record of a tuple.
pub fn key(shape: &TableShape, tuple: &[Datum]) -> Result<Value, RowError> {
    let mut fields = Vec::new();
    for (i, column) in shape.key_columns() {
        let datum = tuple.get(i).ok_or_else(|| RowError::MissingKey(column.name.clone()))?;
        let text = datum_text(column, datum)?.ok_or_else(|| RowError::MissingKey(column.name.clone()))?;
        fields.push((avro_name(&column.name), convert(column, text)?));
    }
    Ok(Value::Record(fields))
}

/// Where a record comes from, for the envelope's `source` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Topic prefix (`source.name`).
    pub name: String,
    /// Database name.
    pub db: String,
    /// `true`, `last` (last snapshot row) or `false`.
    pub snapshot: &'static str,
    /// Commit time in ms since the epoch.
    pub ts_ms: i64,
    /// Transaction id (none for snapshot rows).
    pub tx_id: Option<i64>,
    /// LSN of the change itself.
    pub lsn: Option<u64>,
    /// Commit LSN of the transaction.
    pub commit_lsn: u64,
    /// Position in the transaction.
    pub tx_position: i64,
}

/// Assembles an envelope value.
pub fn envelope(
    shape: &TableShape,
    op: &str,
    before: Option<Row>,
    after: Option<Row>,
    source: &Source,
    now_ms: i64,
) -> Value {
    let mut missing = Vec::new();
    let mut side = |row: Option<Row>| match row {
        Some(row) => {
            for column in row.missing {
                if !missing.contains(&column) {
                    missing.push(column);
                }
            }
            Value::Union(1, Box::new(row.value))
        }
        None => Value::Union(0, Box::new(Value::Null)),
    };
    let before = side(before);
    let after = side(after);
    let optional_long = |v: Option<i64>| match v {
        Some(v) => Value::Union(1, Box::new(Value::Long(v))),
        None => Value::Union(0, Box::new(Value::Null)),
    };
    let source = Value::Record(vec![
        ("version".into(), Value::String(env!("CARGO_PKG_VERSION").into())),
        ("connector".into(), Value::String(CONNECTOR.into())),
        ("name".into(), Value::String(source.name.clone())),
        ("ts_ms".into(), Value::Long(source.ts_ms)),
        ("snapshot".into(), Value::String(source.snapshot.into())),
        ("db".into(), Value::String(source.db.clone())),
        ("schema".into(), Value::String(shape.schema.clone())),
        ("table".into(), Value::String(shape.table.clone())),
        ("txId".into(), optional_long(source.tx_id)),
        ("lsn".into(), optional_long(source.lsn.map(lsn_long))),
        ("commit_lsn".into(), Value::Long(lsn_long(source.commit_lsn))),
        ("tx_position".into(), Value::Long(source.tx_position)),
    ]);
    Value::Record(vec![
        ("before".into(), before),
        ("after".into(), after),
        ("source".into(), source),
        ("op".into(), Value::String(op.into())),
        ("ts_ms".into(), optional_long(Some(now_ms))),
        ("missing_columns".into(), Value::Array(missing.into_iter().map(Value::String).collect())),
    ])
}

/// LSNs stay below 2^63 in practice; saturate rather than wrap if one ever does not.
fn lsn_long(lsn: u64) -> i64 {
    i64::try_from(lsn).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn shape() -> TableShape {
        let col = |name: &str, type_oid, key| Column { name: name.into(), type_oid, key };
        TableShape {
            schema: "public".into(),
            table: "bb_event".into(),
            columns: vec![
                col("id", oid::INT4, true),
                col("from_", oid::TIMESTAMP, false),
                col("description", 25, false),
                col("cost", oid::NUMERIC, false),
            ],
            full_identity: false,
        }
    }

    fn text(s: &str) -> Datum {
        Datum::Text(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn source() -> Source {
        Source {
            name: "roomsync".into(),
            db: "booking".into(),
            snapshot: "false",
            ts_ms: 1,
            tx_id: Some(7),
            lsn: Some(10),
            commit_lsn: 20,
            tx_position: 0,
        }
    }

    #[test]
    fn oslo_wall_clock_timestamps_keep_their_wall_clock_value() {
        let column = Column { name: "from_".into(), type_oid: oid::TIMESTAMP, key: false };
        // 2026-03-29 02:30 does not exist in Oslo; as a local timestamp it is still exactly that wall clock.
        let value = convert(&column, "2026-03-29 02:30:00").expect("parses");
        let expected = NaiveDateTime::parse_from_str("2026-03-29 02:30:00", "%Y-%m-%d %H:%M:%S").expect("valid");
        assert_eq!(value, Value::LocalTimestampMicros(expected.and_utc().timestamp_micros()));
    }

    #[test]
    fn timestamptz_dates_and_times_convert_to_their_logical_types() {
        let col = |t| Column { name: "c".into(), type_oid: t, key: false };
        assert_eq!(convert(&col(oid::TIMESTAMPTZ), "1970-01-01 01:00:01+01"), Ok(Value::TimestampMicros(1_000_000)));
        assert_eq!(convert(&col(oid::DATE), "1970-01-03"), Ok(Value::Date(2)));
        assert_eq!(convert(&col(oid::TIME), "00:00:01.5"), Ok(Value::TimeMicros(1_500_000)));
        assert_eq!(convert(&col(oid::BOOL), "t"), Ok(Value::Boolean(true)));
    }

    #[test]
    fn an_infinite_timestamp_is_a_row_error_not_a_panic() {
        let column = Column { name: "from_".into(), type_oid: oid::TIMESTAMP, key: false };
        assert!(matches!(convert(&column, "infinity"), Err(RowError::BadValue { .. })));
    }

    #[test]
    fn unchanged_toast_is_listed_as_missing_never_null_and_filled_when_known() {
        let shape = shape();
        let new = vec![text("1"), text("2026-01-01 10:00:00"), Datum::UnchangedToast, text("1.50")];
        let row_unfilled = row(&shape, &new, None, false).expect("row");
        assert_eq!(row_unfilled.missing, vec!["description".to_owned()]);
        let old = vec![text("1"), text("2026-01-01 09:00:00"), text("long text"), text("1.50")];
        let filled = row(&shape, &new, Some(&old), false).expect("row");
        assert!(filled.missing.is_empty());
        let Value::Record(fields) = filled.value else { panic!("record") };
        assert_eq!(fields[2].1, Value::Union(1, Box::new(Value::String("long text".into()))));
    }

    #[test]
    fn envelopes_validate_against_the_generated_schema() {
        let shape = shape();
        let schemas = TableSchemas::generate(&shape).expect("schemas");
        let new = vec![text("1"), text("2026-01-01 10:00:00"), Datum::UnchangedToast, Datum::Null];
        let after = row(&shape, &new, None, false).expect("row");
        let value = envelope(&shape, "u", None, Some(after), &source(), 5);
        assert!(value.validate(&schemas.envelope), "envelope does not match its schema");
        let key_value = key(&shape, &new).expect("key");
        assert!(key_value.validate(&schemas.key));
        apache_avro::to_avro_datum(&schemas.envelope, value).expect("encodes");
    }

    #[test]
    fn deletes_under_default_identity_mark_non_key_columns_missing() {
        let shape = shape();
        let old = vec![text("1"), Datum::Null, Datum::Null, Datum::Null];
        let before = row(&shape, &old, None, true).expect("row");
        assert_eq!(before.missing, vec!["from_", "description", "cost"]);
    }

    #[test]
    fn a_null_key_is_refused() {
        assert_eq!(key(&shape(), &[Datum::Null]), Err(RowError::MissingKey("id".into())));
    }
}
