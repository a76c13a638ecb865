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
        let schema = Schema::parse_str(text).map_err(|err| InvalidSchema(format!("Invalid schema {text}: {err}")))?;
        // Serialising a parsed schema is not expected to fail or panic, but this runs on client input, so a bug in
        // the library must become a 422 rather than a dropped connection.
        let written = catch_unwind(AssertUnwindSafe(|| serde_json::to_string(&schema)));
        match written {
            Ok(Ok(identity)) => Ok(ParsedSchema { schema, identity }),
            Ok(Err(err)) => Err(InvalidSchema(format!("Invalid schema {text}: {err}"))),
            Err(_) => Err(InvalidSchema(format!("Invalid schema {text}: it cannot be written back as JSON"))),
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
    fn garbage_is_rejected_without_panic() {
        for text in ["", "{", "42", r#"{"type":"record"}"#, r#"{"type":"nope"}"#, "\u{0}"] {
            assert!(ParsedSchema::parse(text).is_err(), "{text:?} parsed");
        }
    }
}
