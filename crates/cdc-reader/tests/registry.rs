//! `run` with the real schema registry: what lands in Kafka is Confluent wire format with registered ids.

mod common;

use std::time::Duration;

use anyhow::Result;
use apache_avro::types::Value;
use schema_registry::{AvroCodec, RegistryClient};
use testkit::{Stack, TestDatabase};
use tokio::sync::oneshot;
use vocabulary::topics::value_subject;

#[tokio::test]
async fn records_carry_schema_ids_registered_in_the_schema_registry() -> Result<()> {
    let db = TestDatabase::create().await?;
    let mut config = common::config(&db);
    config.connections.registry_url = Stack::from_env().registry_url;
    let topic = config.connections.topics.clone().cdc("public", "bb_event");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(cdc_reader::run(config.clone(), async move {
        let _ = stopped.await;
    }));
    common::wait_for_snapshot(&db, &config).await?;
    let records = testkit::consume_all(&topic, 5, Duration::from_secs(60)).await?;
    let codec = AvroCodec::new(RegistryClient::new(&config.connections.registry_url));
    let (id, value) = codec.decode(records[0].value.as_deref().unwrap_or_default()).await?;
    let writer = codec.schema(id).await?;
    let registered = codec.schema_id(&value_subject(&topic), &writer).await?;
    assert_eq!(registered, id, "the value schema is registered under <topic>-value");
    assert!(matches!(common::field(&value, "op"), Some(Value::String(op)) if op == "r"));
    let (_, key) = codec.decode(records[0].key.as_deref().unwrap_or_default()).await?;
    assert!(common::field(&key, "id").is_some());
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(30), task).await???;
    Ok(())
}
