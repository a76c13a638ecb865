//! The harness works end to end: PostgreSQL decodes logical replication, the broker stores and returns
//! records, and an Avro record travels through the schema registry and Kafka and decodes the same.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use schema_registry::{AvroCodec, RegistryClient};
use testkit::{consume_all, kafka_bootstrap, unique_name, Stack, TestDatabase};
use vocabulary::records::{AvroRecord, DeadLetter};
use vocabulary::topics::{value_subject, Topics};

#[tokio::test]
async fn the_test_database_decodes_logical_replication_of_booking_tables() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let client = db.connect().await?;
    let slot = unique_name("smoke");
    client.execute("select pg_create_logical_replication_slot($1, 'test_decoding')", &[&slot]).await?;
    client.execute("update bb_event set name = 'Smoke test' where id = 301", &[]).await?;
    let rows = client.query("select data from pg_logical_slot_get_changes($1, null, null)", &[&slot]).await?;
    let changes: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
    assert!(
        changes.iter().any(|c| c.contains("table public.bb_event: UPDATE") && c.contains("Smoke test")),
        "the update is decoded from WAL: {changes:?}"
    );
    Ok(())
}

#[tokio::test]
async fn an_avro_record_travels_through_registry_and_broker() -> anyhow::Result<()> {
    let topics = Topics::new(unique_name("smoke"));
    let topic = topics.dead_letter();
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", kafka_bootstrap()).create()?;
    let created =
        admin.create_topics(&[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))], &AdminOptions::new()).await?;
    for result in created {
        result.map_err(|(name, code)| anyhow::anyhow!("creating {name}: {code}"))?;
    }

    let codec = AvroCodec::new(RegistryClient::new(&Stack::from_env().registry_url));
    let record = DeadLetter {
        stage: "smoke".into(),
        error_kind: "none".into(),
        reason: "harness check".into(),
        source_topic: None,
        source_partition: None,
        source_offset: None,
        source_key: None,
        source_value: Some(vec![1, 2, 3]),
        context: Default::default(),
        occurred_at: 1_790_000_000_000,
    };
    let bytes = codec.encode(&value_subject(&topic), DeadLetter::schema(), record.to_avro()?).await?;

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka_bootstrap())
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()?;
    producer
        .send(FutureRecord::to(&topic).key("k").payload(&bytes), Duration::from_secs(10))
        .await
        .map_err(|(err, _)| err)?;

    let read = consume_all(&topic, 1, Duration::from_secs(30)).await?;
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].key.as_deref(), Some(&b"k"[..]));
    let (schema_id, value) = codec.decode(read[0].value.as_deref().unwrap_or_default()).await?;
    assert_eq!(schema_id, codec.schema_id(&value_subject(&topic), DeadLetter::schema()).await?);
    assert_eq!(DeadLetter::from_avro(value)?, record);
    Ok(())
}
