//! Avro on Kafka the Confluent way: the wire format, a schema-registry client, a codec that ties them together,
//! and a Confluent-compatible registry server persisted in PostgreSQL for the local stack and the tests.
//!
//! ```text
//!  producer: Value --encode--> [0x00][schema id: u32 BE][Avro binary] --> Kafka --> decode --> Value
//!                       |                                                      |
//!                       +-- schema id from the registry (cached per subject) --+-- writer schema by id (cached)
//! ```
//!
//! Any Confluent-compatible consumer (Kafka UI, ksqlDB, the Java and Python deserialisers) can decode what the
//! codec writes, because the framing and the subjects (`<topic>-value`, TopicNameStrategy) are Confluent's.

pub mod client;
pub mod codec;
pub mod server;
pub mod wire;

pub use client::{RegistryClient, RegistryError};
pub use codec::{AvroCodec, CodecError};
