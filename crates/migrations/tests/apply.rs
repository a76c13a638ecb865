//! Migrations against a real PostgreSQL holding the booking system's schema and sample data.

use testkit::TestDatabase;

#[tokio::test]
async fn migrations_create_roomsync_tables_and_run_once() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let mut client = db.connect().await?;
    let first = migrations::apply(&mut client).await?;
    assert_eq!(first, (1..=migrations::MIGRATIONS.len() as i32).collect::<Vec<_>>());
    let second = migrations::apply(&mut client).await?;
    assert!(second.is_empty(), "a second run applies nothing, got {second:?}");
    for table in [
        "outlook_calendar_mapping",
        "bb_resource_outlook_item",
        "roomsync_delta_state",
        "roomsync_subscriptions",
        "roomsync_consumer_offsets",
        "roomsync_conflicts",
    ] {
        let exists: bool = client.query_one("select to_regclass($1) is not null", &[&table]).await?.get(0);
        assert!(exists, "{table} exists");
    }
    assert!(migrations::preflight_warnings(&client).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn booking_system_tables_are_left_untouched() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let mut client = db.connect().await?;
    let shape = "select table_name, column_name, data_type, is_nullable, column_default
                 from information_schema.columns where table_name like 'bb\\_%' and table_name <> 'bb_resource_outlook_item'
                 order by 1, 2";
    let before: Vec<Vec<Option<String>>> =
        client.query(shape, &[]).await?.iter().map(|r| (0..5).map(|i| r.get(i)).collect()).collect();
    migrations::apply(&mut client).await?;
    let after: Vec<Vec<Option<String>>> =
        client.query(shape, &[]).await?.iter().map(|r| (0..5).map(|i| r.get(i)).collect()).collect();
    assert!(!before.is_empty());
    assert_eq!(before, after);
    Ok(())
}

#[tokio::test]
async fn an_existing_resource_mapping_table_without_key_is_kept_and_reported() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let mut client = db.connect().await?;
    client
        .batch_execute(
            "create table bb_resource_outlook_item (resource_id int, outlook_item_id varchar(255),
                 outlook_item_name varchar(255), active smallint);
             insert into bb_resource_outlook_item values (1, 'room-a@example.org', 'Room A', 1);",
        )
        .await?;
    migrations::apply(&mut client).await?;
    let rows: i64 = client.query_one("select count(*) from bb_resource_outlook_item", &[]).await?.get(0);
    assert_eq!(rows, 1, "the existing table and its rows stay");
    let warnings = migrations::preflight_warnings(&client).await?;
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("primary key"), "{warnings:?}");
    Ok(())
}

#[tokio::test]
async fn an_edited_migration_is_refused() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let mut client = db.connect().await?;
    migrations::apply(&mut client).await?;
    client.execute("update roomsync_schema_migrations set checksum = 'x' where version = 1", &[]).await?;
    let err = migrations::apply(&mut client).await.expect_err("changed checksum must fail");
    assert!(err.to_string().contains("must never be edited"), "{err}");
    Ok(())
}

#[test]
fn every_sql_file_is_listed_in_order() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("migrations folder")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().trim_end_matches(".sql").to_owned())
        .collect();
    files.sort();
    let listed: Vec<String> = migrations::MIGRATIONS.iter().map(|m| m.name.to_owned()).collect();
    assert_eq!(files, listed);
    let versions: Vec<i32> = migrations::MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(versions, (1..=listed.len() as i32).collect::<Vec<_>>());
}
