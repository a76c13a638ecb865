//! The registry's state in PostgreSQL: schemas with their global ids, subject versions, compatibility config.
//!
//! Invariants (kept by constraints and locks in the database, so they hold across several registry processes on
//! one database and across restarts):
//! - one global id per schema identity, whichever subject registers it first, never reused;
//! - a subject's versions are 1, 2, 3... in registration order, and a schema already live under the subject is
//!   never given a second version: registration takes a per-subject advisory lock for its transaction, so two
//!   concurrent registrations of one schema see each other and return the same id and version;
//! - a new version is only written if it passes the subject's compatibility check, inside the same transaction.
//!
//! ```text
//!  register(subject, schema) --tx: lock(subject) -> live under subject? -> compatible? -> id for identity
//!                                                                                     -> version max+1 -> commit
//! ```

mod config;
mod deletion;
mod pool;
mod tables;

use std::sync::Arc;

use apache_avro::Schema;
use serde::Serialize;
use tokio_postgres::{GenericClient, Row};

use super::avro::ParsedSchema;
use super::compatibility::Level;
use config::effective_level;
pub use deletion::Deletion;
use pool::Pool;

/// The SQL expression for the fingerprint of the identity passed as parameter `$n`.
macro_rules! fingerprint {
    ($n:literal) => {
        concat!("sha256(convert_to($", $n, "::text, 'UTF8'))")
    };
}

/// First key of the per-subject advisory lock (the second is the subject's hash), so it cannot collide with the
/// locks other applications on the same database take with one key. Two subjects whose hashes collide only
/// serialise each other's registrations, which costs time, never correctness.
const SUBJECT_LOCK_CLASS: i32 = 0x5352; // "SR"

/// Where the store lives and how many connections it may hold.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// PostgreSQL connection URL, e.g. `postgres://postgres@127.0.0.1:15432/schema_registry`.
    pub database_url: String,
    /// Most connections open at once.
    pub max_connections: usize,
}

/// What went wrong with the database; every variant is a 500 (error_code 50001) for the client.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No connection could be opened.
    #[error("cannot connect to the registry database: {0}")]
    Connect(#[source] tokio_postgres::Error),
    /// A statement failed.
    #[error("registry database: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// The pool was shut down.
    #[error("the registry's connection pool is closed")]
    PoolClosed,
    /// A stored row no longer makes sense (edited by hand?).
    #[error("corrupt registry data: {0}")]
    Corrupt(String),
}

/// Which version of a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSpec {
    /// The highest version (live, unless deleted ones are asked for).
    Latest,
    /// A version number.
    Number(i32),
}

/// One version of a subject, in Confluent's JSON shape.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SubjectVersion {
    /// The subject.
    pub subject: String,
    /// The schema's global id.
    pub id: i32,
    /// The version within the subject.
    pub version: i32,
    /// The schema text as first registered.
    pub schema: String,
}

/// The outcome of a registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// The schema is live under the subject with this global id (new or already there).
    Registered(i32),
    /// The subject's compatibility level rejects the schema, for these reasons.
    Incompatible(Vec<String>),
}

/// The registry's persistent state; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Arc<Pool>,
}

impl Store {
    /// Connects and creates the tables that do not exist yet.
    pub async fn open(config: &StoreConfig) -> Result<Self, StoreError> {
        let pool = Pool::new(&config.database_url, config.max_connections);
        {
            let mut conn = pool.get().await?;
            tables::create_if_absent(&mut conn).await?;
        }
        Ok(Store { pool: Arc::new(pool) })
    }

