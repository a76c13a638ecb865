//! The whole pipeline, end to end, on the booking system's real schema and sample data: PostgreSQL logical
//! replication -> cdc-reader -> resolver -> graph-sink -> the Graph emulator's room calendars, with the Graph
//! source feeding Outlook's changes back. Each stage runs with the settings `roomsync run` gives it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: helpers shared by the #[test] fns panic on a failed setup step, as the tests themselves may"
)]

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
    /// The emulator's base URL.
    graph_url: String,
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

/// Hall B as the sample data books it: the weekly bookings across the DST change (18:00 Oslo is 17:00 UTC in
/// March and 16:00 UTC in April), the allocation only where no booking covers it (trimmed to 19-20), and the
/// STENGT event that closes two resources.
fn sample_hall_b() -> Vec<(String, String)> {
    [
        ("2026-03-24T17:00", "Fotball G12"),
        ("2026-03-24T18:00", "Håndball J14"),
        ("2026-03-31T16:00", "Fotball G12"),
        ("2026-03-31T17:00", "Fjordvik Idrettslag"),
        ("2026-06-22T05:00", "STENGT - gulvvedlikehold"),
    ]
    .map(|(at, subject)| (at.to_owned(), subject.to_owned()))
    .to_vec()
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
    start_with(&[]).await
}

/// A pipeline with `settings` (`ROOMSYNC__...` overrides) on top of the test defaults.
async fn start_with(settings: &[(&str, String)]) -> anyhow::Result<Pipeline> {
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
    let mut extra = vec![
        // The sample data lies in March-June 2026.
        ("ROOMSYNC__SYNC__WINDOW_PAST", "400days".to_owned()),
        ("ROOMSYNC__GRAPH_SOURCE__POLL_INTERVAL", "1s".to_owned()),
    ];
    extra.extend(settings.iter().cloned());
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
    Ok(Pipeline { db, emu, graph_url: graph, config, emulator, stages: running })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn booking_changes_reach_the_room_calendars_and_outlook_edits_are_reverted() -> anyhow::Result<()> {
    let mut pipeline = start().await?;
    let emu = pipeline.emu.clone();

    // 1. The sample data reaches hall B and Storsalen.
    let expected_hall_b = sample_hall_b();
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
    // The emulator logs a request once it has answered it: wait for the marker and for its write in the log.
    wait_until("the marker change, and its write logged", DEADLINE, || {
        let all: Vec<(String, String)> = [HALL_A, HALL_B, STORSALEN].iter().flat_map(|m| calendar(&emu, m)).collect();
        let logged = writes(&emu) > before;
        async move {
            Ok((logged && all.iter().any(|(_, s)| s == "Folkemøte om ny idrettspark (oppdatert)")).then_some(()))
        }
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
    let request = roomsync::ops::backfill::request(&db, "public", &captured, &[], &[2]).await?;
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
    // The emulator logs a request once it has answered it, so the calendar shows the marker a moment before the
    // request log has its write: wait for both.
    wait_until("the marker after the backfill, and its write logged", DEADLINE, || {
        let all: Vec<(String, String)> = [HALL_A, HALL_B, STORSALEN].iter().flat_map(|m| calendar(&emu, m)).collect();
        let logged = writes(&emu) > before;
        async move { Ok((logged && all.iter().any(|(_, s)| s == "Folkemøte etter backfill")).then_some(())) }
    })
    .await?;
    assert_eq!(writes(&emu) - before, 1, "only the marker is written: a backfill of unchanged rows writes nothing");
    assert_eq!(calendar(&emu, HALL_B), expected_hall_b, "hall B is as it was");
    Ok(())
}

/// The install line of the README's analytics recipe: the one line that starts with `python3 -m venv`.
fn readme_install_line() -> anyhow::Result<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))?;
    let lines: Vec<&str> = readme.lines().filter(|l| l.trim_start().starts_with("python3 -m venv")).collect();
    anyhow::ensure!(lines.len() == 1, "the README has one install line for the analytics recipe: {lines:?}");
    Ok(lines[0].trim().to_owned())
}

