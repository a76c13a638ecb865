//! The minimal role the README documents is enough to run the reader: no superuser.

mod common;

use std::sync::Arc;

use anyhow::Result;
use cdc_reader::config::default_tables;
use cdc_reader::encoder::InProcessRegistry;
use common::{insert_event, read, spawn, wait_for_snapshot};
use testkit::{unique_name, Stack, TestDatabase};

#[tokio::test]
async fn the_documented_minimal_role_runs_the_reader() -> Result<()> {
    let db = TestDatabase::create().await?;
    let admin = db.connect().await?;
    let reader_role = unique_name("cdc_role");
    let owner_role = unique_name("bb_owner");
    // The booking tables belong to an owner role (as in a real installation, not to a superuser).
    let mut sql = format!("create role {owner_role} nologin; create role {reader_role} login replication;");
    let existing: Vec<String> = admin
        .query("select tablename::text from pg_tables where schemaname = 'public'", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let tables: Vec<String> = default_tables().into_iter().filter(|t| existing.contains(t)).collect();
    for table in &tables {
        sql.push_str(&format!("alter table {table} owner to {owner_role};"));
    }
    // README, "What PostgreSQL needs".
    sql.push_str(&format!(
        "grant connect on database {db} to {reader_role}; grant usage on schema public to {reader_role}; \
         grant select on {list} to {reader_role}; grant create on database {db} to {reader_role}; \
         grant {owner_role} to {reader_role};",
        db = db.name(),
        list = tables.join(", "),
    ));
    admin.batch_execute(&sql).await?;

    let mut config = common::config(&db);
    let url = db.url().replacen("postgres@", &format!("{reader_role}@"), 1);
    config.connections.database = testkit::database::settings(&url);
    let topic = config.connections.topics.clone().cdc("public", "bb_event");
    let registry = Arc::new(InProcessRegistry::default());
    let reader = spawn(config.clone(), registry.clone());
    wait_for_snapshot(&db, &config).await?;
    let id = insert_event(&admin, "as the minimal role").await?;
    let records = read(&registry, &topic, 6).await?;
    assert_eq!(records[5].key_int("id"), Some(id));
    reader.stop().await?;

    drop(admin);
    drop(db);
    let cluster = tokio_postgres::connect(&Stack::from_env().database_url, tokio_postgres::NoTls).await?;
    tokio::spawn(cluster.1);
    cluster.0.batch_execute(&format!("drop role {reader_role}; drop role {owner_role};")).await?;
    Ok(())
}