    /// Registers `schema` under `subject` (see the module invariants).
    pub async fn register(&self, subject: &str, schema: &ParsedSchema, text: &str) -> Result<Registration, StoreError> {
        let mut conn = self.pool.get().await?;
        let tx = conn.transaction().await?;
        tx.execute("select pg_advisory_xact_lock($1, hashtext($2))", &[&SUBJECT_LOCK_CLASS, &subject]).await?;
        let live = tx
            .query_opt(
                concat!(
                    "select sv.schema_id from schema_registry.subject_versions sv ",
                    "join schema_registry.schemas s on s.id = sv.schema_id ",
                    "where sv.subject = $1 and not sv.deleted and s.fingerprint = ",
                    fingerprint!(2),
                    " order by sv.version limit 1"
                ),
                &[&subject, &schema.identity],
            )
            .await?;
        if let Some(row) = live {
            return Ok(Registration::Registered(row.try_get(0)?));
        }

        let level = effective_level(&tx, subject).await?;
        if level != Level::None {
            let existing = live_schemas(&tx, subject, level.is_transitive()).await?;
            let problems = level.problems(&schema.schema, &existing);
            if !problems.is_empty() {
                return Ok(Registration::Incompatible(problems));
            }
        }

        let id = schema_id_for(&tx, schema, text).await?;
        let version: i32 = tx
            .query_one(
                "select coalesce(max(version), 0) + 1 from schema_registry.subject_versions where subject = $1",
                &[&subject],
            )
            .await?
            .try_get(0)?;
        tx.execute(
            "insert into schema_registry.subject_versions (subject, version, schema_id) values ($1, $2, $3)",
            &[&subject, &version, &id],
        )
        .await?;
        tx.commit().await?;
        Ok(Registration::Registered(id))
    }

    /// The text of the schema with global id `id`.
    pub async fn schema_by_id(&self, id: i32) -> Result<Option<String>, StoreError> {
        let conn = self.pool.get().await?;
        let row = conn.query_opt("select schema_text from schema_registry.schemas where id = $1", &[&id]).await?;
        row.map(|row| row.try_get(0)).transpose().map_err(StoreError::from)
    }

    /// The (subject, version) pairs that use schema `id`, live ones only unless `deleted`.
    pub async fn usages_of_id(&self, id: i32, deleted: bool) -> Result<Vec<(String, i32)>, StoreError> {
        let conn = self.pool.get().await?;
        let rows = conn
            .query(
                "select subject, version from schema_registry.subject_versions \
                 where schema_id = $1 and ($2 or not deleted) order by subject, version",
                &[&id, &deleted],
            )
            .await?;
        rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect()
    }

    /// All subjects with a live version (or any version if `deleted`), sorted.
    pub async fn subjects(&self, deleted: bool) -> Result<Vec<String>, StoreError> {
        let conn = self.pool.get().await?;
        let rows = conn
            .query(
                "select distinct subject from schema_registry.subject_versions where $1 or not deleted order by subject",
                &[&deleted],
            )
            .await?;
        rows.iter().map(|row| row.try_get(0).map_err(StoreError::from)).collect()
    }

    /// The subject's version numbers, ascending; empty if the subject does not exist.
    pub async fn versions(&self, subject: &str, deleted: bool) -> Result<Vec<i32>, StoreError> {
        let conn = self.pool.get().await?;
        let rows = conn
            .query(
                "select version from schema_registry.subject_versions \
                 where subject = $1 and ($2 or not deleted) order by version",
                &[&subject, &deleted],
            )
            .await?;
        rows.iter().map(|row| row.try_get(0).map_err(StoreError::from)).collect()
    }

    /// One version of a subject.
    pub async fn version(
        &self,
        subject: &str,
        spec: VersionSpec,
        deleted: bool,
    ) -> Result<Option<SubjectVersion>, StoreError> {
        let conn = self.pool.get().await?;
        let number = match spec {
            VersionSpec::Latest => None,
            VersionSpec::Number(n) => Some(n),
        };
        let row = conn
            .query_opt(
                "select sv.subject, sv.schema_id, sv.version, s.schema_text \
                 from schema_registry.subject_versions sv join schema_registry.schemas s on s.id = sv.schema_id \
                 where sv.subject = $1 and ($2 or not sv.deleted) and ($3::integer is null or sv.version = $3) \
                 order by sv.version desc limit 1",
                &[&subject, &deleted, &number],
            )
            .await?;
        row.as_ref().map(subject_version).transpose()
    }

