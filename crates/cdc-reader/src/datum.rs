//! Avro binary encoding of the reader's records on the hot path, without the general library's per-record
//! schema resolution and validation (each of which rebuilds name tables and hash maps for every record).
//!
//! Invariant: [`encode`] either writes exactly the bytes `apache_avro::to_avro_datum` writes for the same schema
//! and value, or returns `None` and writes nothing the caller keeps; the caller then uses the library, whose
//! verdict (bytes or a definite error) stands. It accepts only exact matches between value and schema (records
//! with their fields in schema order, unions by branch index, the reader's scalar kinds), so anything it
//! cannot prove valid goes the general way.

use apache_avro::schema::{Name, RecordSchema};
use apache_avro::types::Value;
use apache_avro::Schema;

/// Named types defined in a schema, found once per call (the envelope has four): Refs resolve against them.
struct Named<'s> {
    types: Vec<(&'s Name, &'s Schema)>,
}

impl<'s> Named<'s> {
    fn collect(schema: &'s Schema) -> Self {
        let mut named = Named { types: Vec::new() };
        named.walk(schema);
        named
    }

    fn walk(&mut self, schema: &'s Schema) {
        match schema {
            Schema::Record(record) => {
                self.types.push((&record.name, schema));
                for field in &record.fields {
                    self.walk(&field.schema);
                }
            }
            Schema::Union(union) => union.variants().iter().for_each(|s| self.walk(s)),
            Schema::Array(array) => self.walk(&array.items),
            Schema::Map(map) => self.walk(&map.types),
            _ => {}
        }
    }

    fn get(&self, name: &Name) -> Option<&'s Schema> {
        // Parsed schemas carry fully qualified names on both sides; an unqualified one is left to the library.
        name.namespace.as_ref()?;
        self.types.iter().find(|(defined, _)| *defined == name).map(|(_, schema)| *schema)
    }
}

/// Appends the Avro binary encoding of `value` to `out`; `None` when the value is not an exact match this
/// encoder handles (the caller falls back to the library and truncates `out` back).
pub fn encode(schema: &Schema, value: &Value, out: &mut Vec<u8>) -> Option<()> {
    let named = Named::collect(schema);
    write(schema, value, &named, out, 0)
}

/// Nesting deeper than this is not a reader record: leave it to the library.
const MAX_DEPTH: usize = 32;

fn write(schema: &Schema, value: &Value, named: &Named<'_>, out: &mut Vec<u8>, depth: usize) -> Option<()> {
    if depth > MAX_DEPTH {
        return None;
    }
    match (schema, value) {
        (Schema::Ref { name }, _) => write(named.get(name)?, value, named, out, depth + 1)?,
        (Schema::Null, Value::Null) => {}
        (Schema::Boolean, Value::Boolean(b)) => out.push(u8::from(*b)),
        (Schema::Int, Value::Int(i)) | (Schema::Date, Value::Date(i)) => zigzag(i64::from(*i), out),
        (Schema::Long, Value::Long(i))
        | (Schema::TimestampMicros, Value::TimestampMicros(i))
        | (Schema::LocalTimestampMicros, Value::LocalTimestampMicros(i))
        | (Schema::TimeMicros, Value::TimeMicros(i)) => zigzag(*i, out),
        (Schema::Float, Value::Float(f)) => out.extend_from_slice(&f.to_le_bytes()),
        (Schema::Double, Value::Double(f)) => out.extend_from_slice(&f.to_le_bytes()),
        (Schema::String, Value::String(s)) => {
            zigzag(i64::try_from(s.len()).ok()?, out);
            out.extend_from_slice(s.as_bytes());
        }
        (Schema::Union(union), Value::Union(index, inner)) => {
            let branch = union.variants().get(usize::try_from(*index).ok()?)?;
            zigzag(i64::from(*index), out);
            write(branch, inner, named, out, depth + 1)?;
        }
        (Schema::Array(array), Value::Array(items)) => {
            if !items.is_empty() {
                zigzag(i64::try_from(items.len()).ok()?, out);
                for item in items {
                    write(&array.items, item, named, out, depth + 1)?;
                }
            }
            out.push(0);
        }
        (Schema::Record(RecordSchema { fields, .. }), Value::Record(values)) => {
            if fields.len() != values.len() {
                return None;
            }
            for (field, (name, value)) in fields.iter().zip(values) {
                if field.name != *name {
                    return None;
                }
                write(&field.schema, value, named, out, depth + 1)?;
            }
        }
        _ => return None,
    }
    Some(())
}

