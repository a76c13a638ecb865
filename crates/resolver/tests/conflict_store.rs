//! The resolver's PostgreSQL writes survive a dropped connection: a terminated session costs a reconnect, not a
//! rebuild of the resolver (found by the chaos test, where every such drop restarted the resolver).

use anyhow::Result;
use resolver::core::Conflict;
use resolver::postgres::conflicts::ConflictStore;
use resolver::stage2::outlook::ConflictHit;
use testkit::TestDatabase;
use vocabulary::ReservationKind;

#[tokio::test]
async fn a_terminated_session_is_replaced_and_the_write_still_lands() -> Result<()> {
    let (_db, admin, store) = fresh().await?;
    store.record(&conflict(343, 10 * HOUR, 11 * HOUR)).await?;

    // Every other session of the database goes: the store's among them.
    let terminated: i64 = admin
        .query_one(
            "select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity
              where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend') t",
            &[],
        )
        .await?
        .get(0);
    assert!(terminated >= 1, "the store's session was terminated");
    store.record(&conflict(344, 12 * HOUR, 13 * HOUR)).await?;

    assert_eq!(
        read(&admin).await?,
        vec![(36_000, 39_600, "open".to_owned()), (43_200, 46_800, "open".to_owned())],
        "both writes landed, the second on a new connection"
    );
    Ok(())
}

#[tokio::test]
async fn an_open_conflict_takes_the_current_span_and_a_resolved_one_is_left_alone() -> Result<()> {
    let (_db, admin, store) = fresh().await?;
    store.record(&conflict(343, 10 * HOUR, 12 * HOUR)).await?;
    store.record(&conflict(343, 10 * HOUR, 11 * HOUR)).await?;
    assert_eq!(read(&admin).await?, vec![(36_000, 39_600, "open".to_owned())], "one row, the overlap as it is now");
    admin.execute("update roomsync_conflicts set status = 'resolved'", &[]).await?;
    store.record(&conflict(343, 10 * HOUR, 12 * HOUR)).await?;
    assert_eq!(
        read(&admin).await?,
        vec![(36_000, 39_600, "resolved".to_owned())],
        "a resolved conflict stays as decided"
    );
    Ok(())
}

const HOUR: i64 = 3_600_000_000;

/// A migrated fresh database, an admin session on it and a conflict store (keep the database alive).
async fn fresh() -> Result<(TestDatabase, tokio_postgres::Client, ConflictStore)> {
    let db = TestDatabase::create().await?;
    let mut admin = db.connect().await?;
    migrations::apply(&mut admin).await?;
    let store = ConflictStore::connect(&db.settings()).await?;
    Ok((db, admin, store))
}

/// An open conflict of one Outlook booking in hall A with event `reservation_id` over [start, end) (µs).
fn conflict(reservation_id: i32, start: i64, end: i64) -> Conflict {
    Conflict {
        mailbox: "hall-a@x".into(),
        resource_id: 1,
        event_id: "AAMk-1".into(),
        change_key: Some("ck".into()),
        hit: ConflictHit { kind: ReservationKind::Event, reservation_id, start, end },
        policy: resolver::ConflictPolicy::Record,
    }
}

/// (start, end) in Unix seconds and status of every conflict row.
async fn read(admin: &tokio_postgres::Client) -> Result<Vec<(i64, i64, String)>> {
    let rows = admin
        .query(
            "select extract(epoch from starts_at)::bigint, extract(epoch from ends_at)::bigint, status::text \
             from roomsync_conflicts order by starts_at",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}
