//! The registry's tables, created if absent when the store opens.
//!
//! ```text
//!  schema_registry.schemas            id (global, never reused) | fingerprint (unique) | identity | schema_text
//!  schema_registry.subject_versions   subject | version | schema_id -> schemas.id | deleted (soft delete)
//!  schema_registry.subject_config     subject | compatibility
//!  schema_registry.global_config      one row at most | compatibility
//! ```
//!
//! Invariants the constraints keep, whatever the number of registry processes on the database: one row per
//! schema identity (so one global id per schema, across subjects), one row per (subject, version). The identity is
//! unique through its SHA-256 rather than directly, because a btree index cannot hold a schema of several KB.

use tokio_postgres::Client;

use super::StoreError;

/// Key of the advisory lock that serialises table creation between registry processes starting together
/// (`create table if not exists` is not safe against a concurrent create of the same table).
const CREATE_LOCK: i64 = 0x7265_6769_7374_7279; // "registry"

const DDL: &str = "
create schema if not exists schema_registry;
create table if not exists schema_registry.schemas (
    id serial primary key,
    fingerprint bytea not null unique,
    identity text not null,
    schema_text text not null,
    created_at timestamptz not null default now()
);
create table if not exists schema_registry.subject_versions (
    subject text not null,
    version integer not null check (version > 0),
    schema_id integer not null references schema_registry.schemas (id),
    deleted boolean not null default false,
    created_at timestamptz not null default now(),
    primary key (subject, version)
);
create index if not exists subject_versions_schema_id on schema_registry.subject_versions (schema_id);
create table if not exists schema_registry.subject_config (
    subject text primary key,
    compatibility text not null
);
create table if not exists schema_registry.global_config (
    only_row boolean primary key default true check (only_row),
    compatibility text not null
);
";

/// Creates the schema and tables that do not exist yet.
pub(crate) async fn create_if_absent(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute("select pg_advisory_xact_lock($1)", &[&CREATE_LOCK]).await?;
    tx.batch_execute(DDL).await?;
    tx.commit().await?;
    Ok(())
}
