//! Where the sink resumes is decided by PostgreSQL's offsets, never by Kafka's committed ones.

use anyhow::Result;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use vocabulary::ReservationKind;

use crate::harness::{upsert, Harness, ROOM_A};

#[tokio::test]
async fn the_sink_resumes_from_postgres_offsets_even_when_kafka_has_committed_further() -> Result<()> {
    let mut h = Harness::start().await?;
    for i in 0..3 {
        h.send(&upsert(ROOM_A, ReservationKind::Event, i, &format!("e{i}"), 1 + i as u32, 8)).await?;
    }
    // Kafka's group offset says everything is done; PostgreSQL says only record 0 is (a restored database).
    let kafka: BaseConsumer = h.kafka.client_config().set("group.id", &h.group).create()?;
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(&h.topics.desired(), 0, Offset::Offset(h.last_offset + 1))?;
    kafka.assign(&list)?;
    kafka.commit(&list, CommitMode::Sync)?;
    drop(kafka);
    h.pg.execute(
        "insert into roomsync_consumer_offsets (consumer_group, topic, partition, next_offset) values ($1, $2, 0, 1)",
        &[&h.group, &h.topics.desired()],
    )
    .await?;

    let sink = h.spawn(h.config());
    h.wait_applied().await?;
    sink.stop().await?;
    let mut subjects: Vec<String> =
        h.events(ROOM_A).iter().filter_map(|e| e["subject"].as_str().map(str::to_owned)).collect();
    subjects.sort();
    assert_eq!(subjects, vec!["e1", "e2"], "record 0 was applied already; 1 and 2 were not, whatever Kafka said");
    Ok(())
}

#[tokio::test]
async fn a_sink_whose_group_has_no_offsets_takes_those_of_the_group_every_deployment_used_before() -> Result<()> {
    // An upgrade: the deployment's topics have a prefix of their own, its offsets were stored under the group
    // all deployments used before groups followed the prefix.
    let mut h = Harness::start().await?;
    for i in 0..3 {
        h.send(&upsert(ROOM_A, ReservationKind::Event, i, &format!("e{i}"), 1 + i as u32, 8)).await?;
    }
    h.pg.execute(
        "insert into roomsync_consumer_offsets (consumer_group, topic, partition, next_offset) \
         values ('roomsync-graph-sink', $1, 0, 2)",
        &[&h.topics.desired()],
    )
    .await?;

    let sink = h.spawn(h.config());
    h.wait_applied().await?;
    sink.stop().await?;
    let subjects: Vec<String> =
        h.events(ROOM_A).iter().filter_map(|e| e["subject"].as_str().map(str::to_owned)).collect();
    assert_eq!(subjects, vec!["e2"], "records 0 and 1 were applied under the old group's name");
    let own: i64 =
        h.pg.query_one(
            "select next_offset from roomsync_consumer_offsets where consumer_group = $1 and topic = $2",
            &[&h.group, &h.topics.desired()],
        )
        .await?
        .get(0);
    assert_eq!(own, 3, "from then on under its own group");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_whose_offsets_another_member_moved_meanwhile_commits_nothing() -> Result<()> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use graph_sink::CrashPoint;

    let mut h = Harness::start().await?;
    for i in 0..2 {
        h.send(&upsert(ROOM_A, ReservationKind::Event, i, &format!("e{i}"), 1 + i as u32, 8)).await?;
    }
    // While the unit of records 0 and 1 writes to Graph, another member (one the partition locks could not stop:
    // its session was lost) stores offset 1 for the partition.
    let (url, group, topic) = (h.db.url().to_owned(), h.group.clone(), h.topics.desired());
    let moved = Arc::new(AtomicBool::new(false));
    let mut config = h.config();
    config.crash_hook = Some(Arc::new(move |point: CrashPoint| {
        if point == CrashPoint::AfterGraph && !moved.swap(true, Ordering::SeqCst) {
            let (url, group, topic) = (url.clone(), group.clone(), topic.clone());
            let other_member = std::thread::spawn(move || -> Result<()> {
                tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async move {
                    let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
                    tokio::spawn(connection);
                    db.execute(
                        "insert into roomsync_consumer_offsets (consumer_group, topic, partition, next_offset)
                         values ($1, $2, 0, 1)",
                        &[&group, &topic],
                    )
                    .await?;
                    Ok(())
                })
            });
            other_member.join().expect("the other member's thread").expect("the other member's offsets");
        }
        false
    }));
    let sink = h.spawn(config);
    h.wait_applied().await?;
    sink.stop().await?;
    let rows = h.rows(ROOM_A).await?;
    let intents: Vec<(&str, &str, &str)> =
        rows.iter().map(|r| (r.item_key.as_str(), r.status.as_str(), r.intent.as_str())).collect();
    // The fenced unit committed nothing: record 0's create is still only announced (the other member owns its
    // result). The sink started again from offset 1 and settled record 1 (found by its tags, adopted).
    assert_eq!(intents, [("event:0", "pending", "create"), ("event:1", "synced", "none")], "{rows:#?}");
    Ok(())
}
