//! Fencing: at most one unit of work per partition at a time, across every member of the sink's group.
//!
//! Kafka's group protocol does not stop a member that lost its partitions from finishing what it holds: a member
//! that stalls inside a unit (a paused VM, a process stuck in swap, a throttling storm longer than
//! `max.poll.interval.ms`) is evicted, its partitions go to another member at PostgreSQL's offsets, and when it
//! runs on it writes its older records to Graph and its results over the newer ones (the test
//! `a_member_frozen_inside_a_unit_never_overwrites_what_its_successor_applied` showed both: a PATCH of the older
//! content after the newer one, and a mapping row saying the older hash and change key while Outlook holds the
//! newer event).
//!
//! ```text
//! unit: lock every partition it holds records of (sorted; PostgreSQL session advisory locks keyed by
//!       group/topic/partition) -> drop records below the stored offsets -> lookups, txn A, writes
//!       -> txn B: results + offsets, only if the stored offsets are still those the unit started from
//!       -> unlock
//! ```
//! Invariants:
//! - two units of one partition never overlap, whichever members run them, so their Graph writes and their
//!   results come in offset order; the later unit drops what the earlier one applied (`Sink::position`);
//! - the offsets move only from the value a unit started from (a compare-and-set in txn B); a unit that finds
//!   them moved changes nothing and its member starts again ([`SinkError::Fenced`](crate::SinkError::Fenced));
//! - a lock lives as long as the holder's PostgreSQL session: a crashed member's locks go with its connection
//!   (TCP keepalives, set per session below, end the session of a host that vanished without closing it), and a
//!   frozen member keeps them, so its successor waits rather than overtakes.
//!
//! What this cannot fence: a member cut off from PostgreSQL (its session ended by keepalive) that still has a
//! write round in flight to Graph. Its next statement fails, so it writes at most that round; the successor
//! meanwhile starts only once PostgreSQL has ended the session (at most [`KEEPALIVE_SECONDS`]).

use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use crate::error::SinkError;
use crate::offsets::Partition;

/// How long PostgreSQL takes at most to notice that a member's host vanished without closing its connection.
pub use supervision::role::KEEPALIVE_SECONDS;

/// How long one attempt to take the locks waits before the unit looks at shutdown and its consumer again.
pub const LOCK_WAIT: Duration = Duration::from_secs(1);

/// Asks PostgreSQL to end this session (and drop its locks) when the peer stops answering keepalives.
pub async fn keep_alive(db: &Client) -> Result<(), SinkError> {
    db.batch_execute(&supervision::role::keepalive_statements())
        .await
        .map_err(SinkError::pg("setting the session's keepalives"))
}

/// The lock names of `partitions` for `group`, sorted, so every member takes them in the same order.
fn names(group: &str, partitions: &[Partition]) -> Vec<String> {
    let mut names: Vec<String> = partitions
        .iter()
        .map(|(topic, partition)| format!("roomsync-graph-sink/{group}/{topic}/{partition}"))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Tries for up to [`LOCK_WAIT`] to take the locks of `partitions`; `false` (holding none) if another member's
/// unit still holds one of them.
pub async fn try_lock(db: &mut Client, group: &str, partitions: &[Partition]) -> Result<bool, SinkError> {
    let names = names(group, partitions);
    let attempt = async {
        let tx = db.transaction().await?;
        tx.batch_execute(&format!("set local lock_timeout = {}", LOCK_WAIT.as_millis())).await?;
        for name in &names {
            tx.execute("select pg_advisory_lock(hashtextextended($1, 0))", &[name]).await?;
        }
        tx.commit().await
    };
    match attempt.await {
        Ok(()) => Ok(true),
        Err(err) if err.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) => {
            // Session locks survive the rollback: give back those taken before the timeout.
            unlock(db).await?;
            Ok(false)
        }
        Err(err) => Err(SinkError::pg("locking the unit's partitions")(err)),
    }
}

/// Gives back every partition lock of this session.
pub async fn unlock(db: &Client) -> Result<(), SinkError> {
    db.execute("select pg_advisory_unlock_all()", &[])
        .await
        .map_err(SinkError::pg("unlocking the unit's partitions"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_names_are_per_group_and_partition_and_taken_in_one_order() {
        let partitions =
            vec![("t.b".to_owned(), 1), ("t.a".to_owned(), 2), ("t.b".to_owned(), 1), ("t.a".to_owned(), 0)];
        assert_eq!(
            names("g", &partitions),
            ["roomsync-graph-sink/g/t.a/0", "roomsync-graph-sink/g/t.a/2", "roomsync-graph-sink/g/t.b/1"]
        );
        assert_ne!(names("g", &partitions[..1]), names("h", &partitions[..1]));
    }
}