    /// The version of `subject` whose schema has `schema`'s identity (the lowest, if several).
    pub async fn lookup(
        &self,
        subject: &str,
        schema: &ParsedSchema,
        deleted: bool,
    ) -> Result<Option<SubjectVersion>, StoreError> {
        let conn = self.pool.get().await?;
        let row = conn
            .query_opt(
                concat!(
                    "select sv.subject, sv.schema_id, sv.version, s.schema_text ",
                    "from schema_registry.subject_versions sv join schema_registry.schemas s on s.id = sv.schema_id ",
                    "where sv.subject = $1 and ($2 or not sv.deleted) and s.fingerprint = ",
                    fingerprint!(3),
                    " order by sv.version limit 1"
                ),
                &[&subject, &deleted, &schema.identity],
            )
            .await?;
        row.as_ref().map(subject_version).transpose()
    }

    /// The schemas a compatibility check of a new schema compares against: `spec`'s version (`latest`: the latest
    /// live one), or for `None` what a registration would (latest, or all for transitive levels). Returns the
    /// subject's level with them.
    pub async fn compatibility_targets(
        &self,
        subject: &str,
        spec: Option<VersionSpec>,
    ) -> Result<(Level, Vec<(i32, Schema)>), StoreError> {
        let conn = self.pool.get().await?;
        let level = effective_level(&*conn, subject).await?;
        let targets = match spec {
            Some(VersionSpec::Number(n)) => {
                let rows = conn
                    .query(
                        "select sv.version, s.schema_text from schema_registry.subject_versions sv \
                         join schema_registry.schemas s on s.id = sv.schema_id \
                         where sv.subject = $1 and sv.version = $2 and not sv.deleted",
                        &[&subject, &n],
                    )
                    .await?;
                parse_rows(&rows)?
            }
            // A named version, `latest` included, is checked alone, as Confluent does; only the version-less form
            // checks what a registration would.
            Some(VersionSpec::Latest) => live_schemas(&*conn, subject, false).await?,
            None => live_schemas(&*conn, subject, level.is_transitive()).await?,
        };
        Ok((level, targets))
    }
}

/// The global id for `schema`'s identity, inserting the schema if no subject has registered it yet.
async fn schema_id_for(
    tx: &tokio_postgres::Transaction<'_>,
    schema: &ParsedSchema,
    text: &str,
) -> Result<i32, StoreError> {
    let select = concat!("select id from schema_registry.schemas where fingerprint = ", fingerprint!(1));
    if let Some(row) = tx.query_opt(select, &[&schema.identity]).await? {
        return Ok(row.try_get(0)?);
    }
    // A concurrent registration of the same schema under another subject may insert first: the insert then
    // waits for it, does nothing, and the select after it (a fresh snapshot) sees the committed row.
    let insert = concat!(
        "insert into schema_registry.schemas (fingerprint, identity, schema_text) values (",
        fingerprint!(1),
        ", $1, $2) on conflict (fingerprint) do nothing returning id"
    );
    if let Some(row) = tx.query_opt(insert, &[&schema.identity, &text]).await? {
        return Ok(row.try_get(0)?);
    }
    let row = tx.query_one(select, &[&schema.identity]).await?;
    Ok(row.try_get(0)?)
}

/// The subject's live schemas, newest first: all of them, or only the latest.
async fn live_schemas<C: GenericClient>(
    client: &C,
    subject: &str,
    all: bool,
) -> Result<Vec<(i32, Schema)>, StoreError> {
    let limit: Option<i64> = if all { None } else { Some(1) };
    let rows = client
        .query(
            "select sv.version, s.schema_text from schema_registry.subject_versions sv \
             join schema_registry.schemas s on s.id = sv.schema_id \
             where sv.subject = $1 and not sv.deleted order by sv.version desc limit $2",
            &[&subject, &limit],
        )
        .await?;
    parse_rows(&rows)
}

fn parse_rows(rows: &[Row]) -> Result<Vec<(i32, Schema)>, StoreError> {
    rows.iter()
        .map(|row| {
            let version: i32 = row.try_get(0)?;
            let text: String = row.try_get(1)?;
            let schema = Schema::parse_str(&text)
                .map_err(|err| StoreError::Corrupt(format!("stored schema no longer parses: {err}")))?;
            Ok((version, schema))
        })
        .collect()
}

fn subject_version(row: &Row) -> Result<SubjectVersion, StoreError> {
    Ok(SubjectVersion {
        subject: row.try_get(0)?,
        id: row.try_get(1)?,
        version: row.try_get(2)?,
        schema: row.try_get(3)?,
    })
}
