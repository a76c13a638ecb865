//! A typed record goes out through the producer and comes back through a consumer group, against the real
//! broker and registry.

use std::time::Duration;

use schema_registry::{AvroCodec, RegistryClient};
use streams::{ensure_topics, KafkaSettings, RecordConsumer, RecordProducer, TopicSpec};
use testkit::{kafka_bootstrap, unique_name, Stack};
use vocabulary::records::{ImportOp, ImportRecord};
use vocabulary::topics::Topics;

fn record(event_id: &str) -> ImportRecord {
    ImportRecord {
        op: ImportOp::Upsert,
        mailbox: "hall-a@kommune.no".into(),
        resource_id: 4,
        event_id: event_id.into(),
        change_key: None,
        ical_uid: None,
        subject: Some("Møte".into()),
        start: 1,
        end: 2,
        is_all_day: false,
        organizer_name: None,
        organizer_address: None,
    }
}

#[tokio::test]
async fn records_and_tombstones_round_trip_through_a_consumer_group() -> anyhow::Result<()> {
    let settings = KafkaSettings::new(kafka_bootstrap());
    let topic = Topics::new(unique_name("streams")).imports();
    ensure_topics(&settings, &[TopicSpec::compacted(&topic)]).await?;
    ensure_topics(&settings, &[TopicSpec::compacted(&topic)]).await?; // existing topics are fine
    let codec = AvroCodec::new(RegistryClient::new(&Stack::from_env().registry_url));
    let producer = RecordProducer::new(&settings, codec.clone())?;
    producer.send(&topic, "hall-a@kommune.no/e1", None, Some(&record("e1"))).await?;
    let (_, tombstone_offset) = producer.send::<ImportRecord>(&topic, "hall-a@kommune.no/e1", None, None).await?;

    let consumer = RecordConsumer::subscribe(&settings, &unique_name("group"), &[&topic])?;
    let first = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await??;
    assert_eq!(first.key_str(), Some("hall-a@kommune.no/e1"));
    assert_eq!(first.decode::<ImportRecord>(&codec).await?, Some(record("e1")));
    let second = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await??;
    assert_eq!(second.offset, tombstone_offset);
    assert_eq!(second.decode::<ImportRecord>(&codec).await?, None);
    consumer.commit(&second)?;
    Ok(())
}

#[tokio::test]
async fn a_batch_is_stored_in_call_order_and_acknowledged_together() -> anyhow::Result<()> {
    let settings = KafkaSettings::new(kafka_bootstrap());
    let topic = Topics::new(unique_name("streams")).imports();
    ensure_topics(&settings, &[TopicSpec::log(&topic)]).await?;
    let codec = AvroCodec::new(RegistryClient::new(&Stack::from_env().registry_url));
    let producer = RecordProducer::new(&settings, codec.clone())?;
    let mut batch = producer.batch();
    for n in 0..200 {
        let id = format!("e{n}");
        batch.push(&topic, &format!("hall-a@kommune.no/{id}"), Some(0), Some(&record(&id))).await?;
    }
    assert_eq!(batch.len(), 200);
    let stored = batch.acked().await?;
    assert_eq!(stored.len(), 200);
    assert!(stored.windows(2).all(|w| matches!(w, [(0, a), (0, b)] if b > a)), "offsets follow call order");

    let consumer = RecordConsumer::subscribe(&settings, &unique_name("group"), &[&topic])?;
    for n in 0..200 {
        let received = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await??;
        assert_eq!(received.decode::<ImportRecord>(&codec).await?, Some(record(&format!("e{n}"))));
    }
    Ok(())
}
