//! The group membership against the real broker: a partition the consumer has read to its end before the
//! resolver looked at its assignment still counts as loaded (issue #18: after a restart the group's assignment
//! arrived while the resolver idled, the consumer read the few records of its partitions at once, the loading
//! target was taken afterwards and never reached, and the resolver owned no room and emitted nothing, for ever).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use resolver::kafka::ownership::Membership;
use streams::{ensure_topics, KafkaSettings, TopicSpec};
use testkit::{unique_name, Stack};

async fn produce(settings: &KafkaSettings, topic: &str, records: usize) -> Result<()> {
    let producer: FutureProducer = settings.client_config().create()?;
    for n in 0..records {
        let key = format!("room/item:{n}");
        producer
            .send(FutureRecord::to(topic).key(&key).payload("x").partition(0), Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)?;
    }
    Ok(())
}

#[tokio::test]
async fn a_partition_read_to_its_end_before_the_assignment_was_seen_counts_as_loaded() -> Result<()> {
    let settings = KafkaSettings::new(Stack::from_env().kafka);
    let name = unique_name("ownership");
    let (desired, reservations) = (format!("{name}.sync.desired"), format!("{name}.reservations"));
    ensure_topics(&settings, &[TopicSpec::compacted(&desired), TopicSpec::log(&reservations)]).await?;
    produce(&settings, &desired, 3).await?;
    produce(&settings, &reservations, 2).await?;

    let consumer: StreamConsumer =
        settings.consumer_config(&name).set("partition.assignment.strategy", "range").create()?;
    let consumer = Arc::new(consumer);
    consumer.subscribe(&[&desired, &reservations])?;
    let mut membership = Membership::new(vec![desired.clone(), reservations.clone()]);
    // The driver reads its partitions while the membership has not seen the assignment yet (it looks every
    // 250 ms): here every record arrives before the first look.
    let mut read = 0;
    while read < 5 {
        let message = tokio::time::timeout(Duration::from_secs(60), consumer.recv()).await??;
        assert!(membership.loading(message.topic(), message.partition()), "records before the assignment load");
        membership.read(message.topic(), message.partition(), message.offset());
        read += 1;
    }
    // The assignment is there (the records came through it); the membership sees it at its next look.
    membership.refresh(&consumer).await?;
    assert_eq!(membership.assigned_count(), 1);
    let owned = membership.owned();
    assert_eq!(owned.into_iter().collect::<Vec<_>>(), vec![0], "both partitions are read to their end: loaded");
    Ok(())
}
