//! Confluent wire format, schema registry client and a Confluent-compatible registry persisted in PostgreSQL.
