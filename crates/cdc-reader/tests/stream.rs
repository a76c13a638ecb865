//! End to end against the real PostgreSQL and the real broker: snapshot, every operation type, and the booking
//! system's real write patterns (docs/booking-schema.md §3).

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::Result;
use apache_avro::types::Value;
use cdc_reader::encoder::InProcessRegistry;
use common::{config, insert_event, read, spawn, wait_for_snapshot};
use testkit::TestDatabase;

#[tokio::test]
async fn snapshot_then_every_operation_type_reaches_the_table_topics() -> Result<()> {
    let db = TestDatabase::create().await?;
    let config = config(&db);
    let topics = config.connections.topics.clone();
    let registry = Arc::new(InProcessRegistry::default());
    let reader = spawn(config.clone(), registry.clone());
    wait_for_snapshot(&db, &config).await?;
    let client = db.connect().await?;
    let id = insert_event(&client, "Konsert").await?;
    client.execute("update bb_event set name = 'Konsert 2' where id = $1", &[&id]).await?;
    client.execute("delete from bb_event where id = $1", &[&id]).await?;
    client.batch_execute("truncate bb_event_resource").await?;

    let events = read(&registry, &topics.cdc("public", "bb_event"), 9).await?;
    let ops: Vec<String> = events.iter().map(|r| r.op()).collect();
    assert_eq!(ops, ["r", "r", "r", "r", "r", "c", "u", "d", "tombstone"]);
    let created = &events[5];
    assert_eq!(created.key_int("id"), Some(id));
    assert_eq!(created.after("name"), Some(Value::String("Konsert".into())));
    assert_eq!(created.source("snapshot"), Some(Value::String("false".into())));
    assert!(created.source("txId").is_some());
    // Sensitive columns are not in the record at all.
    let Some(Value::Union(_, after)) = created
        .envelope
        .as_ref()
        .and_then(|e| common::field(e, "after").cloned().map(|v| Value::Union(1, Box::new(v))))
    else {
        panic!("no after image");
    };
    let Value::Record(fields) = *after else { panic!("after is not a record") };
    assert!(fields.iter().all(|(name, _)| name != "secret" && name != "customer_ssn"));
    // Commit order: each later record has a higher commit LSN.
    let positions: Vec<(i64, i64)> = events[5..8].iter().filter_map(|r| r.position()).collect();
    assert!(positions.windows(2).all(|w| w[0].0 < w[1].0), "{positions:?}");
    assert_eq!(events[8].key_int("id"), Some(id), "tombstone keyed by the deleted row");
    assert_eq!(events[7].missing().len(), fields.len() - 1, "a delete only knows the key");

    let links = read(&registry, &topics.cdc("public", "bb_event_resource"), 8).await?;
    assert_eq!(links.iter().filter(|r| r.op() == "r").count(), 7);
    assert_eq!(links[7].op(), "t");
    // The last row of the whole snapshot (last captured table: bb_season) says so.
    let seasons: i64 = client.query_one("select count(*) from bb_season", &[]).await?.get(0);
    let seasons = read(&registry, &topics.cdc("public", "bb_season"), seasons as usize).await?;
    let marks: Vec<Option<Value>> = seasons.iter().map(|r| r.source("snapshot")).collect();
    assert_eq!(marks.last(), Some(&Some(Value::String("last".into()))));
    assert!(events[..5].iter().all(|r| r.source("snapshot") == Some(Value::String("true".into()))));
    reader.stop().await
}

#[tokio::test]
async fn a_resource_link_rewrite_arrives_as_one_transaction_in_order() -> Result<()> {
    let db = TestDatabase::create().await?;
    let config = config(&db);
    let topics = config.connections.topics.clone();
    let registry = Arc::new(InProcessRegistry::default());
    let reader = spawn(config.clone(), registry.clone());
    wait_for_snapshot(&db, &config).await?;
    let client = db.connect().await?;
    // What booking_socommon::update does on every save: UPDATE all columns, then DELETE + re-INSERT the links.
    client
        .batch_execute(
            "begin; update bb_event set name = 'Renamed' where id = 302; \
             delete from bb_event_resource where event_id = 302; \
             insert into bb_event_resource (event_id, resource_id) select 302, id from bb_resource where id in \
               (select resource_id from bb_event_resource where event_id = 301) or id = 1 on conflict do nothing; \
             commit;",
        )
        .await?;
    let inserted: i64 =
        client.query_one("select count(*) from bb_event_resource where event_id = 302", &[]).await?.get(0);
    let events = read(&registry, &topics.cdc("public", "bb_event"), 6).await?;
    let links = read(&registry, &topics.cdc("public", "bb_event_resource"), 7 + 2 * 2 + inserted as usize).await?;
    let update = &events[5];
    assert_eq!(update.op(), "u");
    let mut positions = vec![update.position().expect("position")];
    positions.extend(links[7..].iter().filter(|r| r.op() != "tombstone").filter_map(|r| r.position()));
    let commit = positions[0].0;
    assert!(positions.iter().all(|p| p.0 == commit), "one commit LSN for the whole save: {positions:?}");
    let mut tx_positions: Vec<i64> = positions.iter().map(|p| p.1).collect();
    tx_positions.sort_unstable();
    assert_eq!(tx_positions, (0..positions.len() as i64).collect::<Vec<_>>());
    let link_ops: Vec<String> = links[7..].iter().map(|r| r.op()).collect();
    assert_eq!(&link_ops[..4], ["d", "tombstone", "d", "tombstone"]);
    assert!(link_ops[4..].iter().all(|op| op == "c"));
    reader.stop().await
}

