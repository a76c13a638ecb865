//! The cdc-reader and the resolver against the real stack (PostgreSQL 15, the Kafka broker, the schema
//! registry): the sample data becomes the desired state of the mapped room calendars, and live changes
//! behave as the domain rules say.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::NaiveDateTime;
use resolver::WindowConfig;
use streams::{KafkaSettings, RecordProducer};
use vocabulary::records::{
    AvroRecord, DesiredItem, GraphEvent, GraphEventBody, ImportOp, ImportRecord, RoomsyncTags, UpsertOrDelete,
};

mod support;

use support::{desired, Running, HALL_A, HALL_B, STORSALEN};

fn utc(s: &str) -> i64 {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").map(|t| t.and_utc().timestamp_micros()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_data_becomes_the_desired_state_of_the_mapped_rooms() -> Result<()> {
    let running = Running::start().await?;
    let (client, codec) = (&running.client, &running.codec);
    let topic = running.topics.desired();
    let initial = desired(&topic, 10, codec).await?;
    let by_key: BTreeMap<(String, String), &DesiredItem> =
        initial.iter().map(|d| ((d.mailbox.clone(), d.item_key.clone()), d)).collect();
    let keys: Vec<(&str, &str)> = by_key.keys().map(|(m, k)| (m.as_str(), k.as_str())).collect();
    assert_eq!(
        keys,
        vec![
            (HALL_A, "booking:204"),
            (HALL_A, "event:305"),
            (HALL_B, "allocation:102"),
            (HALL_B, "booking:201"),
            (HALL_B, "booking:202"),
            (HALL_B, "booking:203"),
            (HALL_B, "event:305"),
            (STORSALEN, "event:301"),
            (STORSALEN, "event:302"),
            (STORSALEN, "event:304"),
        ],
        "allocation 101 is covered by bookings 201+202, 104 by 204; the cancelled 103/205 and unmapped rooms are absent"
    );
    let after_dst = by_key[&(HALL_B.to_owned(), "allocation:102".to_owned())].content.as_ref().context("content")?;
    assert_eq!(
        (after_dst.start, after_dst.end),
        (utc("2026-03-31 17:00"), utc("2026-03-31 18:00")),
        "19:00-20:00 summer time, after booking 203 took 18:00-19:00"
    );
    let before_dst = by_key[&(HALL_B.to_owned(), "booking:201".to_owned())].content.as_ref().context("content")?;
    assert_eq!(before_dst.start, utc("2026-03-24 17:00"), "18:00 winter time");
    let private = by_key[&(STORSALEN.to_owned(), "event:302".to_owned())].content.as_ref().context("content")?;
    assert_eq!((private.subject.as_str(), private.body.as_deref()), ("Konfirmasjonsfest", None));

    // A save of event 305 that rewrites its links in one transaction changes nothing; cancelling allocation
    // 102 afterwards is the next (and only) new record.
    client
        .batch_execute(
            "begin; update bb_event set name = name where id = 305; \
             delete from bb_event_resource where event_id = 305; \
             insert into bb_event_resource (event_id, resource_id) values (305, 1), (305, 2); commit;",
        )
        .await?;
    client.batch_execute("update bb_allocation set id_string = cast(id as varchar)").await?;
    client.batch_execute("update bb_allocation set active = 0 where id = 102").await?;
    let all = desired(&topic, 11, codec).await?;
    let last = all.last().context("a record")?;
    assert_eq!((last.item_key.as_str(), last.op), ("allocation:102", UpsertOrDelete::Delete));

    running.stop().await
}

