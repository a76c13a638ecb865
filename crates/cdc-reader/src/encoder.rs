//! The boundary between the reader and the schema registry: turning an Avro value into Confluent wire-format
//! bytes (0x00, 4-byte big-endian schema id, Avro binary).
//!
//! Invariant: an [`EncodeError::Definite`] means this record can never be encoded (it goes to the dead-letter
//! topic); an [`EncodeError::Transient`] means the registry is unavailable (the reader retries, nothing is
//! skipped). The production encoder is the schema-registry crate's codec; [`InProcessRegistry`] assigns ids in
//! memory for tests and the benchmark.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use apache_avro::types::Value;
use apache_avro::Schema;
use thiserror::Error;

/// Why a value could not be encoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// The value can never be encoded with this schema.
    #[error("cannot encode: {0}")]
    Definite(String),
    /// The registry could not be reached; try again later.
    #[error("registry unavailable: {0}")]
    Transient(String),
}

/// A boxed future of a schema id.
pub type IdFuture<'a> = Pin<Box<dyn Future<Output = Result<u32, EncodeError>> + Send + 'a>>;

/// Encodes Avro values into Confluent wire format with ids from a registry.
///
/// Split in two so the reader asks for a table's ids once (per schema version) and the per-record path is pure
/// encoding: computing a schema's canonical form for every record would cost more than encoding it.
pub trait Encoder: Send + Sync {
    /// The id of `schema` under `subject`, registering it on first use.
    fn schema_id<'a>(&'a self, subject: &'a str, schema: &'a Schema) -> IdFuture<'a>;
    /// Encodes `value` with `schema`, registered as `id`.
    fn encode_with_id(&self, id: u32, schema: &Schema, value: Value) -> Result<Vec<u8>, EncodeError> {
        wire_format(id, schema, value)
    }
}

fn classify(error: schema_registry::CodecError) -> EncodeError {
    if error.is_transient() {
        EncodeError::Transient(error.to_string())
    } else {
        EncodeError::Definite(error.to_string())
    }
}

/// The production encoder: the schema-registry crate's codec (ids registered and cached per subject).
impl Encoder for schema_registry::AvroCodec {
    fn schema_id<'a>(&'a self, subject: &'a str, schema: &'a Schema) -> IdFuture<'a> {
        Box::pin(async move { schema_registry::AvroCodec::schema_id(self, subject, schema).await.map_err(classify) })
    }

    // The codec's own framing is the same Confluent wire format; the reader's path skips the general library's
    // per-record schema resolution (see datum.rs).
}

/// Schema ids assigned in memory: the wire format is exact, the ids are only meaningful to this instance.
#[derive(Debug, Default)]
pub struct InProcessRegistry {
    state: Mutex<Ids>,
}

#[derive(Debug, Default)]
struct Ids {
    by_schema: HashMap<String, u32>,
    schemas: HashMap<u32, Schema>,
}

impl InProcessRegistry {
    fn id_of(&self, schema: &Schema) -> u32 {
        let canonical = schema.canonical_form();
        let mut ids = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(id) = ids.by_schema.get(&canonical) {
            return *id;
        }
        let id = u32::try_from(ids.by_schema.len() + 1).unwrap_or(u32::MAX);
        ids.by_schema.insert(canonical, id);
        ids.schemas.insert(id, schema.clone());
        id
    }

    /// Decodes wire-format bytes produced by this registry.
    pub fn decode(&self, bytes: &[u8]) -> Result<(u32, Value), EncodeError> {
        let bad = |why: &str| EncodeError::Definite(why.to_owned());
        let (magic, rest) = bytes.split_first().ok_or_else(|| bad("empty"))?;
        if *magic != 0 || rest.len() < 4 {
            return Err(bad("not Confluent wire format"));
        }
        let (id_bytes, mut body) = rest.split_at(4);
        let id = u32::from_be_bytes(id_bytes.try_into().map_err(|_| bad("short id"))?);
        let schema = {
            let ids = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            ids.schemas.get(&id).cloned().ok_or_else(|| bad("unknown schema id"))?
        };
        let value = apache_avro::from_avro_datum(&schema, &mut body, None).map_err(|e| bad(&e.to_string()))?;
        Ok((id, value))
    }
}

impl Encoder for InProcessRegistry {
    fn schema_id<'a>(&'a self, _subject: &'a str, schema: &'a Schema) -> IdFuture<'a> {
        Box::pin(async move { Ok(self.id_of(schema)) })
    }
}

/// Bytes before the Avro body: magic byte 0 and the big-endian schema id.
const HEADER_LEN: usize = 5;

/// Frames an Avro value in Confluent wire format with schema id `id`: the reader's own encoder for exact
/// matches (datum.rs), the Avro library for anything else (its verdict on invalid values stands).
pub fn wire_format(id: u32, schema: &Schema, value: Value) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(512);
    out.push(0);
    out.extend_from_slice(&id.to_be_bytes());
    if crate::datum::encode(schema, &value, &mut out).is_some() {
        return Ok(out);
    }
    out.truncate(HEADER_LEN);
    let body = apache_avro::to_avro_datum(schema, value).map_err(|e| EncodeError::Definite(e.to_string()))?;
    out.extend_from_slice(&body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn values_round_trip_through_the_wire_format() {
        let registry = InProcessRegistry::default();
        let schema =
            Schema::parse_str(r#"{"type":"record","name":"K","fields":[{"name":"id","type":"int"}]}"#).expect("schema");
        let value = Value::Record(vec![("id".into(), Value::Int(42))]);
        let id = registry.schema_id("t-key", &schema).await.expect("id");
        let bytes = registry.encode_with_id(id, &schema, value.clone()).expect("encodes");
        assert_eq!(bytes[0], 0);
        assert_eq!(registry.decode(&bytes), Ok((1, value)));
    }

    #[tokio::test]
    async fn a_value_that_does_not_match_its_schema_is_a_definite_error() {
        let registry = InProcessRegistry::default();
        let schema = Schema::parse_str(r#""int""#).expect("schema");
        let id = registry.schema_id("s", &schema).await.expect("id");
        let result = registry.encode_with_id(id, &schema, Value::String("x".into()));
        assert!(matches!(result, Err(EncodeError::Definite(_))));
    }
}