#[tokio::test]
async fn insert_then_id_string_update_and_a_full_table_update_are_all_delivered() -> Result<()> {
    let db = TestDatabase::create().await?;
    let config = config(&db);
    let topics = config.connections.topics.clone();
    let registry = Arc::new(InProcessRegistry::default());
    let reader = spawn(config.clone(), registry.clone());
    wait_for_snapshot(&db, &config).await?;
    let client = db.connect().await?;
    let id: i32 = client
        .query_one(
            "insert into bb_allocation (organization_id, from_, to_, season_id) \
             select organization_id, '2026-10-25 02:30', '2026-10-25 04:00', season_id from bb_allocation \
             where id = 101 returning id",
            &[],
        )
        .await?
        .get(0);
    client.execute("update bb_allocation set id_string = cast(id as varchar) where id = $1", &[&id]).await?;
    // season "generate allocations": UPDATE with no WHERE.
    client.batch_execute("update bb_allocation set id_string = cast(id as varchar)").await?;
    let rows: i64 = client.query_one("select count(*) from bb_allocation", &[]).await?.get(0);
    let records = read(&registry, &topics.cdc("public", "bb_allocation"), 5 + 2 + rows as usize).await?;
    assert_eq!(records[5].op(), "c");
    assert_eq!(records[5].after("id_string"), Some(Value::String("0".into())));
    assert_eq!(records[6].op(), "u");
    assert_eq!(records[6].after("id_string"), Some(Value::String(id.to_string())));
    let full: Vec<_> = records[7..].iter().collect();
    assert!(full.iter().all(|r| r.op() == "u"));
    let keys: HashSet<i32> = full.iter().filter_map(|r| r.key_int("id")).collect();
    assert_eq!(keys.len() as i64, rows, "one update per allocation row");
    let commits: HashSet<i64> = full.iter().filter_map(|r| r.position()).map(|p| p.0).collect();
    assert_eq!(commits.len(), 1, "the full-table update is one transaction");
    reader.stop().await
}

#[tokio::test]
async fn a_hard_delete_removes_links_first_then_the_event_with_tombstones() -> Result<()> {
    let db = TestDatabase::create().await?;
    let config = config(&db);
    let topics = config.connections.topics.clone();
    let registry = Arc::new(InProcessRegistry::default());
    let reader = spawn(config.clone(), registry.clone());
    wait_for_snapshot(&db, &config).await?;
    let client = db.connect().await?;
    client
        .batch_execute(
            "begin; delete from bb_event_date where event_id = 302; \
             delete from bb_event_resource where event_id = 302; delete from bb_event where id = 302; commit;",
        )
        .await?;
    let events = read(&registry, &topics.cdc("public", "bb_event"), 7).await?;
    assert_eq!(events[5].op(), "d");
    assert_eq!(events[5].key_int("id"), Some(302));
    assert_eq!(events[6].op(), "tombstone");
    let links = read(&registry, &topics.cdc("public", "bb_event_resource"), 11).await?;
    let link_commit = links[7].position().expect("position");
    let event_commit = events[5].position().expect("position");
    assert_eq!(link_commit.0, event_commit.0);
    assert!(link_commit.1 < event_commit.1, "links are deleted before the event");
    reader.stop().await
}

#[tokio::test]
async fn unchanged_toast_values_are_marked_missing_never_null() -> Result<()> {
    let db = TestDatabase::create().await?;
    let config = config(&db);
    let topics = config.connections.topics.clone();
    let registry = Arc::new(InProcessRegistry::default());
    let reader = spawn(config.clone(), registry.clone());
    wait_for_snapshot(&db, &config).await?;
    let client = db.connect().await?;
    // Random hex does not compress, so 40 kB is stored out of line (TOAST).
    client
        .batch_execute(
            "update bb_event set description = (select string_agg(md5(random()::text), '') \
             from generate_series(1, 1250)) where id = 303",
        )
        .await?;
    client.batch_execute("update bb_event set active = 0 where id = 303").await?;
    let events = read(&registry, &topics.cdc("public", "bb_event"), 7).await?;
    let Some(Value::String(description)) = events[5].after("description") else { panic!("no description") };
    assert_eq!(description.len(), 40_000);
    assert!(events[5].missing().is_empty());
    let deactivated = &events[6];
    assert_eq!(deactivated.after("active"), Some(Value::Int(0)));
    assert_eq!(deactivated.after("description"), None);
    assert_eq!(deactivated.missing(), ["description"], "unchanged TOAST is listed as missing, not NULL");
    reader.stop().await
}

