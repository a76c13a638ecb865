//! What the registry knows about a schema's text: it parses as Avro, and its identity.
//!
//! Invariant: two texts get the same identity exactly when they describe the same schema with the same
//! attributes. Identity is the parsed schema written back out as JSON (apache-avro writes attributes in a fixed
//! order), so whitespace, key order and `"type": "string"` vs `"string"` do not matter, but defaults, logical
//! types, docs and aliases do. Avro's Parsing Canonical Form is deliberately *not* the identity: it strips
//! `default` and `logicalType`, so a version that only adds a default (the usual BACKWARD evolution) or turns a
//! `long` into a `timestamp-millis` would be taken for the old schema and never become a new version. Confluent
//! likewise keys schemas on the full schema string, not on the fingerprint form.

use std::panic::{catch_unwind, AssertUnwindSafe};

use apache_avro::Schema;

/// A schema text that parsed as Avro, with its identity.
#[derive(Debug, Clone)]
pub struct ParsedSchema {
    /// The parsed schema.
    pub schema: Schema,
    /// The identity of the schema (see the module docs); unique among stored schemas.
    pub identity: String,
}

/// Why a text is not an Avro schema the registry accepts; the message goes back to the client.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidSchema(pub String);

impl ParsedSchema {
    /// Parses `text` as an Avro schema. Never panics, whatever the text.
    pub fn parse(text: &str) -> Result<Self, InvalidSchema> {
        // apache-avro 0.20 panics on some invalid input (an invalid record name unwraps an error inside the
        // parser; the property test below found it). This runs on client input: a panic would drop the
        // connection without the 422 the client needs, so it is caught and answered like any invalid schema.
        let parsed = catch_unwind(AssertUnwindSafe(|| {
            let schema = Schema::parse_str(text).map_err(|err| err.to_string())?;
            let identity = serde_json::to_string(&schema).map_err(|err| err.to_string())?;
            Ok::<_, String>(ParsedSchema { schema, identity })
        }));
        match parsed {
            Ok(Ok(parsed)) => Ok(parsed),
            Ok(Err(reason)) => Err(InvalidSchema(format!("Invalid schema {text}: {reason}"))),
            Err(_) => Err(InvalidSchema(format!("Invalid schema {text}: the Avro parser gave up on it"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: &str = r#"{"type":"record","name":"Booking","fields":[{"name":"id","type":"long"}]}"#;

    #[test]
    fn whitespace_and_key_order_do_not_change_identity() {
        let spaced = r#"{ "name": "Booking", "type": "record",
            "fields": [ { "type": {"type": "long"}, "name": "id" } ] }"#;
        assert_eq!(ParsedSchema::parse(RECORD).unwrap().identity, ParsedSchema::parse(spaced).unwrap().identity);
    }

    #[test]
    fn a_new_default_or_logical_type_changes_identity() {
        let with_default = r#"{"type":"record","name":"Booking","fields":[{"name":"id","type":"long","default":0}]}"#;
        let with_logical = r#"{"type":"record","name":"Booking",
            "fields":[{"name":"id","type":{"type":"long","logicalType":"timestamp-millis"}}]}"#;
        let base = ParsedSchema::parse(RECORD).unwrap().identity;
        assert_ne!(base, ParsedSchema::parse(with_default).unwrap().identity);
        assert_ne!(base, ParsedSchema::parse(with_logical).unwrap().identity);
    }

    #[test]
    fn every_truncation_and_byte_flip_of_a_schema_parses_or_errs_without_panic() {
        let schema = r#"{"type":"record","name":"Booking","namespace":"roomsync","fields":[
            {"name":"id","type":"long"},
            {"name":"room","type":["null",{"type":"enum","name":"Room","symbols":["A","B"]}],"default":null},
            {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
            {"name":"tags","type":{"type":"map","values":{"type":"array","items":"string"}}},
            {"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
            {"name":"hash","type":{"type":"fixed","name":"Hash","size":4}}]}"#;
        let bytes = schema.as_bytes();
        for end in 0..=bytes.len() {
            let _ = ParsedSchema::parse(&String::from_utf8_lossy(&bytes[..end]));
        }
        // A deterministic spread of single-byte replacements with JSON's structural characters.
        for (position, replacement) in (0..bytes.len()).flat_map(|i| b"{}[]\",:0-9e".iter().map(move |b| (i, *b))) {
            let mut mutated = bytes.to_vec();
            mutated[position] = replacement;
            let _ = ParsedSchema::parse(&String::from_utf8_lossy(&mutated));
        }
    }

    #[test]
    fn garbage_is_rejected_without_panic() {
        for text in ["", "{", "42", r#"{"type":"record"}"#, r#"{"type":"nope"}"#, "\u{0}"] {
            assert!(ParsedSchema::parse(text).is_err(), "{text:?} parsed");
        }
    }
}