fn outlook_event(mailbox: &str, id: &str, subject: &str, start: i64, end: i64, tags: RoomsyncTags) -> GraphEvent {
    GraphEvent {
        op: UpsertOrDelete::Upsert,
        mailbox: mailbox.into(),
        event_id: id.into(),
        observed_at: 0,
        event: Some(GraphEventBody {
            change_key: Some(format!("ck-{id}")),
            ical_uid: None,
            subject: Some(subject.into()),
            start,
            end,
            time_zone: Some("Europe/Oslo".into()),
            is_all_day: false,
            is_cancelled: false,
            show_as: "busy".into(),
            sensitivity: "normal".into(),
            event_type: "singleInstance".into(),
            series_master_id: None,
            organizer: None,
            attendees: vec![],
            categories: vec![],
            created: None,
            last_modified: None,
            transaction_id: None,
            tags,
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outlook_bookings_are_imported_or_recorded_as_conflicts_and_echoes_are_ignored() -> Result<()> {
    let running = Running::start().await?;
    let initial = desired(&running.topics.desired(), 10, &running.codec).await?;
    let booking = initial.iter().find(|d| d.item_key == "booking:201").context("booking 201")?;
    let content = booking.content.clone().context("content")?;

    let producer = RecordProducer::new(&KafkaSettings::new(testkit::kafka_bootstrap()), running.codec.clone())?;
    let topic = running.topics.graph_events();
    let echo = RoomsyncTags { item_key: Some("booking:201".into()), ..RoomsyncTags::default() };
    let events = [
        outlook_event(HALL_B, "echo", &content.subject, content.start, content.end, echo),
        // 18:30-19:30 Oslo on 24 March: over allocation 101 and bookings 201 and 202.
        outlook_event(
            HALL_B,
            "clash",
            "Kurs",
            utc("2026-03-24 17:30"),
            utc("2026-03-24 18:30"),
            RoomsyncTags::default(),
        ),
        outlook_event(
            HALL_B,
            "free",
            "Styremøte",
            utc("2026-04-01 10:00"),
            utc("2026-04-01 11:00"),
            RoomsyncTags::default(),
        ),
    ];
    for event in &events {
        producer.send(&topic, &format!("{}/{}", event.mailbox, event.event_id), None, Some(event)).await?;
    }

    let imports = testkit::wait_until("the import", Duration::from_secs(60), || async {
        Ok(testkit::consume_all(&running.topics.imports(), 1, Duration::from_secs(30)).await.ok())
    })
    .await?;
    let import =
        ImportRecord::from_avro(running.codec.decode(imports[0].value.as_deref().unwrap_or_default()).await?.1)?;
    assert_eq!((import.event_id.as_str(), import.resource_id, import.op), ("free", 2, ImportOp::Upsert));

    let client = &running.client;
    let conflicts = testkit::wait_until("three conflict rows", Duration::from_secs(60), || async move {
        let rows = client
            .query(
                "select reservation_type::text, reservation_id, status::text from roomsync_conflicts \
                 where outlook_event_id = 'clash' order by reservation_type, reservation_id",
                &[],
            )
            .await?;
        let found: Vec<(String, i32, String)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
        Ok((found.len() == 3).then_some(found))
    })
    .await?;
    assert_eq!(
        conflicts,
        vec![
            ("allocation".to_owned(), 101, "open".to_owned()),
            ("booking".to_owned(), 201, "open".to_owned()),
            ("booking".to_owned(), 202, "open".to_owned())
        ]
    );
    // The echo re-emitted nothing: the desired topic still holds the initial ten records only.
    let again = testkit::consume_all(&running.topics.desired(), 11, Duration::from_secs(3)).await;
    assert!(again.is_err(), "no desired record beyond the initial ten");
    running.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_rooms_and_together_emit_the_same_desired_state() -> Result<()> {
    let running = Running::start_instances(2, 4).await?;
    let topic = running.topics.desired();
    let codec = &running.codec;
    let expected = [
        (HALL_A, "booking:204"),
        (HALL_A, "event:305"),
        (HALL_B, "allocation:102"),
        (HALL_B, "booking:201"),
        (HALL_B, "booking:202"),
        (HALL_B, "booking:203"),
        (HALL_B, "event:305"),
        (STORSALEN, "event:301"),
        (STORSALEN, "event:302"),
        (STORSALEN, "event:304"),
    ];
    let records = testkit::wait_until("every room's items", Duration::from_secs(120), || async {
        let Ok(records) = desired(&topic, 10, codec).await else { return Ok(None) };
        let keys: std::collections::BTreeSet<(String, String)> =
            records.iter().map(|d| (d.mailbox.clone(), d.item_key.clone())).collect();
        Ok((keys.len() == expected.len()).then_some(records))
    })
    .await?;
    let mut hashes: BTreeMap<(String, String), String> = BTreeMap::new();
    for record in &records {
        let key = (record.mailbox.clone(), record.item_key.clone());
        let first = hashes.entry(key).or_insert_with(|| record.content_hash.clone());
        assert_eq!(*first, record.content_hash, "a key emitted twice carries the same state");
        assert_eq!(record.op, UpsertOrDelete::Upsert, "{} / {}", record.mailbox, record.item_key);
    }
    let keys: Vec<(&str, &str)> = hashes.keys().map(|(m, k)| (m.as_str(), k.as_str())).collect();
    assert_eq!(keys, expected.to_vec());
    // Every record of a room is in the room's partition.
    for record in testkit::consume_all(&topic, records.len(), Duration::from_secs(30)).await? {
        let item = DesiredItem::from_avro(codec.decode(record.value.as_deref().unwrap_or_default()).await?.1)?;
        assert_eq!(record.partition, vocabulary::keys::room_partition(&item.mailbox, 4), "{}", item.mailbox);
    }
    running.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_resolver_rebuilds_its_state_and_emits_only_what_changed() -> Result<()> {
    let mut running = Running::start().await?;
    let topic = running.topics.desired();
    desired(&topic, 10, &running.codec).await?;
    running.restart_resolver().await?;
    // A change while it restarts, and one after: each is exactly one new record, nothing of the initial ten
    // is emitted again.
    running.client.batch_execute("update bb_booking set active = 0 where id = 203").await?;
    let all = desired(&topic, 12, &running.codec).await?;
    let tail: Vec<(&str, UpsertOrDelete)> = all[10..].iter().map(|d| (d.item_key.as_str(), d.op)).collect();
    assert_eq!(
        tail,
        vec![("allocation:102", UpsertOrDelete::Upsert), ("booking:203", UpsertOrDelete::Delete)],
        "allocation 102 gets its whole slot back, booking 203 goes"
    );
    let again = testkit::consume_all(&topic, 13, Duration::from_secs(3)).await;
    assert!(again.is_err(), "nothing more");
    running.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_record_that_cannot_be_decoded_is_dead_lettered_and_the_resolver_goes_on() -> Result<()> {
    let running = Running::start().await?;
    let topic = running.topics.desired();
    desired(&topic, 10, &running.codec).await?;
    let producer = RecordProducer::new(&KafkaSettings::new(testkit::kafka_bootstrap()), running.codec.clone())?;
    let cdc_topic = running.topics.cdc("public", "bb_event");
    producer.send_bytes(&cdc_topic, "garbage", None, Some(b"not avro at all")).await?;

    let letters = testkit::wait_until("the dead letter", Duration::from_secs(60), || async {
        Ok(testkit::consume_all(&running.topics.dead_letter(), 1, Duration::from_secs(20)).await.ok())
    })
    .await?;
    let letter = vocabulary::records::DeadLetter::from_avro(
        running.codec.decode(letters[0].value.as_deref().unwrap_or_default()).await?.1,
    )?;
    assert_eq!((letter.stage.as_str(), letter.source_topic.as_deref()), ("resolver", Some(cdc_topic.as_str())));

    running.client.batch_execute("update bb_allocation set active = 0 where id = 102").await?;
    let all = desired(&topic, 11, &running.codec).await?;
    let last = all.last().context("a record")?;
    assert_eq!((last.item_key.as_str(), last.op), ("allocation:102", UpsertOrDelete::Delete));
    running.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resolver_commits_how_far_it_has_read_its_inputs_so_kafka_tools_show_its_lag() -> Result<()> {
    let running = Running::start().await?;
    desired(&running.topics.desired(), 10, &running.codec).await?;
    running.client.batch_execute("update bb_allocation set active = 0 where id = 102").await?;
    desired(&running.topics.desired(), 11, &running.codec).await?;
    // The resolver rebuilds from the beginning whatever its group holds; the group's offsets are for monitoring:
    // once it has emitted the last change, every input partition is committed up to its end.
    let group = resolver::kafka::inputs::input_group(&running.config.group);
    let inputs = resolver::kafka::consume::input_topics(&running.config);
    let positions = testkit::wait_until("the resolver's committed offsets", Duration::from_secs(60), || async {
        let positions = testkit::committed_offsets(&group, &inputs)?;
        // A partition never written to has nothing to commit.
        Ok(positions.values().all(|p| p.committed.unwrap_or(0) == p.high).then_some(positions))
    })
    .await?;
    assert_eq!(positions.len(), inputs.len(), "one partition per input topic: {positions:?}");
    assert!(
        positions.iter().any(|((topic, _), p)| topic.ends_with("bb_allocation") && p.high > 0),
        "the booking topics are among them: {positions:?}"
    );
    running.stop().await
}

/// A booking that took place long ago (the sample data's spring 2026, before a one-day window) is forgotten with
/// its room links; then the booking system moves it into the future with an UPDATE of its main row only. It
/// must come back with its room, and stay right after a restart (which replays the old INSERT, forgotten again,
/// and the UPDATE).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_past_booking_moved_into_the_window_comes_back_with_its_room_after_a_restart_too() -> Result<()> {
    let window = WindowConfig { past: Duration::from_secs(86_400), ..WindowConfig::default() };
    let mut running = Running::start_with(1, 1, window).await?;
    let topic = running.topics.desired();
    // Booking 202 in the future is the only item at start: once it is out, the resolver has caught up and
    // forgotten everything before the window, booking 201 and its room with it.
    let move_to_day = |id: i32, day: i32| {
        format!(
            "update bb_booking set from_ = now()::date + interval '{day} days 18 hours',
                                   to_ = now()::date + interval '{day} days 19 hours' where id = {id}"
        )
    };
    running.client.batch_execute(&move_to_day(202, 10)).await?;
    let first = desired(&topic, 1, &running.codec).await?;
    assert_eq!(first[0].item_key, "booking:202");
    running.client.batch_execute(&move_to_day(201, 20)).await?;
    let all = desired(&topic, 2, &running.codec).await?;
    let moved = &all[1..];
    let keys: Vec<(&str, &str, UpsertOrDelete)> =
        moved.iter().map(|d| (d.mailbox.as_str(), d.item_key.as_str(), d.op)).collect();
    assert_eq!(keys, vec![(HALL_B, "booking:201", UpsertOrDelete::Upsert)], "the moved booking in its room");
    let subject = moved[0].content.as_ref().map(|c| c.subject.clone());
    assert!(subject.as_ref().is_some_and(|s| !s.is_empty()), "with its group's name: {subject:?}");

    running.restart_resolver().await?;
    // A change after the restart is the marker: once it is out, the restarted resolver has read everything.
    running.client.batch_execute("update bb_booking set active = 0 where id = 201").await?;
    let all = desired(&topic, 3, &running.codec).await?;
    let tail: Vec<(&str, UpsertOrDelete)> = all[2..].iter().map(|d| (d.item_key.as_str(), d.op)).collect();
    assert_eq!(tail, vec![("booking:201", UpsertOrDelete::Delete)], "nothing else: the restart agreed");
    running.stop().await
}

/// The group's checkpoint row: (input records it stands for, its positions as JSON), once one is written.
async fn checkpoint_row(running: &Running) -> Result<Option<(i64, serde_json::Value)>> {
    let row = running
        .client
        .query_opt(
            "select input_records, positions from roomsync_resolver_checkpoints where consumer_group = $1",
            &[&running.config.group],
        )
        .await?;
    Ok(row.map(|row| (row.get(0), row.get(1))))
}

/// The dead letters so far, once there are exactly `n` (none more arrives within 3 s).
async fn exactly_dead_letters(running: &Running, n: usize) -> Result<()> {
    let topic = running.topics.dead_letter();
    testkit::wait_until("the dead letters", Duration::from_secs(60), || async {
        Ok(testkit::consume_all(&topic, n, Duration::from_secs(20)).await.ok())
    })
    .await?;
    let more = testkit::consume_all(&topic, n + 1, Duration::from_secs(3)).await;
    anyhow::ensure!(more.is_err(), "more than {n} dead letters: the resolver read a record twice");
    Ok(())
}

/// Issue #13: a start used to read every input topic from the beginning. Now it starts from the checkpoint its
/// group wrote and reads only what came after: an undecodable record before the checkpoint is not read (so not
/// dead-lettered) again, and what changed while the resolver was down is emitted exactly. A checkpoint that does
/// not fit the topics (positions beyond their end, as after topics were made anew) is not used: everything is
/// read again, and the state is still exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_resolver_starts_from_its_checkpoint_and_reads_only_what_came_after_it() -> Result<()> {
    let mut running = Running::start().await?;
    let topic = running.topics.desired();
    desired(&topic, 10, &running.codec).await?;
    // Written once the start has read its inputs.
    let (first, _) = testkit::wait_until("the first checkpoint", Duration::from_secs(60), || async {
        checkpoint_row(&running).await
    })
    .await?;
    assert!(first > 0, "it stands for the records read: {first}");

    let producer = RecordProducer::new(&KafkaSettings::new(testkit::kafka_bootstrap()), running.codec.clone())?;
    let cdc_topic = running.topics.cdc("public", "bb_event");
    producer.send_bytes(&cdc_topic, "garbage", None, Some(b"not avro at all")).await?;
    exactly_dead_letters(&running, 1).await?;

    // The restart reads the garbage once more (it came after the checkpoint) and writes a checkpoint past it.
    running.config.checkpoint_every = Some(Duration::from_millis(300));
    running.restart_resolver().await?;
    exactly_dead_letters(&running, 2).await?;
    testkit::wait_until("a checkpoint past the garbage", Duration::from_secs(60), || async {
        Ok(checkpoint_row(&running).await?.filter(|(records, _)| *records > first))
    })
    .await?;

    running.restart_resolver().await?;
    running.client.batch_execute("update bb_booking set active = 0 where id = 203").await?;
    let all = desired(&topic, 12, &running.codec).await?;
    let tail: Vec<(&str, UpsertOrDelete)> = all[10..].iter().map(|d| (d.item_key.as_str(), d.op)).collect();
    assert_eq!(
        tail,
        vec![("allocation:102", UpsertOrDelete::Upsert), ("booking:203", UpsertOrDelete::Delete)],
        "exactly what changed: allocation 102 gets its whole slot back, booking 203 goes"
    );
    exactly_dead_letters(&running, 2).await?;

    // A checkpoint beyond the topics' ends is not used.
    running.stop_resolver().await?;
    running
        .client
        .execute(
            "update roomsync_resolver_checkpoints set positions =
                 (select jsonb_agg(jsonb_set(p, '{next}', to_jsonb((p->>'next')::bigint + 1000000)))
                    from jsonb_array_elements(positions) p)
              where consumer_group = $1",
            &[&running.config.group],
        )
        .await?;
    running.add_resolver();
    running.client.batch_execute("update bb_allocation set active = 0 where id = 102").await?;
    let all = desired(&topic, 13, &running.codec).await?;
    let last = all.last().context("a record")?;
    assert_eq!((last.item_key.as_str(), last.op), ("allocation:102", UpsertOrDelete::Delete));
    exactly_dead_letters(&running, 3).await?;
    assert!(testkit::consume_all(&topic, 14, Duration::from_secs(3)).await.is_err(), "nothing else");
    running.stop().await
}