/// A fresh virtual environment, set up with the README's own line, once per test process; its directory.
async fn analytics_venv() -> anyhow::Result<&'static std::path::Path> {
    static VENV: tokio::sync::OnceCell<std::path::PathBuf> = tokio::sync::OnceCell::const_new();
    let dir = VENV
        .get_or_try_init(|| async {
            let dir = std::env::temp_dir().join(unique_name("analytics"));
            std::fs::create_dir_all(&dir)?;
            let line = readme_install_line()?;
            let install = tokio::process::Command::new("sh").arg("-c").arg(&line).current_dir(&dir).output().await?;
            anyhow::ensure!(
                install.status.success(),
                "`{line}` failed: {}{}",
                String::from_utf8_lossy(&install.stdout),
                String::from_utf8_lossy(&install.stderr)
            );
            Ok(dir)
        })
        .await?;
    Ok(dir.as_path())
}

/// Runs an analytics example (`examples/analytics/<script>`) with `args` in the virtual environment under
/// `dir`; the JSON objects it printed.
fn run_example(dir: &std::path::Path, script: &str, args: &[&str]) -> anyhow::Result<Vec<Value>> {
    let output = std::process::Command::new(dir.join(".venv/bin/python"))
        .arg(format!("{}/examples/analytics/{script}", env!("CARGO_MANIFEST_DIR")))
        .args(["--bootstrap", &Stack::from_env().kafka])
        .args(args)
        .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    anyhow::ensure!(output.status.success(), "{script} {args:?} failed ({}): {stderr}", output.status);
    Ok(String::from_utf8(output.stdout)?.lines().map(serde_json::from_str).collect::<Result<_, _>>()?)
}

