//! `roomsync_resolver_checkpoints`: the one reader and writer of the resolver's checkpoints
//! ([`crate::checkpoint`]), one row per consumer group.
//!
//! Invariants: a row is written whole in one statement (state and positions never disagree); an instance
//! writes only when the row is older than the interval, so several instances of a group do not each write
//! theirs; every call opens its own short connection (a checkpoint is written every few minutes, from a task
//! of its own, while the driver goes on).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_postgres::{Client, NoTls};
use tracing::warn;

use crate::checkpoint::{Checkpoint, Positions};
use crate::error::ResolverError;

fn pg(context: &str) -> impl FnOnce(tokio_postgres::Error) -> ResolverError + '_ {
    move |source| ResolverError::Postgres { context: context.to_owned(), source }
}

async fn connect(database: &tokio_postgres::Config) -> Result<Client, ResolverError> {
    let (client, connection) = database.connect(NoTls).await.map_err(pg("connecting for the checkpoint"))?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            warn!(error = %err, "the resolver's checkpoint connection ended");
        }
    });
    Ok(client)
}

/// One position as the `positions` column holds it.
#[derive(Debug, Serialize, Deserialize)]
struct Position {
    topic: String,
    partition: i32,
    next: i64,
}

fn to_json(positions: &Positions) -> serde_json::Value {
    let list: Vec<Position> = positions
        .iter()
        .map(|((topic, partition), next)| Position { topic: topic.clone(), partition: *partition, next: *next })
        .collect();
    serde_json::to_value(list).unwrap_or_default()
}

fn from_json(value: serde_json::Value) -> Result<Positions, String> {
    let list: Vec<Position> = serde_json::from_value(value).map_err(|e| format!("positions: {e}"))?;
    Ok(list.into_iter().map(|p| ((p.topic, p.partition), p.next)).collect())
}

/// A stored checkpoint and its age.
#[derive(Debug)]
pub struct Stored {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// How long ago it was written.
    pub age: Duration,
    /// The instance that wrote it.
    pub written_by: String,
}

/// The group's checkpoint, if there is one; a row that cannot be read is reported as `Err(reason)` inside
/// `Ok` (the resolver then reads everything), a database failure as the outer error.
pub async fn load(
    database: &tokio_postgres::Config,
    group: &str,
) -> Result<Option<Result<Stored, String>>, ResolverError> {
    let client = connect(database).await?;
    let row = client
        .query_opt(
            "select fingerprint, positions, state, input_records, written_by,
                    extract(epoch from now() - written_at)::float8
               from roomsync_resolver_checkpoints where consumer_group = $1",
            &[&group],
        )
        .await;
    let row = match row {
        Err(err) if err.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => {
            return Ok(Some(Err("roomsync_resolver_checkpoints does not exist: apply the migrations".into())));
        }
        row => row.map_err(pg("reading the checkpoint"))?,
    };
    let Some(row) = row else { return Ok(None) };
    let positions = match from_json(row.get(1)) {
        Ok(positions) => positions,
        Err(reason) => return Ok(Some(Err(reason))),
    };
    let age: f64 = row.get(5);
    Ok(Some(Ok(Stored {
        checkpoint: Checkpoint { fingerprint: row.get(0), positions, state: row.get(2), input_records: row.get(3) },
        age: Duration::from_secs_f64(age.max(0.0)),
        written_by: row.get(4),
    })))
}

/// Whether the group's checkpoint is missing or older than `every` (then this instance should write one).
pub async fn due(database: &tokio_postgres::Config, group: &str, every: Duration) -> Result<bool, ResolverError> {
    let client = connect(database).await?;
    let seconds = every.as_secs_f64();
    let fresh = client
        .query_opt(
            "select 1 from roomsync_resolver_checkpoints
              where consumer_group = $1 and written_at > now() - make_interval(secs => $2)",
            &[&group, &seconds],
        )
        .await
        .map_err(pg("reading the checkpoint's age"))?;
    Ok(fresh.is_none())
}

/// Writes the group's checkpoint, replacing the one before.
pub async fn write(
    database: &tokio_postgres::Config,
    group: &str,
    checkpoint: &Checkpoint,
    instance: &str,
) -> Result<(), ResolverError> {
    let client = connect(database).await?;
    client
        .execute(
            "insert into roomsync_resolver_checkpoints
                 (consumer_group, fingerprint, positions, state, input_records, written_by, written_at)
             values ($1, $2, $3, $4, $5, $6, now())
             on conflict (consumer_group) do update set
                 fingerprint = excluded.fingerprint, positions = excluded.positions, state = excluded.state,
                 input_records = excluded.input_records, written_by = excluded.written_by, written_at = now()",
            &[
                &group,
                &checkpoint.fingerprint,
                &to_json(&checkpoint.positions),
                &checkpoint.state,
                &checkpoint.input_records,
                &instance,
            ],
        )
        .await
        .map_err(pg("writing the checkpoint"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_survive_their_json_form() {
        let positions = Positions::from([(("a.b".to_owned(), 0), 10), (("a.b".to_owned(), 3), 0)]);
        assert_eq!(from_json(to_json(&positions)), Ok(positions));
        assert!(from_json(serde_json::json!({"topic": 1})).is_err());
    }
}
