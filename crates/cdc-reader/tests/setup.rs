//! Setup against the real PostgreSQL: publication column lists, drift correction, tables without a replica
//! identity, and the golden Avro contract files in `schemas/cdc/`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use cdc_reader::envelope::TableSchemas;
use cdc_reader::{setup, Config};
use testkit::{unique_name, TestDatabase};

fn config(db: &TestDatabase) -> Config {
    let mut config = Config::new(db.connections(&unique_name("cdc")));
    config.slot = unique_name("slot");
    config.publication = unique_name("pub");
    config
}

async fn published_columns(db: &TestDatabase, publication: &str, table: &str) -> Result<Vec<String>> {
    let client = db.connect().await?;
    let row = client
        .query_one(
            "select attnames::text[] from pg_publication_tables where pubname = $1 and tablename = $2",
            &[&publication, &table],
        )
        .await
        .context("table not in publication")?;
    Ok(row.get(0))
}

#[tokio::test]
async fn publication_leaves_out_sensitive_columns() -> Result<()> {
    let db = TestDatabase::create().await?;
    let config = config(&db);
    let client = setup::connect(&config).await?;
    let shapes = setup::captured_tables(&client, &config).await?;
    setup::ensure_publication(&client, &config, &shapes).await?;
    let event = published_columns(&db, &config.publication, "bb_event").await?;
    assert!(event.contains(&"name".to_owned()) && event.contains(&"id".to_owned()));
    assert!(!event.contains(&"secret".to_owned()), "bb_event.secret is published");
    assert!(!event.contains(&"customer_ssn".to_owned()), "bb_event.customer_ssn is published");
    let organization = published_columns(&db, &config.publication, "bb_organization").await?;
    assert!(!organization.contains(&"customer_ssn".to_owned()));
    let booking = published_columns(&db, &config.publication, "bb_booking").await?;
    assert!(!booking.contains(&"secret".to_owned()));
    Ok(())
}

#[tokio::test]
async fn a_publication_that_publishes_a_secret_is_corrected_at_start() -> Result<()> {
    let db = TestDatabase::create().await?;
    let config = config(&db);
    let client = setup::connect(&config).await?;
    client.batch_execute(&format!("create publication {} for table bb_event", config.publication)).await?;
    assert!(published_columns(&db, &config.publication, "bb_event").await?.contains(&"secret".to_owned()));
    let shapes = setup::captured_tables(&client, &config).await?;
    setup::ensure_publication(&client, &config, &shapes).await?;
    assert!(!published_columns(&db, &config.publication, "bb_event").await?.contains(&"secret".to_owned()));
    Ok(())
}

#[tokio::test]
async fn a_table_without_primary_key_is_not_published() -> Result<()> {
    let db = TestDatabase::create().await?;
    let config = config(&db);
    let client = setup::connect(&config).await?;
    client.batch_execute("create table bb_resource_outlook_item (resource_id int, outlook_item_id text)").await?;
    let shapes = setup::captured_tables(&client, &config).await?;
    assert!(shapes.iter().all(|s| s.table != "bb_resource_outlook_item"));
    assert!(shapes.iter().any(|s| s.table == "bb_event"));
    Ok(())
}

#[tokio::test]
async fn a_full_identity_table_with_sensitive_columns_is_not_published_so_its_updates_keep_working() -> Result<()> {
    let db = TestDatabase::create().await?;
    let config = config(&db);
    let client = setup::connect(&config).await?;
    client.batch_execute("alter table bb_event replica identity full").await?;
    let shapes = setup::captured_tables(&client, &config).await?;
    assert!(shapes.iter().all(|s| s.table != "bb_event"));
    setup::ensure_publication(&client, &config, &shapes).await?;
    client.batch_execute("update bb_event set active = 0 where id = 301").await?;
    Ok(())
}

#[tokio::test]
async fn the_slot_name_is_validated_before_it_reaches_a_replication_command() {
    let mut config = Config::new(streams::Connections::new(
        streams::KafkaSettings::new("k:1"),
        "http://127.0.0.1:1",
        testkit::database::settings("postgres://x@127.0.0.1/db"),
    ));
    config.slot = "x LOGICAL 0/0; DROP".into();
    assert!(config.validate().is_err());
}

/// The key and envelope schemas of the default tables, as generated from the fixture schema, are the published
/// contract (`schemas/cdc/<schema>.<table>.key.avsc` and `.avsc`): regenerate them with
/// `ROOMSYNC_BLESS=1 cargo test -p cdc-reader --test setup`.
#[tokio::test]
async fn key_and_envelope_schemas_match_the_golden_files() -> Result<()> {
    let db = TestDatabase::create().await?;
    let config = config(&db);
    // roomsync's own captured tables come from its migrations: all of them, as a deployment has them.
    migrations::apply(&mut db.connect().await?).await?;
    let client = setup::connect(&config).await?;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = root.join("schemas/cdc");
    let bless = std::env::var_os("ROOMSYNC_BLESS").is_some();
    let shapes = setup::captured_tables(&client, &config).await?;
    assert_eq!(shapes.len(), cdc_reader::config::default_tables().len(), "every default table is captured");
    for shape in shapes {
        let schemas = TableSchemas::generate(&shape)?;
        for (suffix, json) in [("avsc", &schemas.envelope_json), ("key.avsc", &schemas.key_json)] {
            let generated = serde_json::to_string_pretty(json)? + "\n";
            let path = dir.join(format!("{}.{}.{suffix}", shape.schema, shape.table));
            if bless {
                std::fs::create_dir_all(&dir)?;
                std::fs::write(&path, &generated)?;
            }
            let golden = std::fs::read_to_string(&path)
                .with_context(|| format!("{} missing: run with ROOMSYNC_BLESS=1", path.display()))?;
            assert_eq!(golden, generated, "{} differs from the generator", path.display());
        }
    }
    Ok(())
}