/// The analytics example's records of every topic of `prefix`, read to their current end.
fn read_topics(dir: &std::path::Path, prefix: &str, args: &[&str]) -> anyhow::Result<Vec<Value>> {
    let registry = Stack::from_env().registry_url;
    let common = ["--registry", registry.as_str(), "--prefix", prefix, "--to-end"];
    run_example(dir, "read_topics.py", &common.iter().chain(args).copied().collect::<Vec<_>>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_analytics_example_reads_every_topic_decoded_from_a_fresh_virtual_environment() -> anyhow::Result<()> {
    let pipeline = start().await?;
    let prefix = pipeline.config.kafka.topic_prefix.clone();
    let topics = vocabulary::topics::Topics::new(prefix.clone());
    // The snapshot is through once the sample data is in a room calendar.
    let emu = pipeline.emu.clone();
    wait_until("the sample data in hall B", DEADLINE, || {
        let filled = !calendar(&emu, HALL_B).is_empty();
        async move { Ok(filled.then_some(())) }
    })
    .await?;
    // Every kind of record: the sample data (snapshot), an Outlook booking in a free slot (a Graph event and an
    // import), a row the CDC reader cannot encode (a dead letter: 'infinity' is a valid PostgreSQL timestamp),
    // a delete (its tombstone).
    let booking = serde_json::json!({
        "subject": "Styremøte",
        "start": {"dateTime": "2026-12-10T10:00:00", "timeZone": "Europe/Oslo"},
        "end": {"dateTime": "2026-12-10T11:00:00", "timeZone": "Europe/Oslo"},
    });
    let url = format!("{}/_emulator/mailboxes/{HALL_A}/bookings", pipeline.graph_url);
    let created = reqwest::Client::new().post(&url).json(&booking).send().await?;
    anyhow::ensure!(created.status().is_success(), "the Outlook booking: {}", created.status());
    let db = pipeline.db.connect().await?;
    db.batch_execute(
        "update bb_booking set to_ = 'infinity' where id = 205;
         delete from bb_event_resource where event_id = 302;",
    )
    .await?;
    for topic in [topics.imports(), topics.dead_letter()] {
        wait_until(&format!("a record in {topic}"), DEADLINE, || {
            let topic = topic.clone();
            async move { Ok(testkit::consume_all(&topic, 1, Duration::from_secs(5)).await.ok().map(|_| ())) }
        })
        .await?;
    }

    let dir = analytics_venv().await?;
    let link_topic = topics.cdc("public", "bb_event_resource");
    let tombstone =
        |r: &Value| r["topic"] == link_topic.as_str() && r["value"].is_null() && r["key"]["event_id"] == 302;
    let with_registry =
        wait_until("the example to read the import, the dead letter and the tombstone", DEADLINE, || {
            let records = read_topics(dir, &prefix, &[]);
            let wanted = [topics.imports(), topics.dead_letter()];
            async move {
                let records = records?;
                let topics_seen = wanted.iter().all(|t| records.iter().any(|r| r["topic"] == t.as_str()));
                Ok((topics_seen && records.iter().any(tombstone)).then_some(records))
            }
        })
        .await?;
    let schemas = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas");
    let with_files = read_topics(dir, &prefix, &["--schemas", schemas])?;
    // The pipeline runs on: the second reading may end later. Every record of the first is in the second, decoded
    // the same way.
    let position = |r: &Value| (r["topic"].as_str().map(str::to_owned), r["partition"].as_i64(), r["offset"].as_i64());
    let by_position: std::collections::BTreeMap<_, &Value> = with_files.iter().map(|r| (position(r), r)).collect();
    for record in &with_registry {
        assert_eq!(Some(&record), by_position.get(&position(record)), "the files decode as the registry's schemas");
    }

    let seen: BTreeSet<&str> = with_registry.iter().filter_map(|r| r["topic"].as_str()).collect();
    let expected: BTreeSet<String> = roomsync::commands::run::captured_tables(&pipeline.config)
        .iter()
        .map(|t| topics.cdc("public", t))
        .chain([
            topics.transactions(),
            topics.graph_events(),
            topics.reservations(),
            topics.desired(),
            topics.imports(),
            topics.dead_letter(),
        ])
        .collect();
    for topic in &expected {
        assert!(seen.contains(topic.as_str()), "{topic} was read: {seen:?}");
    }
    let key_of = |topic: &str| with_registry.iter().find(|r| r["topic"] == topic).map(|r| r["key"].clone());
    assert!(key_of(&topics.cdc("public", "bb_booking")).is_some_and(|k| k["id"].is_i64()), "the primary key record");
    assert!(key_of(&topics.desired()).is_some_and(|k| k.as_str().is_some_and(|k| k.contains('/'))), "<mailbox>/<item>");
    let letter = with_registry.iter().find(|r| r["topic"] == topics.dead_letter()).map(|r| r["value"].clone());
    assert_eq!(letter.as_ref().and_then(|l| l["stage"].as_str()), Some("cdc-reader"), "{letter:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_deployments_on_one_broker_keep_their_own_consumer_groups() -> anyhow::Result<()> {
    let deployments = [start().await?, start().await?];
    for pipeline in &deployments {
        let emu = pipeline.emu.clone();
        wait_until("each deployment's sample data in its hall B", DEADLINE, || {
            let filled = !calendar(&emu, HALL_B).is_empty();
            async move { Ok(filled.then_some(())) }
        })
        .await?;
    }
    // Each deployment's groups hold offsets of its own topics only: the sink's (a hint beside PostgreSQL's) and
    // the resolver's input positions.
    let topics: Vec<vocabulary::topics::Topics> =
        deployments.iter().map(|p| vocabulary::topics::Topics::new(p.config.kafka.topic_prefix.clone())).collect();
    let watched: Vec<String> = topics.iter().flat_map(|t| [t.desired(), t.graph_events()]).collect();
    for (pipeline, own) in deployments.iter().zip(&topics) {
        let sink_group = stages::consumer_group(&pipeline.config, "graph-sink");
        let inputs_group = resolver::kafka::inputs::input_group(&stages::consumer_group(&pipeline.config, "resolver"));
        let (sink, inputs) = wait_until("both groups to commit", DEADLINE, || {
            let (sink, inputs) = (
                testkit::committed_offsets(&sink_group, &watched),
                testkit::committed_offsets(&inputs_group, &watched),
            );
            async move {
                let (sink, inputs) = (sink?, inputs?);
                let committed = |positions: &std::collections::BTreeMap<(String, i32), testkit::GroupPosition>,
                                 topic: &str| {
                    positions.iter().any(|((t, _), p)| t == topic && p.committed.is_some())
                };
                let ready = committed(&sink, &own.desired()) && committed(&inputs, &own.graph_events());
                Ok(ready.then_some((sink, inputs)))
            }
        })
        .await?;
        for ((topic, _), position) in sink.iter().chain(&inputs) {
            let foreign = topic != &own.desired() && topic != &own.graph_events();
            assert!(!(foreign && position.committed.is_some()), "{sink_group}/{inputs_group} committed on {topic}");
        }
        // The local stack's group view (README: browsing the local stack) shows both groups with their lag.
        let prefix = own.prefix().to_owned();
        let rows = run_example(analytics_venv().await?, "consumer_groups.py", &["--prefix", &prefix])?;
        let listed: BTreeSet<&str> = rows.iter().filter_map(|r| r["group"].as_str()).collect();
        assert_eq!(listed, BTreeSet::from([sink_group.as_str(), inputs_group.as_str()]), "{rows:?}");
        assert!(rows
            .iter()
            .all(|r| r["topic"].as_str().is_some_and(|t| t.starts_with(&format!("{prefix}."))) && r["lag"].is_i64()));
    }
    Ok(())
}

/// 02:30 on the autumn fold day happens twice in Oslo (00:30Z in summer time, 01:30Z in standard time);
/// `sync.dst.fold` chooses, and the event lands on exactly that instant whatever Exchange would make of the wall
/// clock (the emulator reads a repeated wall clock as standard time, as Exchange does).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_in_the_autumn_fold_lands_on_the_instant_sync_dst_fold_chooses() -> anyhow::Result<()> {
    let earlier = start().await?;
    let later = start_with(&[("ROOMSYNC__SYNC__DST__FOLD", "later".to_owned())]).await?;
    for (pipeline, expected) in [(&earlier, "2026-10-25T00:30"), (&later, "2026-10-25T01:30")] {
        let db = pipeline.db.connect().await?;
        db.batch_execute(
            "update bb_event set name = 'Natteøving', from_ = '2026-10-25 02:30', to_ = '2026-10-25 03:30' where id = 304",
        )
        .await?;
        let emu = pipeline.emu.clone();
        let landed = wait_until("the fold event in Storsalen", DEADLINE, || {
            let event = calendar(&emu, STORSALEN).into_iter().find(|(_, subject)| subject == "Natteøving");
            async move { Ok(event) }
        })
        .await?;
        assert_eq!(landed.0, expected, "start instant in UTC");
    }
    Ok(())
}

/// Every record of the single-partition `topic` so far, decoded as `T`, with its offset.
async fn read_all<T: vocabulary::records::AvroRecord>(
    consumer: &rdkafka::consumer::BaseConsumer,
    codec: &schema_registry::AvroCodec,
    seen: &mut Vec<(i64, Option<Vec<u8>>)>,
) -> anyhow::Result<Vec<(i64, T)>> {
    use rdkafka::message::Message;
    while let Some(message) = consumer.poll(Duration::from_millis(100)) {
        let message = message?;
        seen.push((message.offset(), message.payload().map(<[u8]>::to_vec)));
    }
    let mut out = Vec::new();
    for (offset, payload) in seen.iter() {
        if let Some(bytes) = payload {
            let (_, value) = codec.decode(bytes).await?;
            out.push((*offset, T::from_avro(value)?));
        }
    }
    Ok(out)
}

/// Issue #14: a resolver member that lost a room's partition while frozen writes, once it runs on, the desired
/// state it computed before, into a partition another member now owns. The owner must not leave that record the
/// last word on the item: it takes it into its ledger and writes what the room must hold after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_desired_record_written_by_another_member_into_an_owned_partition_is_overwritten() -> anyhow::Result<()> {
    use rdkafka::consumer::Consumer;
    use vocabulary::records::DesiredItem;

    let pipeline = start().await?;
    let emu = pipeline.emu.clone();
    // The whole of hall B, not its first item: rooms fill item by item, and a snapshot taken half way would
    // make the final comparison wait for a state that was never the booking system's.
    let expected = sample_hall_b();
    wait_until("hall B to hold the sample data", DEADLINE, || {
        let hall_b = calendar(&emu, HALL_B);
        let expected = expected.clone();
        async move { Ok((hall_b == expected).then_some(())) }
    })
    .await?;

    let stack = Stack::from_env();
    let topic = vocabulary::topics::Topics::new(pipeline.config.kafka.topic_prefix.clone()).desired();
    let codec = schema_registry::AvroCodec::new(schema_registry::RegistryClient::new(&stack.registry_url));
    let consumer: rdkafka::consumer::BaseConsumer = streams::KafkaSettings::new(stack.kafka.clone())
        .client_config()
        .set("group.id", unique_name("stale_check"))
        .create()?;
    let mut list = rdkafka::TopicPartitionList::new();
    list.add_partition_offset(&topic, 0, rdkafka::Offset::Beginning)?;
    consumer.assign(&list)?;
    let seen = tokio::sync::Mutex::new(Vec::new());
    let item = wait_until("the desired record of Håndball J14", DEADLINE, || async {
        let records = read_all::<DesiredItem>(&consumer, &codec, &mut *seen.lock().await).await?;
        Ok(records
            .into_iter()
            .rev()
            .map(|(_, d)| d)
            .find(|d| d.mailbox == HALL_B && d.content.as_ref().is_some_and(|c| c.subject == "Håndball J14")))
    })
    .await?;

    // The stale member's write: an older view of the item, as its own producer would send it.
    let mut stale = item.clone();
    stale.content_hash = format!("{}-stale", item.content_hash);
    if let Some(content) = stale.content.as_mut() {
        content.subject = "Håndball J14 (from a member that lost the room)".into();
    }
    let producer = streams::RecordProducer::new(&streams::KafkaSettings::new(stack.kafka.clone()), codec.clone())?;
    let key = format!("{}/{}", stale.mailbox, stale.item_key);
    let (_, stale_offset) = producer.send(&topic, &key, Some(0), Some(&stale)).await?;

    // The owner writes the item again after it, and the calendar ends as the booking system says.
    let repaired = wait_until("the owner to write the item again after the stale record", DEADLINE, || async {
        let records = read_all::<DesiredItem>(&consumer, &codec, &mut *seen.lock().await).await?;
        let last = records.into_iter().rfind(|(_, d)| d.mailbox == item.mailbox && d.item_key == item.item_key);
        Ok(last.filter(|(offset, d)| *offset > stale_offset && d.content_hash == item.content_hash).map(|_| ()))
    })
    .await;
    let settled = wait_until("hall B to hold the booking system's state", DEADLINE, || {
        let hall_b = calendar(&emu, HALL_B);
        let expected = expected.clone();
        async move { Ok((hall_b == expected).then_some(())) }
    })
    .await;
    if let Err(err) = repaired.and(settled) {
        anyhow::bail!("{err}: hall B holds {:?}", calendar(&emu, HALL_B));
    }
    Ok(())
}
