//! The whole pipeline, end to end, on the booking system's real schema and sample data: PostgreSQL logical
//! replication -> cdc-reader -> resolver -> graph-sink -> the Graph emulator's room calendars, with the Graph
//! source feeding Outlook's changes back. Each stage runs with the settings `roomsync run` gives it.

mod support;

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use graph_emulator::{serve, Emulator, TenantConfig};
use roomsync::cli::Stage;
use roomsync::config::Config;
use roomsync::stages;
use serde_json::Value;
use testkit::{unique_name, wait_until, Stack, TestDatabase};
use tokio::sync::watch;

const HALL_A: &str = "hall-a@fjordvik.kommune.no";
const HALL_B: &str = "hall-b@fjordvik.kommune.no";
const STORSALEN: &str = "storsalen@fjordvik.kommune.no";
const DEADLINE: Duration = Duration::from_secs(90);

/// A task with its own stop switch: the emulator and each stage can be stopped on their own.
struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// A stop switch and the future that completes once it is flipped.
fn stop_switch() -> (watch::Sender<bool>, impl Future<Output = ()> + Send + 'static) {
    let (stop, mut stopped) = watch::channel(false);
    (stop, async move {
        let _ = stopped.wait_for(|s| *s).await;
    })
}

struct Pipeline {
    db: TestDatabase,
    emu: Emulator,
    config: Config,
    emulator: Running,
    stages: Vec<(Stage, Running)>,
}

impl Pipeline {
    /// Stops one stage and waits until it has returned.
    async fn stop_stage(&mut self, stage: Stage) -> anyhow::Result<()> {
        let index = self.stages.iter().position(|(s, _)| *s == stage).expect("the stage runs");
        let (_, running) = self.stages.remove(index);
        let _ = running.stop.send(true);
        tokio::time::timeout(DEADLINE, running.task).await??;
        Ok(())
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        for running in self.stages.iter().map(|(_, r)| r).chain([&self.emulator]) {
            let _ = running.stop.send(true);
            running.task.abort();
        }
    }
}

