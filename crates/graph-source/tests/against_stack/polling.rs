//! The polling path: delta rounds alone, without webhooks.

use anyhow::{ensure, Result};
use graph_client::properties::{BOOKING_SYSTEM_ID, BOOKING_SYSTEM_TYPE, ROOMSYNC_CONTENT_HASH, ROOMSYNC_ITEM_KEY};
use graph_client::Event;
use graph_emulator::FaultConfig;
use serde_json::json;
use testkit::wait_until;
use vocabulary::keys::{room_item_key, room_partition};
use vocabulary::records::UpsertOrDelete;

use crate::harness::{meeting, Options, World, PATIENCE, ROOM_A, ROOM_B, ROOM_C};

#[tokio::test]
async fn created_updated_and_deleted_events_reach_the_topic_by_polling() -> Result<()> {
    let world = World::start(Options::default()).await?;
    let id = world.create(ROOM_A, "Board meeting", 9).await?;
    let created = world.wait_for_upsert(&id, "Board meeting").await?;
    let body = created.event.clone().expect("upsert has a body");
    ensure!(created.mailbox == ROOM_A);
    ensure!(body.change_key.is_some() && body.end - body.start == 3_600_000_000);
    let seen = world.records().into_iter().find(|s| s.record.event_id == id).expect("seen");
    ensure!(seen.key == room_item_key(ROOM_A, &id));
    ensure!(seen.partition == room_partition(ROOM_A, 1));

    let patch = Event { subject: Some("Board meeting (moved)".into()), ..Event::default() };
    world.graph.update_event(ROOM_A, &id, &patch, None).await?;
    world.wait_for_upsert(&id, "Board meeting (moved)").await?;

    world.graph.delete_event(ROOM_A, &id).await?;
    world.wait_for_delete(&id).await?;
    Ok(())
}

#[tokio::test]
async fn tags_are_read_back_and_series_occurrences_are_enriched_in_batches() -> Result<()> {
    let world = World::start(Options::default()).await?;
    let mut tagged = meeting("Handball", 18);
    for (property, value) in [
        (BOOKING_SYSTEM_TYPE, "allocation"),
        (BOOKING_SYSTEM_ID, "42"),
        (ROOMSYNC_ITEM_KEY, "allocation:42"),
        (ROOMSYNC_CONTENT_HASH, "h1"),
    ] {
        tagged.set_extended(property, value);
    }
    let tagged_id = world.graph.create_event(ROOM_B, &tagged).await?.id.expect("id");
    let mut series = meeting("Daily standup", 8);
    let first = (chrono::Utc::now() + chrono::Duration::days(1)).date_naive();
    series.recurrence = Some(json!({
        "pattern": {"type": "daily", "interval": 1},
        "range": {"type": "endDate", "startDate": first.to_string(),
                  "endDate": (first + chrono::Duration::days(2)).to_string()}
    }));
    let master = world.graph.create_event(ROOM_B, &series).await?.id.expect("master id");

    let record = world.wait_for_upsert(&tagged_id, "Handball").await?;
    let tags = record.event.expect("body").tags;
    ensure!(tags.booking_system_type.as_deref() == Some("allocation"));
    ensure!(tags.booking_system_id.as_deref() == Some("42"));
    ensure!(tags.item_key.as_deref() == Some("allocation:42") && tags.content_hash.as_deref() == Some("h1"));

    let occurrences = wait_until("three enriched occurrences", PATIENCE, || async {
        let found: Vec<_> = world
            .records()
            .into_iter()
            .filter_map(|s| s.record.event)
            .filter(|e| e.series_master_id.as_deref() == Some(master.as_str()))
            .collect();
        Ok((found.len() >= 3).then_some(found))
    })
    .await?;
    for occurrence in occurrences {
        ensure!(occurrence.subject.as_deref() == Some("Daily standup"), "stub was enriched: {occurrence:?}");
        ensure!(occurrence.event_type == "occurrence");
    }
    let batched = world.emu.requests().iter().filter(|r| r.in_batch).count();
    let single_gets = world.emu.requests().iter().filter(|r| !r.in_batch && r.path.contains("/events/")).count();
    ensure!(batched >= 4 && single_gets == 0, "batched {batched}, single {single_gets}");
    Ok(())
}

#[tokio::test]
async fn an_expired_delta_token_leads_to_a_full_round_and_correct_deletes() -> Result<()> {
    let options = Options { poll_interval: std::time::Duration::from_secs(3600), ..Options::default() };
    let mut world = World::start(options).await?;
    // The first round of a room runs at start; these exist before it or are caught by it.
    let keep = world.create(ROOM_A, "Keep", 9).await?;
    let vanish = world.create(ROOM_A, "Vanish", 11).await?;
    world.stop_source().await?;
    world.run_source().await?;
    world.wait_for_upsert(&keep, "Keep").await?;
    world.wait_for_upsert(&vanish, "Vanish").await?;
    wait_until("stored delta link and known ids", PATIENCE, || async {
        let row = world
            .pg
            .query_one("select count(*) from roomsync_graph_known_events where mailbox = $1", &[&ROOM_A])
            .await?;
        Ok((row.get::<_, i64>(0) == 2).then_some(()))
    })
    .await?;
    world.stop_source().await?;

    world.graph.delete_event(ROOM_A, &vanish).await?;
    world.emu.expire_delta_tokens();
    let before = world.records_of(&vanish).len();
    world.run_source().await?;
    world.wait_for_delete(&vanish).await?;
    ensure!(world.records_of(&vanish).len() == before + 1);
    ensure!(world.emu.requests().iter().any(|r| r.status == 410), "the stored token was refused");
    ensure!(world.records_of(&keep).iter().all(|r| r.op == UpsertOrDelete::Upsert), "kept event never deleted");
    let known = world
        .pg
        .query("select event_id from roomsync_graph_known_events where mailbox = $1", &[&ROOM_A])
        .await?
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>();
    ensure!(known == vec![keep.clone()], "{known:?}");
    world.stop_source().await?;
    Ok(())
}

