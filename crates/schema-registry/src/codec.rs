//! Encodes Avro values into Confluent-framed records and decodes them back, with the schema ids from a
//! registry. Ids and schemas are cached: the registry is asked once per (subject, schema) and once per id, so
//! the hot path is pure encoding. Decoding resolves each writer schema once per id ([`Decoder`]):
//! `apache_avro::from_avro_datum` resolves the schema's names on every call, which was 14 % of a resolver
//! rebuilding from a million records (benches/README.md).

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, PoisonError};

use apache_avro::headers::HeaderBuilder;
use apache_avro::types::Value;
use apache_avro::{GenericSingleObjectReader, Schema};
use thiserror::Error;

use crate::client::{RegistryClient, RegistryError};
use crate::wire::{self, WireError};

/// What went wrong encoding or decoding a record.
#[derive(Debug, Error)]
pub enum CodecError {
    /// The registry could not give an id or a schema.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The bytes are not Confluent-framed.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The value does not fit the schema, or the payload does not decode with the writer's schema.
    #[error("avro: {0}")]
    Avro(String),
}

impl CodecError {
    /// Whether retrying later may succeed (only registry outages; a value that does not fit never will).
    pub fn is_transient(&self) -> bool {
        matches!(self, CodecError::Registry(err) if err.is_transient())
    }
}

/// Confluent-framed Avro with a registry behind it; cheap to clone, safe to share between tasks.
#[derive(Debug, Clone)]
pub struct AvroCodec {
    registry: RegistryClient,
    ids: Arc<Mutex<HashMap<(String, String), u32>>>,
    /// Ids of `'static` schemas by (subject, address): a `'static` schema is never freed, so its address cannot
    /// be reused by another schema, and the hot path needs no JSON serialisation.
    static_ids: Arc<Mutex<HashMap<(String, usize), u32>>>,
    schemas: Arc<Mutex<HashMap<u32, Arc<Schema>>>>,
    decoders: Arc<Mutex<HashMap<u32, Arc<Decoder>>>>,
}

/// A writer schema resolved once, decoding plain Avro datums (apache-avro's single-object reader with an empty
/// header: the one public way to decode with a resolved schema kept between calls).
struct Decoder(GenericSingleObjectReader);

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Decoder")
    }
}

/// The empty header of a plain datum.
struct NoHeader;

impl HeaderBuilder for NoHeader {
    fn build_header(&self) -> Vec<u8> {
        Vec::new()
    }
}

impl Decoder {
    fn new(schema: &Schema) -> Result<Self, CodecError> {
        let reader = GenericSingleObjectReader::new_with_header_builder(schema.clone(), NoHeader)
            .map_err(|err| CodecError::Avro(err.to_string()))?;
        Ok(Decoder(reader))
    }
}

impl AvroCodec {
    /// A codec using `registry` for ids and writer schemas.
    pub fn new(registry: RegistryClient) -> Self {
        AvroCodec {
            registry,
            ids: Arc::default(),
            static_ids: Arc::default(),
            schemas: Arc::default(),
            decoders: Arc::default(),
        }
    }

    /// The registry client behind this codec.
    pub fn registry(&self) -> &RegistryClient {
        &self.registry
    }

    /// The id of `schema` under `subject`, registering it on first use.
    pub async fn schema_id(&self, subject: &str, schema: &Schema) -> Result<u32, CodecError> {
        // Keyed on the full schema JSON, not the Parsing Canonical Form: that form drops defaults and logical
        // types, so two versions differing only there would share a cached id and records written with the second
        // would carry the first one's id (a `timestamp-millis` read back as a plain `long`).
        let text = serde_json::to_string(schema).map_err(|err| CodecError::Avro(err.to_string()))?;
        let key = (subject.to_owned(), text);
        if let Some(id) = self.ids.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
            return Ok(*id);
        }
        let id = self.registry.register(subject, &key.1).await?;
        self.ids.lock().unwrap_or_else(PoisonError::into_inner).insert(key, id);
        self.schemas.lock().unwrap_or_else(PoisonError::into_inner).insert(id, Arc::new(schema.clone()));
        Ok(id)
    }

    /// [`schema_id`](Self::schema_id) for a schema that lives as long as the program (the records' compiled-in
    /// schemas): after the first call a hash lookup, without serialising the schema.
    pub async fn static_schema_id(&self, subject: &str, schema: &'static Schema) -> Result<u32, CodecError> {
        let key = (subject.to_owned(), std::ptr::from_ref(schema) as usize);
        if let Some(id) = self.static_ids.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
            return Ok(*id);
        }
        let id = self.schema_id(subject, schema).await?;
        self.static_ids.lock().unwrap_or_else(PoisonError::into_inner).insert(key, id);
        Ok(id)
    }

    /// Registers (once) and encodes a value of a `'static` schema: the hot path of the record producers.
    pub async fn encode_static(
        &self,
        subject: &str,
        schema: &'static Schema,
        value: Value,
    ) -> Result<Vec<u8>, CodecError> {
        let id = self.static_schema_id(subject, schema).await?;
        self.encode_with_id(id, schema, value)
    }

    /// Encodes `value` with `schema` (already registered as `schema_id`) into a framed record. Pure: no I/O.
    pub fn encode_with_id(&self, schema_id: u32, schema: &Schema, value: Value) -> Result<Vec<u8>, CodecError> {
        let avro = apache_avro::to_avro_datum(schema, value).map_err(|err| CodecError::Avro(err.to_string()))?;
        Ok(wire::frame(schema_id, &avro))
    }

    /// Registers (once) and encodes: the convenient form of [`schema_id`](Self::schema_id) +
    /// [`encode_with_id`](Self::encode_with_id).
    pub async fn encode(&self, subject: &str, schema: &Schema, value: Value) -> Result<Vec<u8>, CodecError> {
        let id = self.schema_id(subject, schema).await?;
        self.encode_with_id(id, schema, value)
    }

    /// The writer schema with `id`, fetched once.
    pub async fn schema(&self, id: u32) -> Result<Arc<Schema>, CodecError> {
        if let Some(schema) = self.schemas.lock().unwrap_or_else(PoisonError::into_inner).get(&id) {
            return Ok(schema.clone());
        }
        let text = self.registry.schema_by_id(id).await?;
        // apache-avro 0.20 panics on some invalid schemas (e.g. a record name that is not an Avro name); what a
        // registry sends must not be able to take a consumer down.
        let parsed = catch_unwind(AssertUnwindSafe(|| Schema::parse_str(&text)))
            .map_err(|_| CodecError::Avro(format!("the Avro parser panicked on the schema with id {id}")))?;
        let schema = Arc::new(parsed.map_err(|err| CodecError::Avro(err.to_string()))?);
        self.schemas.lock().unwrap_or_else(PoisonError::into_inner).insert(id, schema.clone());
        Ok(schema)
    }

    /// Decodes a framed record with its writer schema; returns the schema id and the value.
    pub async fn decode(&self, bytes: &[u8]) -> Result<(u32, Value), CodecError> {
        let (id, mut payload) = wire::unframe(bytes)?;
        let cached = self.decoders.lock().unwrap_or_else(PoisonError::into_inner).get(&id).cloned();
        let decoder = match cached {
            Some(decoder) => decoder,
            None => {
                let decoder = Arc::new(Decoder::new(&*self.schema(id).await?)?);
                self.decoders.lock().unwrap_or_else(PoisonError::into_inner).insert(id, decoder.clone());
                decoder
            }
        };
        let value = decoder.0.read_value(&mut payload).map_err(|err| CodecError::Avro(err.to_string()))?;
        Ok((id, value))
    }
}