/// `(start, subject)` of every event in a room calendar, sorted.
fn calendar(emu: &Emulator, mailbox: &str) -> Vec<(String, String)> {
    let mut events: Vec<(String, String)> = emu
        .mailbox_events(mailbox)
        .unwrap_or_default()
        .iter()
        .map(|e: &Value| {
            let start = e["start"]["dateTime"].as_str().unwrap_or_default().chars().take(16).collect();
            (start, e["subject"].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    events.sort();
    events
}

/// Graph writes (creates, updates, deletes; inside $batch too) the emulator has answered so far.
fn writes(emu: &Emulator) -> usize {
    emu.requests()
        .iter()
        .filter(|r| matches!(r.method.as_str(), "POST" | "PATCH" | "DELETE"))
        .filter(|r| r.path.contains("/events") && (200..300).contains(&r.status))
        .count()
}

async fn start() -> anyhow::Result<Pipeline> {
    let db = TestDatabase::create().await?;
    let mut client = db.connect().await?;
    migrations::apply(&mut client).await?;
    client.batch_execute(include_str!("../fixtures/local/room_mappings.sql")).await?;

    let tenant = TenantConfig::load(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/emulator/tenant.toml"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let graph = format!("http://{}", listener.local_addr()?);
    let emu = Emulator::new(tenant);
    let (stop, stopped) = stop_switch();
    let served = emu.clone();
    let emulator = Running {
        stop,
        task: tokio::spawn(async move {
            let _ = serve(listener, served, stopped).await;
        }),
    };

    let name = unique_name("e2e");
    let extra = [
        // The sample data lies in March-June 2026.
        ("ROOMSYNC__SYNC__WINDOW_PAST", "400days".to_owned()),
        ("ROOMSYNC__GRAPH_SOURCE__POLL_INTERVAL", "1s".to_owned()),
    ];
    let config = support::pipeline_config(db.url(), &Stack::from_env().kafka, &graph, &name, &extra)?;

    let mut running = Vec::new();
    for stage in Stage::ALL {
        let (stop, stopped) = stop_switch();
        let task = stages::start(&config, stage, stopped)?;
        let task = tokio::spawn(async move {
            if let Err(error) = task.await {
                panic!("{} failed: {error:#}", stage.name());
            }
        });
        running.push((stage, Running { stop, task }));
    }
    Ok(Pipeline { db, emu, config, emulator, stages: running })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn booking_changes_reach_the_room_calendars_and_outlook_edits_are_reverted() -> anyhow::Result<()> {
    let mut pipeline = start().await?;
    let emu = pipeline.emu.clone();

    // 1. The sample data: Hall B holds the weekly bookings across the DST change (18:00 Oslo is 17:00 UTC in
    //    March and 16:00 UTC in April), the allocation only where no booking covers it (trimmed to 19-20), and
    //    the STENGT event that closes two resources.
    let expected_hall_b: Vec<(String, String)> = [
        ("2026-03-24T17:00", "Fotball G12"),
        ("2026-03-24T18:00", "Håndball J14"),
        ("2026-03-31T16:00", "Fotball G12"),
        ("2026-03-31T17:00", "Fjordvik Idrettslag"),
        ("2026-06-22T05:00", "STENGT - gulvvedlikehold"),
    ]
    .map(|(at, subject)| (at.to_owned(), subject.to_owned()))
    .to_vec();
    // Rooms are written in parallel: wait for each room's own state, never infer one from another.
    wait_until("hall B and Storsalen to hold the sample data", DEADLINE, || {
        let hall_b = calendar(&emu, HALL_B);
        let storsalen = calendar(&emu, STORSALEN);
        let expected = expected_hall_b.clone();
        async move {
            let concert = storsalen.iter().any(|(_, s)| s == "Vårkonsert med Fjordvik Skolekorps");
            Ok((hall_b == expected && concert).then_some(()))
        }
    })
    .await?;

    // 2. The booking system moves an event to another date and room the way it saves: UPDATE of the row, then
    //    the resource links deleted and re-inserted, in one transaction.
    let db = pipeline.db.connect().await?;
    db.batch_execute(
        "begin;
         update bb_event set name = 'Vårkonsert (flyttet)', from_ = '2026-12-05 18:00', to_ = '2026-12-05 21:00'
             where id = 301;
         delete from bb_event_resource where event_id = 301;
         insert into bb_event_resource (event_id, resource_id) values (301, 1);
         commit;",
    )
    .await?;
    wait_until("the moved event in hall A and gone from Storsalen", DEADLINE, || {
        let hall_a = calendar(&emu, HALL_A);
        let storsalen = calendar(&emu, STORSALEN);
        async move {
            let moved = hall_a.contains(&("2026-12-05T17:00".to_owned(), "Vårkonsert (flyttet)".to_owned()));
            let gone = !storsalen.iter().any(|(_, s)| s.starts_with("Vårkonsert"));
            Ok((moved && gone).then_some(()))
        }
    })
    .await?;

    // 3. Somebody edits roomsync's event in Outlook: the booking system is the authority, so it is reverted.
    let graph = graph_client::GraphClient::new(stages::graph_client_config(&pipeline.config)?)?;
    let concert = emu
        .mailbox_events(HALL_A)
        .unwrap_or_default()
        .into_iter()
        .find(|e| e["subject"] == "Vårkonsert (flyttet)")
        .and_then(|e| e["id"].as_str().map(str::to_owned))
        .ok_or_else(|| anyhow::anyhow!("the concert is in hall A"))?;
    let patch = graph_client::Event { subject: Some("Privat fest".into()), ..Default::default() };
    graph.update_event(HALL_A, &concert, &patch, None).await?;
    wait_until("the Outlook edit to be reverted", DEADLINE, || {
        let subjects: BTreeSet<String> = calendar(&emu, HALL_A).into_iter().map(|(_, s)| s).collect();
        async move { Ok((subjects.contains("Vårkonsert (flyttet)") && !subjects.contains("Privat fest")).then_some(())) }
    })
    .await?;

    // 4. Churn that changes nothing visible (the season form's full-table UPDATE of bb_allocation, the billing
    //    cron's completed = 1) makes no Graph write. A real change committed after it is the marker: CDC and
    //    the resolver apply commits in order, so once the marker arrives the churn has been processed.
    let before = writes(&emu);
    db.batch_execute(
        "update bb_allocation set id_string = cast(id as varchar);
         update bb_booking set completed = 1 where to_ < '2026-04-01';
         update bb_event set name = 'Folkemøte om ny idrettspark (oppdatert)' where id = 304;",
    )
    .await?;
    wait_until("the marker change", DEADLINE, || {
        let all: Vec<(String, String)> = [HALL_A, HALL_B, STORSALEN].iter().flat_map(|m| calendar(&emu, m)).collect();
        async move { Ok(all.iter().any(|(_, s)| s == "Folkemøte om ny idrettspark (oppdatert)").then_some(())) }
    })
    .await?;
    let marker_writes = writes(&emu) - before;
    assert!(marker_writes >= 1, "the marker itself is written");
    assert!(
        marker_writes <= 2,
        "no-op churn must not cause Graph writes; {marker_writes} writes for one renamed event"
    );

    // 5. A person deletes roomsync's event straight from the room calendar while the Graph source is down (a
    //    running source would see the deletion and the resolver would restore the event by itself, racing the
    //    reconciliation): reconciliation finds the drift (a dry run changes nothing) and repairs it through the
    //    sink.
    pipeline.stop_stage(Stage::GraphSource).await?;
    let stengt = emu
        .mailbox_events(HALL_B)
        .unwrap_or_default()
        .into_iter()
        .find(|e| e["subject"] == "STENGT - gulvvedlikehold")
        .and_then(|e| e["id"].as_str().map(str::to_owned))
        .ok_or_else(|| anyhow::anyhow!("STENGT is in hall B"))?;
    graph.delete_event(HALL_B, &stengt).await?;
    let settings = stages::reconcile(&pipeline.config)?;
    let rooms = vec![HALL_B.to_owned()];
    let dry = reconcile::reconcile(&settings, &reconcile::Options { dry_run: true, rooms: rooms.clone() }).await?;
    assert_eq!(dry.count(reconcile::DriftKind::Missing), 1, "{dry}");
    assert!(dry.repairs.is_empty());
    assert!(!calendar(&emu, HALL_B).iter().any(|(_, s)| s == "STENGT - gulvvedlikehold"), "a dry run repairs nothing");
    let repaired = reconcile::reconcile(&settings, &reconcile::Options { dry_run: false, rooms }).await?;
    assert_eq!(repaired.repairs.len(), 1, "{repaired}");
    wait_until("the deleted event to be back", DEADLINE, || {
        let hall_b = calendar(&emu, HALL_B);
        let expected = expected_hall_b.clone();
        async move { Ok((hall_b == expected).then_some(())) }
    })
    .await?;

    // 6. A backfill of Hall B's rows (what an operator runs after adding a room mapping) copies them into the
    //    topics again, in the stream's order; nothing changed, so nothing is written to Graph. A change
    //    committed after it is the marker that the backfill has been through the resolver and the sink.
    let before = writes(&emu);
    let captured = roomsync::commands::run::captured_tables(&pipeline.config);
    let request = roomsync::ops::backfill::request(&db, &captured, &[], &[2]).await?;
    let done = wait_until("the CDC reader to copy the backfill", DEADLINE, || {
        let db = &db;
        async move {
            let current = roomsync::ops::backfill::get(db, request.id).await?;
            Ok(current.done_at.is_some().then_some(current))
        }
    })
    .await?;
    assert_eq!((done.state(), done.error.as_deref()), ("done", None));
    assert!(done.rows.unwrap_or_default() > 0, "hall B has rows: {done:?}");
    db.batch_execute("update bb_event set name = 'Folkemøte etter backfill' where id = 304").await?;
    wait_until("the marker after the backfill", DEADLINE, || {
        let all: Vec<(String, String)> = [HALL_A, HALL_B, STORSALEN].iter().flat_map(|m| calendar(&emu, m)).collect();
        async move { Ok(all.iter().any(|(_, s)| s == "Folkemøte etter backfill").then_some(())) }
    })
    .await?;
    assert_eq!(writes(&emu) - before, 1, "only the marker is written: a backfill of unchanged rows writes nothing");
    assert_eq!(calendar(&emu, HALL_B), expected_hall_b, "hall B is as it was");
    Ok(())
}
