//! Crash windows, many times over with seeded randomness: a crash after the intents, after the Graph writes
//! (before PostgreSQL's commit), after the commit (before Kafka's), or at an arbitrary moment (the task is
//! aborted), followed by a restart on the same database and topic. Afterwards the emulator's calendars hold
//! exactly one event per live item, with its latest content, and the mapping table agrees.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{bail, Result};
use graph_client::properties::ROOMSYNC_ITEM_KEY;
use graph_sink::{CrashPoint, SinkError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vocabulary::records::{DesiredItem, UpsertOrDelete};
use vocabulary::ReservationKind;

use crate::harness::{delete, tag, upsert, Harness, ROOM_A, ROOM_B};

/// The latest desired state per (mailbox, item key).
type Expected = HashMap<(String, String), DesiredItem>;

async fn send_all(h: &mut Harness, expected: &mut Expected, items: Vec<DesiredItem>) -> Result<()> {
    for item in items {
        h.send(&item).await?;
        expected.insert((item.mailbox.clone(), item.item_key.clone()), item);
    }
    Ok(())
}

/// Runs the sink with a crash hook until every record is applied; returns how many crashes happened.
async fn run_with_crashes(
    h: &Harness,
    rng: &Arc<Mutex<StdRng>>,
    probability: f64,
    hit: &Arc<Mutex<HashSet<CrashPoint>>>,
) -> Result<usize> {
    let mut crashes = 0;
    for _ in 0..300 {
        let mut config = h.config();
        let hook_rng = Arc::clone(rng);
        let hook_hit = Arc::clone(hit);
        config.crash_hook = Some(Arc::new(move |point: CrashPoint| {
            let crash = hook_rng.lock().unwrap_or_else(PoisonError::into_inner).gen_bool(probability);
            if crash {
                hook_hit.lock().unwrap_or_else(PoisonError::into_inner).insert(point);
            }
            crash
        }));
        // Many small units, many crash windows; some of them catching up (writing while they fill), at most three
        // times as large.
        let (records, growth) = {
            let mut rng = rng.lock().unwrap_or_else(PoisonError::into_inner);
            (rng.gen_range(1..8), rng.gen_range(1..=3))
        };
        config.max_batch_records = records;
        config.max_catch_up_records = records * growth;
        let want = h.last_offset + 1;
        // Everything applied (the last crash came after the commit): start no sink that would leave its group
        // at once. A member leaving in the middle of its join can leave tansu 0.6's group coordinator stuck,
        // so that the next member never gets partitions (the chaos test's F7; the sink warns about it).
        if h.stored_offset().await?.is_some_and(|n| n >= want) {
            return Ok(crashes);
        }
        let applied = async {
            let _ = testkit::wait_until("all applied", Duration::from_secs(120), || async {
                Ok(h.stored_offset().await?.filter(|n| *n >= want))
            })
            .await;
        };
        match graph_sink::run(config, applied).await {
            Ok(()) if h.stored_offset().await?.is_some_and(|n| n >= want) => return Ok(crashes),
            Ok(()) => bail!(
                "the sink did not apply every record within 120 s of one run: stored offset {:?}, want {want}, \
                 {crashes} crashes so far, rows {:?}",
                h.stored_offset().await?,
                h.rows(ROOM_A)
                    .await?
                    .iter()
                    .chain(h.rows(ROOM_B).await?.iter())
                    .map(|r| format!("{r:?}"))
                    .collect::<Vec<_>>()
            ),
            Err(SinkError::Crashed(_)) => crashes += 1,
            Err(err) => return Err(err.into()),
        }
    }
    bail!("the sink never finished")
}

/// Runs the sink and aborts it at random moments until every record is applied.
async fn run_with_aborts(h: &Harness, rng: &mut StdRng) -> Result<usize> {
    let mut aborts = 0;
    for _ in 0..100 {
        if h.stored_offset().await?.is_some_and(|n| n > h.last_offset) {
            return Ok(aborts);
        }
        let mut config = h.config();
        config.max_batch_records = rng.gen_range(1..8);
        config.max_catch_up_records = config.max_batch_records * rng.gen_range(1..=3);
        let running = h.spawn(config);
        // The crash moment itself is what is random here; nothing waits on it to synchronise.
        tokio::time::sleep(Duration::from_millis(rng.gen_range(50..1500))).await;
        running.task.abort();
        let _ = running.task.await;
        aborts += 1;
    }
    let running = h.spawn(h.config());
    h.wait_applied().await?;
    running.stop().await?;
    Ok(aborts)
}

async fn assert_exactly_the_expected_events(h: &Harness, expected: &Expected) -> Result<()> {
    for mailbox in [ROOM_A, ROOM_B] {
        let events = h.events(mailbox);
        let mut by_key: HashMap<String, Vec<&serde_json::Value>> = HashMap::new();
        for e in &events {
            by_key.entry(tag(e, ROOMSYNC_ITEM_KEY).unwrap_or("untagged").to_owned()).or_default().push(e);
        }
        let rows = h.rows(mailbox).await?;
        for ((m, key), item) in expected.iter().filter(|((m, _), _)| m == mailbox) {
            let found = by_key.remove(key).unwrap_or_default();
            let row = rows.iter().find(|r| &r.item_key == key);
            match item.op {
                UpsertOrDelete::Upsert => {
                    assert_eq!(found.len(), 1, "{m} {key}: exactly one event, found {}", found.len());
                    let subject = item.content.as_ref().map(|c| c.subject.as_str());
                    assert_eq!(found[0]["subject"].as_str(), subject, "{key}: latest content");
                    let row = row.expect("a row for a live item");
                    assert_eq!(row.status, "synced", "{key}");
                    assert_eq!(row.event_id.as_deref(), found[0]["id"].as_str(), "{key}: the row knows the event");
                    assert_eq!(row.intent, "none");
                }
                UpsertOrDelete::Delete => {
                    assert!(found.is_empty(), "{key}: deleted, yet {} events", found.len());
                    if let Some(row) = row {
                        assert_eq!((row.status.as_str(), row.event_id.as_deref()), ("deleted", None), "{key}");
                    }
                }
            }
        }
        assert!(by_key.is_empty(), "events nobody asked for: {:?}", by_key.keys().collect::<Vec<_>>());
    }
    Ok(())
}

fn first_wave() -> Vec<DesiredItem> {
    (0..12)
        .map(|i| {
            let room = if i % 2 == 0 { ROOM_A } else { ROOM_B };
            let kind = [ReservationKind::Event, ReservationKind::Booking, ReservationKind::Allocation][i % 3];
            upsert(room, kind, i as i32, &format!("item {i}"), 1 + i as u32, 8)
        })
        .collect()
}

fn second_wave(first: &[DesiredItem]) -> Vec<DesiredItem> {
    let mut out = Vec::new();
    for (i, item) in first.iter().enumerate() {
        match i % 4 {
            0 => out.push(delete(item)),
            1 => {
                let mut changed = item.clone();
                if let Some(c) = changed.content.as_mut() {
                    c.subject = format!("{} (changed)", c.subject);
                }
                changed.content_hash = format!("{}-v2", item.content_hash);
                out.push(changed);
            }
            2 => out.push(item.clone()),
            _ => {}
        }
    }
    out.push(upsert(ROOM_A, ReservationKind::Event, 100, "late arrival", 25, 8));
    out
}

#[tokio::test]
async fn crashes_between_the_durable_steps_never_duplicate_or_lose_an_event() -> Result<()> {
    let hit = Arc::new(Mutex::new(HashSet::new()));
    let mut crashes = 0;
    for seed in [1u64, 2, 3, 4] {
        let mut h = Harness::start().await?;
        let rng = Arc::new(Mutex::new(StdRng::seed_from_u64(seed)));
        let mut expected = Expected::new();
        let first = first_wave();
        send_all(&mut h, &mut expected, first.clone()).await?;
        crashes += run_with_crashes(&h, &rng, 0.3, &hit).await?;
        assert_exactly_the_expected_events(&h, &expected).await?;

        send_all(&mut h, &mut expected, second_wave(&first)).await?;
        crashes += run_with_crashes(&h, &rng, 0.3, &hit).await?;
        assert_exactly_the_expected_events(&h, &expected).await?;

        // Deleted items come back (next generation of transactionIds).
        let again: Vec<DesiredItem> = first.iter().step_by(4).cloned().collect();
        send_all(&mut h, &mut expected, again).await?;
        crashes += run_with_crashes(&h, &rng, 0.3, &hit).await?;
        assert_exactly_the_expected_events(&h, &expected).await?;
    }
    let hit = hit.lock().unwrap_or_else(PoisonError::into_inner).clone();
    assert_eq!(hit.len(), 3, "every crash window was exercised: {hit:?}");
    assert!(crashes >= 12, "the hook crashed the sink only {crashes} times");
    Ok(())
}

#[tokio::test]
async fn a_sink_aborted_at_random_moments_never_duplicates_or_loses_an_event() -> Result<()> {
    let storm = graph_emulator::FaultConfig { latency_ms: 30, ..graph_emulator::FaultConfig::default() };
    let mut h = Harness::start_with(storm).await?;
    let mut rng = StdRng::seed_from_u64(42);
    let mut expected = Expected::new();
    let first = first_wave();
    send_all(&mut h, &mut expected, first.clone()).await?;
    run_with_aborts(&h, &mut rng).await?;
    assert_exactly_the_expected_events(&h, &expected).await?;
    send_all(&mut h, &mut expected, second_wave(&first)).await?;
    run_with_aborts(&h, &mut rng).await?;
    assert_exactly_the_expected_events(&h, &expected).await?;
    Ok(())
}