#[tokio::test]
async fn a_room_whose_mailbox_is_denied_does_not_block_the_others() -> Result<()> {
    let faults = FaultConfig { denied_mailboxes: vec![ROOM_C.into()], ..FaultConfig::default() };
    let world = World::start(Options { rooms: vec![ROOM_C, ROOM_A], faults, ..Options::default() }).await?;
    wait_until("a refused round for the denied room", PATIENCE, || async {
        Ok(world.emu.requests().iter().any(|r| r.status == 403).then_some(()))
    })
    .await?;
    let id = world.create(ROOM_A, "Still flowing", 10).await?;
    world.wait_for_upsert(&id, "Still flowing").await?;
    wait_until("the denied room is retried", PATIENCE, || async {
        Ok((world.emu.requests().iter().filter(|r| r.status == 403).count() >= 3).then_some(()))
    })
    .await?;
    ensure!(world.records().iter().all(|s| s.record.mailbox == ROOM_A));
    Ok(())
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_until_every_change_is_published() -> Result<()> {
    let world = World::start(Options::default()).await?;
    world.emu.set_faults(FaultConfig {
        random_error_rate: 0.3,
        random_error_statuses: vec![429, 503, 504],
        seed: 11,
        ..FaultConfig::default()
    });
    let mut ids = Vec::new();
    for hour in 8..14 {
        ids.push((world.create(ROOM_A, &format!("Slot {hour}"), hour).await?, hour));
    }
    for (id, hour) in &ids {
        world.wait_for_upsert(id, &format!("Slot {hour}")).await?;
    }
    let statuses: Vec<u16> = world.emu.requests().iter().map(|r| r.status).collect();
    ensure!(statuses.iter().any(|s| [429, 503, 504].contains(s)), "faults were injected");
    ensure!(world.records().iter().all(|s| s.record.op == UpsertOrDelete::Upsert), "no spurious deletes");
    Ok(())
}

#[tokio::test]
async fn a_window_that_moved_on_starts_a_full_round_without_spurious_deletes() -> Result<()> {
    let options = Options { window_refresh: std::time::Duration::from_millis(300), ..Options::default() };
    let world = World::start(options).await?;
    let id = world.create(ROOM_A, "Stays", 9).await?;
    world.wait_for_upsert(&id, "Stays").await?;
    let full_rounds = || {
        world
            .requests("GET")
            .iter()
            .filter(|p| p.contains("room-a@example.org") && p.contains("calendarView/delta?startDateTime"))
            .count()
    };
    let before = full_rounds();
    wait_until("two more full rounds over fresh windows", PATIENCE, || async {
        Ok((full_rounds() >= before + 2).then_some(()))
    })
    .await?;
    ensure!(world.records_of(&id).iter().all(|r| r.op == UpsertOrDelete::Upsert));
    Ok(())
}

#[tokio::test]
async fn a_room_added_to_the_mapping_while_running_is_picked_up() -> Result<()> {
    let world = World::start(Options { rooms: vec![ROOM_A], ..Options::default() }).await?;
    let early = world.create(ROOM_C, "Before the mapping", 9).await?;
    world
        .pg
        .execute(
            "insert into bb_resource_outlook_item (resource_id, outlook_item_id, active) values (77, $1, 1)",
            &[&ROOM_C],
        )
        .await?;
    world.wait_for_upsert(&early, "Before the mapping").await?;
    let late = world.create(ROOM_C, "After the mapping", 11).await?;
    world.wait_for_upsert(&late, "After the mapping").await?;
    Ok(())
}

#[tokio::test]
async fn a_failure_after_kafka_acked_but_before_progress_was_stored_replays_without_gaps() -> Result<()> {
    let world = World::start(Options::default()).await?;
    let first = world.create(ROOM_A, "First", 8).await?;
    world.wait_for_upsert(&first, "First").await?;
    // Progress can no longer be stored: every round now fails after its records were acknowledged.
    world.pg.batch_execute("alter table roomsync_graph_known_events rename to known_events_away").await?;
    let id = world.create(ROOM_A, "Replayed", 10).await?;
    wait_until("the same change published by two failed rounds", PATIENCE, || async {
        Ok((world.records_of(&id).len() >= 2).then_some(()))
    })
    .await?;
    world.pg.batch_execute("alter table known_events_away rename to roomsync_graph_known_events").await?;
    wait_until("progress stored once the database works again", PATIENCE, || async {
        let row = world
            .pg
            .query_opt(
                "select 1 from roomsync_graph_known_events where mailbox = $1 and event_id = $2",
                &[&ROOM_A, &id],
            )
            .await?;
        Ok(row.map(|_| ()))
    })
    .await?;
    let records = world.records_of(&id);
    let change_keys: std::collections::HashSet<Option<String>> =
        records.iter().map(|r| r.event.as_ref().and_then(|e| e.change_key.clone())).collect();
    ensure!(change_keys.len() == 1, "replays repeat one state: {change_keys:?}");
    ensure!(records.iter().all(|r| r.op == UpsertOrDelete::Upsert));
    Ok(())
}
