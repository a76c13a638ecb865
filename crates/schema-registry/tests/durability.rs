//! What must hold beyond one request: concurrent registrations, restarts, and the codec's round trip through
//! the server.

mod support;

use anyhow::Result;
use apache_avro::types::Value;
use apache_avro::Schema;
use reqwest::Method;
use schema_registry::server::{Store, StoreConfig};
use schema_registry::{AvroCodec, RegistryClient};
use serde_json::json;
use support::{booking_v1, booking_v2, call, fresh, Server};
use testkit::TestDatabase;

#[tokio::test]
async fn concurrent_registrations_of_one_schema_get_one_id_and_one_version() -> Result<()> {
    let (db, server) = fresh().await?;
    // A second server on the same database: the guarantee must come from PostgreSQL, not from one process.
    let other = Server::start(db.url()).await?;
    let clients = [RegistryClient::new(&server.url), RegistryClient::new(&other.url)];
    let mut tasks = Vec::new();
    for n in 0..8 {
        let client = clients[n % 2].clone();
        // Half under one subject, half under another: ids are global, versions per subject.
        let subject = if n % 4 < 2 { "one-value" } else { "two-value" };
        tasks.push(tokio::spawn(async move { client.register(subject, &booking_v1()).await }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await??);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "ids: {ids:?}");
    for subject in ["one-value", "two-value"] {
        let url = format!("{}/subjects/{subject}/versions", server.url);
        assert_eq!(call(Method::GET, &url, None).await?, (200, json!([1])));
    }
    other.stop().await?;
    server.stop().await
}

#[tokio::test]
async fn schemas_versions_and_config_survive_a_server_restart() -> Result<()> {
    let (db, server) = fresh().await?;
    let client = RegistryClient::new(&server.url);
    let v1 = client.register("bookings-value", &booking_v1()).await?;
    let v2 = client.register("bookings-value", &booking_v2()).await?;
    call(Method::PUT, &format!("{}/config", server.url), Some(json!({ "compatibility": "FULL" }))).await?;
    server.stop().await?;

    let server = Server::start(db.url()).await?;
    let client = RegistryClient::new(&server.url);
    assert_eq!(client.schema_by_id(v1).await?, booking_v1());
    assert_eq!(client.register("bookings-value", &booking_v2()).await?, v2);
    let (_, latest) =
        call(Method::GET, &format!("{}/subjects/bookings-value/versions/latest", server.url), None).await?;
    assert_eq!((latest["version"].clone(), latest["id"].clone()), (json!(2), json!(v2)));
    let (_, config) = call(Method::GET, &format!("{}/config", server.url), None).await?;
    assert_eq!(config, json!({ "compatibilityLevel": "FULL" }));
    // A schema registered after the restart gets a fresh id, not a reused one.
    let v3 = client.register("other-value", r#""string""#).await?;
    assert!(v3 > v2 && v2 > v1, "ids {v1} {v2} {v3}");
    server.stop().await
}

#[tokio::test]
async fn codec_round_trips_a_record_through_the_server() -> Result<()> {
    let (_db, server) = fresh().await?;
    let schema = Schema::parse_str(&booking_v2())?;
    let writer = AvroCodec::new(RegistryClient::new(&server.url));
    let value = Value::Record(vec![("id".into(), Value::Long(42)), ("room".into(), Value::String("R1".into()))]);
    let bytes = writer.encode("bookings-value", &schema, value.clone()).await?;

    // A reader with empty caches fetches the writer schema by the id in the frame.
    let reader = AvroCodec::new(RegistryClient::new(&server.url));
    let (id, decoded) = reader.decode(&bytes).await?;
    assert_eq!(decoded, value);
    assert_eq!(id, writer.schema_id("bookings-value", &schema).await?);
    server.stop().await
}

#[tokio::test]
async fn codec_gives_a_schema_that_only_adds_a_logical_type_its_own_id() -> Result<()> {
    let (_db, server) = fresh().await?;
    let codec = AvroCodec::new(RegistryClient::new(&server.url));
    let plain = Schema::parse_str(&support::booking(r#"{"name":"at","type":"long"}"#))?;
    let timestamp = Schema::parse_str(&support::booking(
        r#"{"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}}"#,
    ))?;
    let plain_id = codec.schema_id("bookings-value", &plain).await?;
    let timestamp_id = codec.schema_id("bookings-value", &timestamp).await?;
    assert_ne!(plain_id, timestamp_id);
    let bytes = codec
        .encode("bookings-value", &timestamp, Value::Record(vec![("at".into(), Value::TimestampMillis(7))]))
        .await?;
    let (_, decoded) = AvroCodec::new(RegistryClient::new(&server.url)).decode(&bytes).await?;
    assert_eq!(decoded, Value::Record(vec![("at".into(), Value::TimestampMillis(7))]));
    server.stop().await
}

#[tokio::test]
async fn static_schemas_get_their_registered_ids_per_subject_and_schema() -> Result<()> {
    let (_db, server) = fresh().await?;
    let codec = AvroCodec::new(RegistryClient::new(&server.url));
    let plain: &'static Schema =
        Box::leak(Box::new(Schema::parse_str(&support::booking(r#"{"name":"at","type":"long"}"#))?));
    let timestamp: &'static Schema = Box::leak(Box::new(Schema::parse_str(&support::booking(
        r#"{"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}}"#,
    ))?));
    let plain_id = codec.static_schema_id("bookings-value", plain).await?;
    let timestamp_id = codec.static_schema_id("bookings-value", timestamp).await?;
    assert_ne!(plain_id, timestamp_id);
    // Asked again (cached) and through the general path: the same ids, as the registry knows them.
    assert_eq!(codec.static_schema_id("bookings-value", plain).await?, plain_id);
    assert_eq!(codec.schema_id("bookings-value", timestamp).await?, timestamp_id);
    let text = serde_json::to_string(timestamp)?;
    assert_eq!(codec.registry().register("bookings-value", &text).await?, timestamp_id);
    // Another subject registers the schema under its own name (Confluent gives the same global id).
    assert_eq!(codec.static_schema_id("other-value", plain).await?, plain_id);
    let bytes = codec
        .encode_static("bookings-value", timestamp, Value::Record(vec![("at".into(), Value::TimestampMillis(7))]))
        .await?;
    let (id, _) = AvroCodec::new(RegistryClient::new(&server.url)).decode(&bytes).await?;
    assert_eq!(id, timestamp_id);
    server.stop().await
}

#[tokio::test]
async fn servers_starting_together_on_an_empty_database_create_the_tables_once() -> Result<()> {
    let db = TestDatabase::create_empty().await?;
    let config = StoreConfig { database_url: db.url().to_owned(), max_connections: 2 };
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let config = config.clone();
            tokio::spawn(async move { Store::open(&config).await })
        })
        .collect();
    for open in opens {
        open.await??;
    }
    let server = Server::start(db.url()).await?;
    let id = RegistryClient::new(&server.url).register("bookings-value", &booking_v1()).await?;
    assert_eq!(id, 1);
    server.stop().await
}

#[tokio::test]
async fn registry_recovers_when_its_database_connections_are_killed() -> Result<()> {
    let (db, server) = fresh().await?;
    let client = RegistryClient::new(&server.url);
    let id = client.register("bookings-value", &booking_v1()).await?;

    // What a database restart does to the pool: every server-side session of the registry ends.
    let admin = db.connect().await?;
    admin
        .execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() \
             and pid <> pg_backend_pid()",
            &[],
        )
        .await?;

    // A request may still meet a dead connection (answered 500/50001, which the client calls transient); the
    // pool must then open fresh ones rather than keep handing out the dead.
    let fetched = testkit::wait_until("the registry to answer again", std::time::Duration::from_secs(10), || {
        let client = client.clone();
        async move {
            match client.schema_by_id(id).await {
                Ok(schema) => Ok(Some(schema)),
                Err(err) if err.is_transient() => Ok(None),
                Err(err) => Err(err.into()),
            }
        }
    })
    .await?;
    assert_eq!(fetched, booking_v1());
    server.stop().await
}