#[tokio::test]
async fn a_relation_change_is_picked_up_without_a_restart() -> Result<()> {
    let db = TestDatabase::create().await?;
    let config = config(&db);
    let topics = config.connections.topics.clone();
    let registry = Arc::new(InProcessRegistry::default());
    let reader = spawn(config.clone(), registry.clone());
    wait_for_snapshot(&db, &config).await?;
    let client = db.connect().await?;
    client.batch_execute("update bb_resource set sort = 1 where id = 1").await?;
    // A column is added to the table and to the publication's column list while the reader streams: pgoutput
    // sends a new Relation message before the next change of the table.
    client.batch_execute("alter table bb_resource add column roomsync_note text").await?;
    client
        .batch_execute(&format!(
            "alter publication {p} drop table bb_resource; \
             alter publication {p} add table bb_resource (id, name, active, sort, roomsync_note)",
            p = config.publication
        ))
        .await?;
    client.batch_execute("update bb_resource set roomsync_note = 'hello' where id = 1").await?;
    let rows: i64 = client.query_one("select count(*) from bb_resource", &[]).await?.get(0);
    let records = read(&registry, &topics.cdc("public", "bb_resource"), rows as usize + 2).await?;
    let before = &records[rows as usize];
    assert_eq!(before.after("sort"), Some(Value::Int(1)));
    assert_eq!(before.after("roomsync_note"), None);
    let after = &records[rows as usize + 1];
    assert_eq!(after.after("roomsync_note"), Some(Value::String("hello".into())));
    assert_eq!(after.after("description_json"), None, "the narrowed column list applies at once");
    reader.stop().await
}

#[tokio::test]
async fn a_primary_key_change_deletes_the_old_key_and_creates_the_new_one() -> Result<()> {
    let db = TestDatabase::create().await?;
    let config = config(&db);
    let topics = config.connections.topics.clone();
    let registry = Arc::new(InProcessRegistry::default());
    let reader = spawn(config.clone(), registry.clone());
    wait_for_snapshot(&db, &config).await?;
    let client = db.connect().await?;
    let old: i32 =
        client.query_one("select resource_id from bb_event_resource where event_id = 301", &[]).await?.get(0);
    let new: i32 = client
        .query_one("select min(id) from bb_resource where id not in (select resource_id from bb_event_resource where event_id = 301)", &[])
        .await?
        .get(0);
    client
        .execute(
            "update bb_event_resource set resource_id = $1 where event_id = 301 and resource_id = $2",
            &[&new, &old],
        )
        .await?;
    let links = read(&registry, &topics.cdc("public", "bb_event_resource"), 10).await?;
    let ops: Vec<String> = links[7..].iter().map(|r| r.op()).collect();
    assert_eq!(ops, ["d", "tombstone", "c"]);
    assert_eq!(links[7].key_int("resource_id"), Some(old));
    assert_eq!(links[8].key_int("resource_id"), Some(old));
    assert_eq!(links[9].key_int("resource_id"), Some(new));
    // Two changes of one transaction: each has its own place in it, the delete first.
    let (delete, create) = (links[7].position(), links[9].position());
    assert!(
        matches!((delete, create), (Some((a, i)), Some((b, j))) if a == b && j == i + 1),
        "delete at {delete:?}, create at {create:?}"
    );
    reader.stop().await
}

#[tokio::test]
async fn with_replica_identity_full_unchanged_toast_is_filled_from_the_old_row() -> Result<()> {
    let db = TestDatabase::create().await?;
    let config = config(&db);
    let topics = config.connections.topics.clone();
    let registry = Arc::new(InProcessRegistry::default());
    let client = db.connect().await?;
    // A table without sensitive columns may have REPLICA IDENTITY FULL (roomsync's own tables, for instance).
    client.batch_execute("alter table bb_resource replica identity full").await?;
    let reader = spawn(config.clone(), registry.clone());
    wait_for_snapshot(&db, &config).await?;
    client
        .batch_execute(
            "update bb_resource set opening_hours = (select string_agg(md5(random()::text), '') \
             from generate_series(1, 1250)) where id = 1",
        )
        .await?;
    client.batch_execute("update bb_resource set active = 0 where id = 1").await?;
    let rows: i64 = client.query_one("select count(*) from bb_resource", &[]).await?.get(0);
    let events = read(&registry, &topics.cdc("public", "bb_resource"), rows as usize + 2).await?;
    let (written, deactivated) = (&events[rows as usize], &events[rows as usize + 1]);
    assert!(deactivated.missing().is_empty(), "{:?}", deactivated.missing());
    assert!(written.after("opening_hours").is_some());
    assert_eq!(deactivated.after("opening_hours"), written.after("opening_hours"));
    let before = deactivated.envelope.as_ref().and_then(|e| common::field(e, "before")).cloned();
    assert!(before.is_some(), "the old row travels as before");
    reader.stop().await
}