/// Avro's variable-length zig-zag encoding of int and long.
fn zigzag(n: i64, out: &mut Vec<u8>) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{self, Source, TableSchemas};
    use crate::pgoutput::Datum;
    use crate::relation::{oid, Column, TableShape};
    use bytes::Bytes;

    fn shape() -> TableShape {
        let col = |name: &str, type_oid, key| Column { name: name.into(), type_oid, key };
        TableShape {
            schema: "public".into(),
            table: "bb_every type".into(),
            columns: vec![
                col("id", oid::INT4, true),
                col("big", oid::INT8, false),
                col("small", oid::INT2, false),
                col("active", oid::BOOL, false),
                col("ratio", oid::FLOAT4, false),
                col("amount", oid::FLOAT8, false),
                col("from_", oid::TIMESTAMP, false),
                col("created", oid::TIMESTAMPTZ, false),
                col("day", oid::DATE, false),
                col("at", oid::TIME, false),
                col("description", 25, false),
                col("cost", oid::NUMERIC, false),
            ],
            full_identity: false,
        }
    }

    fn tuple(values: &[Option<&str>]) -> Vec<Datum> {
        values
            .iter()
            .map(|v| match v {
                Some("<toast>") => Datum::UnchangedToast,
                Some(text) => Datum::Text(Bytes::copy_from_slice(text.as_bytes())),
                None => Datum::Null,
            })
            .collect()
    }

    fn source(position: i64) -> Source {
        Source {
            name: "roomsync".into(),
            db: "booking".into(),
            snapshot: "false",
            ts_ms: 1_700_000_000_000,
            tx_id: Some(4711),
            lsn: None,
            commit_lsn: 0x1_6B37_4D48,
            tx_position: position,
        }
    }

    fn library(schema: &Schema, value: &Value) -> Vec<u8> {
        apache_avro::to_avro_datum(schema, value.clone()).expect("the library encodes it")
    }

    fn ours(schema: &Schema, value: &Value) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        encode(schema, value, &mut out).map(|()| out)
    }

    #[test]
    fn envelopes_of_every_column_type_encode_to_the_same_bytes_as_the_avro_library() {
        let shape = shape();
        let schemas = TableSchemas::generate(&shape).expect("schemas");
        let full = tuple(&[
            Some("-42"),
            Some("9007199254740993"),
            Some("-7"),
            Some("t"),
            Some("1.5"),
            Some("-2.25e10"),
            Some("2026-03-29 02:30:00.123456"),
            Some("2026-10-25 02:30:00+01"),
            Some("1969-12-31"),
            Some("23:59:59.999999"),
            Some("Gymsal \u{e6}\u{f8}\u{e5} \u{1f3c0}"),
            Some("123456789.000001"),
        ]);
        let sparse =
            tuple(&[Some("7"), None, None, Some("f"), None, None, None, None, None, None, Some("<toast>"), None]);
        let key_only = tuple(&[Some("7"), None, None, None, None, None, None, None, None, None, None, None]);
        let rows = |t: &[Datum], fill: Option<&[Datum]>, key_only: bool| envelope::row(&shape, t, fill, key_only);
        let cases = [
            ("c", None, Some(rows(&full, None, false))),
            ("u", Some(rows(&key_only, None, true)), Some(rows(&sparse, None, false))),
            ("u", Some(rows(&full, None, false)), Some(rows(&sparse, Some(&full), false))),
            ("d", Some(rows(&key_only, None, true)), None),
            ("t", None, None),
        ];
        for (position, (op, before, after)) in cases.into_iter().enumerate() {
            let before = before.map(|r| r.expect("row"));
            let after = after.map(|r| r.expect("row"));
            let mut source = source(position as i64);
            source.lsn = (position % 2 == 0).then_some(0x1_6B37_4D00 + position as u64);
            let value = envelope::envelope(&shape, op, before, after, &source, -1);
            assert_eq!(ours(&schemas.envelope, &value), Some(library(&schemas.envelope, &value)), "op {op}");
        }
        let key = envelope::key(&shape, &full).expect("key");
        assert_eq!(ours(&schemas.key, &key), Some(library(&schemas.key, &key)));
    }

    #[test]
    fn extreme_numbers_encode_like_the_avro_library() {
        for (schema, value) in [
            (Schema::Long, Value::Long(i64::MIN)),
            (Schema::Long, Value::Long(i64::MAX)),
            (Schema::Int, Value::Int(i32::MIN)),
            (Schema::Int, Value::Int(i32::MAX)),
            (Schema::Double, Value::Double(f64::NAN)),
            (Schema::Float, Value::Float(f32::NEG_INFINITY)),
            (Schema::String, Value::String(String::new())),
        ] {
            assert_eq!(ours(&schema, &value), Some(library(&schema, &value)), "{value:?}");
        }
    }

    #[test]
    fn a_value_that_does_not_match_its_schema_is_left_to_the_library() {
        let schema =
            Schema::parse_str(r#"{"type":"record","name":"K","namespace":"n","fields":[{"name":"id","type":"int"}]}"#)
                .expect("schema");
        for value in [
            Value::Record(vec![("id".into(), Value::String("1".into()))]),
            Value::Record(vec![("other".into(), Value::Int(1))]),
            Value::Record(vec![]),
            Value::Int(1),
        ] {
            assert_eq!(ours(&schema, &value), None, "{value:?}");
        }
        let union = Schema::parse_str(r#"["null","long"]"#).expect("schema");
        assert_eq!(ours(&union, &Value::Union(2, Box::new(Value::Long(1)))), None);
        assert_eq!(ours(&union, &Value::Union(0, Box::new(Value::Long(1)))), None);
    }

    #[test]
    fn the_wire_format_falls_back_to_the_library_for_values_it_does_not_handle() {
        // The library accepts an int where a long is expected; the fast path does not claim it.
        let schema = Schema::Long;
        let framed = crate::encoder::wire_format(3, &schema, Value::Int(5)).expect("library encodes");
        assert_eq!(framed, [0, 0, 0, 0, 3, 10]);
        let bad = crate::encoder::wire_format(3, &schema, Value::String("x".into()));
        assert!(matches!(bad, Err(crate::encoder::EncodeError::Definite(_))));
    }
}
