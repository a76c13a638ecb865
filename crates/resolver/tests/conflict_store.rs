//! The resolver's PostgreSQL writes survive a dropped connection: a terminated session costs a reconnect, not a
//! rebuild of the resolver (found by the chaos test, where every such drop restarted the resolver).

use anyhow::Result;
use resolver::conflicts::ConflictStore;
use testkit::TestDatabase;

#[tokio::test]
async fn a_terminated_session_is_replaced_and_the_write_still_lands() -> Result<()> {
    let db = TestDatabase::create().await?;
    let mut admin = db.connect().await?;
    migrations::apply(&mut admin).await?;
    admin
        .batch_execute(
            "insert into outlook_calendar_mapping (reservation_type, reservation_id, resource_id, outlook_item_id,
                 outlook_event_id, sync_status, priority_level, item_key, transaction_id, content_hash)
             values ('booking', 201, 2, 'hall-b@x', 'e1', 'synced', 2, 'booking:201', gen_random_uuid(), 'h1'),
                    ('booking', 202, 2, 'hall-b@x', 'e2', 'synced', 2, 'booking:202', gen_random_uuid(), 'h2')",
        )
        .await?;
    let store = ConflictStore::connect(db.url()).await?;
    store.forget_written_content("hall-b@x", "booking:201").await?;

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
    store.forget_written_content("hall-b@x", "booking:202").await?;

    let hashes: Vec<Option<String>> = admin
        .query("select content_hash from outlook_calendar_mapping order by item_key", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(hashes, vec![None, None], "both writes landed, the second on a new connection");
    Ok(())
}
