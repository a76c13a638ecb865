//! Whole-process crashes (issue #18): the real `roomsync run` binary, every stage in one process, SIGKILLed at
//! chosen points of the booking system's work and started again at once, as a deployment meets it every day.
//! After every restart the room calendars, the mapping table and the conflicts must match the oracle again.
//!
//! ```text
//!  seed -> rounds: change (one kind of booking-system transaction) -> kill at the round's moment -> restart
//!                  -> wait until calendars + mapping == oracle(bb_* tables), nothing left in unmapped rooms
//! ```
//! The kill points: right after each kind of transaction (insert, update, link rewrite, soft and hard
//! cancellation, room mapping added and removed, season change; at a seeded moment within a second of the
//! commit), in the middle of a large transaction's stream (once the CDC reader has produced part of it), and
//! while the sink is writing (once Graph has acknowledged the first write the change caused).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use graph_emulator::Emulator;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use testkit::{unique_name, wait_until_every, TestDatabase};
use tokio_postgres::{Client, Transaction};

use super::booking::BookingSystem;
use super::broker::Broker;
use super::compare::{differences, graph_writes};
use super::harness::{booking_database, observed_pipeline, GraphServer};
use super::oracle::{expected, rules_of};
use super::outlook::item_key;
use super::process::Process;
use super::workload::{History, PREPARE};

/// How long the system may take to match the oracle after a restart. A restarted member waits for the dead
/// one's session to expire, and tansu may leave the group without an assignment until the stages rejoin
/// (`kafka.rejoin_unassigned_after`, F7).
const SETTLE: Duration = Duration::from_secs(150);
/// How often the system is compared with the oracle while waiting.
const COMPARE_EVERY: Duration = Duration::from_millis(500);
/// Allocations inserted by the large transaction (each with its resource link and `id_string` update: about
/// 9,000 CDC records).
const LARGE_TRANSACTION_ROWS: i32 = 3_000;
/// Events the sink-writing round creates in one transaction.
const SEVERAL_EVENTS: i32 = 12;
/// The room whose mapping the rounds remove and add again (moterom-fjorden, resource 5).
const TOGGLED_ROOM: i32 = 5;

/// Where a round kills the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// A new event (INSERT, `id_string` UPDATE, links and dates in one transaction).
    Insert,
    /// A save that moves or renames a reservation.
    Update,
    /// A save that changes nothing visible (the links rewritten).
    LinkRewrite,
    /// `active = 0` or back to 1.
    SoftCancel,
    /// A reservation and its links deleted.
    HardDelete,
    /// A room mapping added (`bb_resource_outlook_item` row inserted or reactivated).
    MappingAdded,
    /// A room mapping removed (deactivated or deleted).
    MappingRemoved,
    /// A season's status or active flag changes.
    Season,
    /// In the middle of a large transaction's stream.
    LargeTransaction,
    /// While the graph sink writes what a change caused.
    SinkWriting,
}

/// Every point, in the order the short version visits them.
pub const POINTS: [Point; 10] = [
    Point::Insert,
    Point::MappingRemoved,
    Point::Update,
    Point::MappingAdded,
    Point::LinkRewrite,
    Point::SoftCancel,
    Point::HardDelete,
    Point::Season,
    Point::LargeTransaction,
    Point::SinkWriting,
];

/// The system: emulator in this process, its own broker, `roomsync run` as a child.
struct System {
    db: TestDatabase,
    emu: Emulator,
    process: Process,
    config: roomsync::config::Config,
    _broker: Broker,
    _graph: GraphServer,
}

impl System {
    async fn start(log_dir: &std::path::Path) -> anyhow::Result<System> {
        let db = booking_database(PREPARE).await?;
        let graph = GraphServer::start().await?;
        let (emu, graph_url) = (graph.emu.clone(), graph.url.clone());
        let broker = Broker::start().await?;
        let name = unique_name("crash");
        let mut extra = observed_pipeline()?;
        extra.extend([
            // A killed member's session ends after 6 s instead of 45 s (each test has its own broker and groups,
            // and tansu keeps a group's session timeout from its first member), and a member tansu leaves without
            // partitions rejoins after 15 s (F7): a round costs seconds, not minutes.
            ("ROOMSYNC__KAFKA__PROPERTIES__session.timeout.ms", "6000".to_owned()),
            ("ROOMSYNC__KAFKA__REJOIN_UNASSIGNED_AFTER", "15s".to_owned()),
        ]);
        let env = crate::support::pipeline_env(db.url(), &broker.bootstrap(), &graph_url, &name, &extra);
        let config = roomsync::config::Config::load_with_env(None, env.clone())?;
        let process = Process::start(&["run"], env, &log_dir.join(format!("{name}.log"))).await?;
        Ok(System { db, emu, process, config, _broker: broker, _graph: graph })
    }

    /// Every difference from the oracle, plus roomsync events left in rooms that are no longer mapped.
    async fn differences(&self, db: &Client) -> anyhow::Result<Vec<String>> {
        let history = History::default();
        let expectation = expected(db, &history, rules_of(&self.config)?).await?;
        let mut diffs = differences(&self.emu, db, &expectation, &history).await?;
        let mapped: BTreeSet<String> = expectation.mailboxes.clone();
        for row in db.query("select distinct outlook_item_id from bb_resource_outlook_item", &[]).await? {
            let mailbox: String = row.get(0);
            if mapped.contains(&mailbox) {
                continue;
            }
            let events = self.emu.mailbox_events(&mailbox).unwrap_or_default();
            let left = events.iter().filter(|e| item_key(e).is_some()).count();
            if left > 0 {
                diffs.push(format!("unmapped {mailbox}: {left} roomsync events left"));
            }
        }
        Ok(diffs)
    }

    /// Waits until the system matches the oracle; the error shows what still differs and the log's tail.
    async fn settle(&mut self, db: &Client, what: &str) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let last: Arc<Mutex<Vec<String>>> = Arc::default();
        let system = &*self;
        let outcome = wait_until_every(what, SETTLE, COMPARE_EVERY, || {
            let last = last.clone();
            async move {
                let diffs = system.differences(db).await?;
                let done = diffs.is_empty();
                *last.lock().unwrap_or_else(|e| e.into_inner()) = diffs;
                Ok(done.then_some(()))
            }
        })
        .await;
        if let Err(error) = outcome {
            let last = last.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let shown: Vec<&String> = last.iter().take(30).collect();
            bail!("{error}: {} differences: {shown:#?}\n{}", last.len(), self.diagnostics().await);
        }
        self.process.check_alive()?;
        let (code, ready) = self.process.get("/health/ready").await?;
        if code != 200 {
            bail!("converged, but /health/ready answers {code}: {ready}\n{}", self.diagnostics().await);
        }
        Ok(started.elapsed())
    }

    /// What the process says about itself (its roomsync metrics and readiness), for failure messages.
    async fn diagnostics(&self) -> String {
        let metrics = match self.process.get("/metrics").await {
            Ok((_, text)) => text
                .lines()
                .filter(|l| l.starts_with("roomsync_") && !l.contains("_bucket"))
                .collect::<Vec<_>>()
                .join("\n"),
            Err(error) => format!("(no metrics: {error})"),
        };
        let ready = self.process.get("/health/ready").await.map(|(_, body)| body).unwrap_or_default();
        format!(
            "readiness: {ready}\nmetrics:\n{metrics}\nlog ({}):\n{}",
            self.process.log_path().display(),
            self.process.log_tail(30)
        )
    }
}

/// Kills at a seeded moment within a second of the change (the kill moment is the fault being injected), half
/// of the time within its first 150 ms, while the change is still on its way through the stages.
async fn kill_soon(system: &mut System, rng: &mut StdRng) -> anyhow::Result<String> {
    let within = if rng.gen_bool(0.5) { 150 } else { 1000 };
    let delay = Duration::from_millis(rng.gen_range(0..within));
    tokio::time::sleep(delay).await;
    system.process.kill().await?;
    Ok(format!("killed {delay:?} after the commit"))
}

/// Kills once `metric` has grown past `baseline` (polled; the point is to land inside the work it counts).
async fn kill_when_grown(system: &mut System, metric: &str, baseline: f64) -> anyhow::Result<String> {
    let process = &system.process;
    let seen = wait_until_every(
        "the change to be under way",
        Duration::from_secs(60),
        Duration::from_millis(5),
        || async move {
            let now = process.metric(metric).await?;
            Ok((now > baseline).then_some(now))
        },
    )
    .await?;
    system.process.kill().await?;
    Ok(format!("killed once {metric} was {seen} (from {baseline})"))
}

/// Applies the round's change and kills the process at the round's point; returns what happened.
async fn strike(
    point: Point,
    system: &mut System,
    booking: &mut BookingSystem,
    rng: &mut StdRng,
    history: &mut History,
) -> anyhow::Result<String> {
    let pick = |booking: &BookingSystem, rng: &mut StdRng| {
        (!booking.reservations.is_empty()).then(|| rng.gen_range(0..booking.reservations.len()))
    };
    let change = match (point, pick(booking, rng)) {
        (Point::Update, Some(i)) => booking.save(i, rng, history, false).await?,
        (Point::LinkRewrite, Some(i)) => booking.save(i, rng, history, true).await?,
        (Point::SoftCancel, Some(i)) => booking.toggle_active(i, rng, history).await?,
        (Point::HardDelete, Some(i)) => booking.hard_delete(i, history).await?,
        (Point::MappingAdded, _) => {
            let sql = "insert into bb_resource_outlook_item (resource_id, outlook_item_id, outlook_item_name, active) \
                       values ($1, 'moterom-fjorden@fjordvik.kommune.no', 'Møterom Fjorden', 1) \
                       on conflict (resource_id) do update set active = 1";
            booking.client().await?.execute(sql, &[&TOGGLED_ROOM]).await?;
            "room mapping of resource 5 added".to_owned()
        }
        (Point::MappingRemoved, _) => {
            let client = booking.client().await?;
            if rng.gen_bool(0.5) {
                client.execute("delete from bb_resource_outlook_item where resource_id = $1", &[&TOGGLED_ROOM]).await?;
                "room mapping of resource 5 deleted".to_owned()
            } else {
                let sql = "update bb_resource_outlook_item set active = 0 where resource_id = $1";
                client.execute(sql, &[&TOGGLED_ROOM]).await?;
                "room mapping of resource 5 deactivated".to_owned()
            }
        }
        (Point::Season, _) => booking.season(rng, history).await?,
        (Point::LargeTransaction, _) => {
            let baseline = system.process.metric("roomsync_cdc_records_produced_total").await?;
            let change = large_transaction(booking, rng).await?;
            let kill = kill_when_grown(system, "roomsync_cdc_records_produced_total", baseline).await?;
            return Ok(format!("{change}; {kill}"));
        }
        (Point::SinkWriting, _) => {
            let baseline = graph_writes(&system.emu).len();
            let change = several_events(booking, rng).await?;
            let emu = system.emu.clone();
            wait_until_every("the sink to write", Duration::from_secs(60), Duration::from_millis(5), || {
                let written = graph_writes(&emu).len();
                async move { Ok((written > baseline).then_some(())) }
            })
            .await?;
            system.process.kill().await?;
            return Ok(format!("{change}; killed once the sink had written"));
        }
        _ => booking.new_event(rng, history).await?,
    };
    let kill = kill_soon(system, rng).await?;
    Ok(format!("{change}; {kill}"))
}

/// One transaction with many rows: allocations in the past (outside the window: the point is the stream, not
/// Graph) and, last, one event inside the window, which shows whether the whole transaction was applied.
async fn large_transaction(booking: &mut BookingSystem, rng: &mut StdRng) -> anyhow::Result<String> {
    let name = format!("Stor transaksjon {}", rng.gen_range(0..1_000_000));
    let client = booking.client().await?;
    let tx = client.transaction().await?;
    // Inserted with their links, then `id_string = id` as the booking system does after an INSERT: three
    // records per allocation.
    let first: i32 = tx
        .query_one(
            "with new as (
               insert into bb_allocation (active, building_name, organization_id, from_, to_, season_id)
               select 1, 'Fjordvik idrettshall', 1 + n % 5, timestamp '2019-01-07 18:00' + n * interval '1 hour',
                      timestamp '2019-01-07 19:00' + n * interval '1 hour', 10
                 from generate_series(1, $1) n
               returning id),
             linked as (insert into bb_allocation_resource (allocation_id, resource_id) select id, 1 from new)
             select min(id) from new",
            &[&LARGE_TRANSACTION_ROWS],
        )
        .await?
        .get(0);
    tx.execute("update bb_allocation set id_string = cast(id as varchar) where id >= $1", &[&first]).await?;
    let id = insert_event(&tx, &name, 20, 2).await?;
    tx.commit().await?;
    Ok(format!("large transaction: {LARGE_TRANSACTION_ROWS} past allocations and event {id} {name:?}"))
}

/// An event `days` ahead (inside the window, in a room that stays mapped), as the booking system inserts one.
async fn insert_event(tx: &Transaction<'_>, name: &str, days: i32, resource: i32) -> anyhow::Result<i32> {
    let row = tx
        .query_one(
            "insert into bb_event (activity_id, name, organizer, description, from_, to_, building_id, building_name, \
             contact_name, contact_email, contact_phone, is_public, secret, include_in_list) \
             values (2, $1, 'Kari Nordmann', 'Kort', date_trunc('hour', localtimestamp) + make_interval(days => $2), \
             date_trunc('hour', localtimestamp) + make_interval(days => $2, hours => 2), 1, \
             'Fjordvik idrettshall', 'Kari Nordmann', 'kari@example.no', '900 00 000', 1, md5(random()::text), 1) \
             returning id",
            &[&name, &days],
        )
        .await?;
    let id: i32 = row.get(0);
    tx.execute("update bb_event set id_string = cast(id as varchar) where id = $1", &[&id]).await?;
    tx.execute("insert into bb_event_resource (event_id, resource_id) values ($1, $2)", &[&id, &resource]).await?;
    Ok(id)
}

/// Events for the sink to write: one transaction, one event per day inside the horizon, in rooms that stay mapped.
async fn several_events(booking: &mut BookingSystem, rng: &mut StdRng) -> anyhow::Result<String> {
    let first = rng.gen_range(20..120);
    let client = booking.client().await?;
    let tx = client.transaction().await?;
    let mut ids = Vec::new();
    for n in 0..SEVERAL_EVENTS {
        let resource = [1, 2, 4][usize::try_from(n).unwrap_or_default() % 3];
        ids.push(insert_event(&tx, &format!("Mange {first}-{n}"), first + n, resource).await?);
    }
    tx.commit().await?;
    Ok(format!("events {ids:?}"))
}

/// The whole test: `rounds` kills (the short version visits every point once); returns a report.
pub async fn run(seed: u64, rounds: usize) -> anyhow::Result<String> {
    let log_dir = std::env::temp_dir();
    let mut system = System::start(&log_dir).await?;
    let db = super::run::connect(system.db.url()).await?;
    let mut report = String::new();
    let initial = system.settle(&db, "the sample data to be synced").await.context("initial sync")?;
    let _ = writeln!(report, "initial sync after {initial:?}");

    let mut rng = StdRng::seed_from_u64(seed);
    let mut booking = BookingSystem::new(system.db.url());
    let mut history = History::default();
    // Reservations of the workload's own for the rounds to change.
    for _ in 0..3 {
        booking.new_event(&mut rng, &mut history).await?;
        booking.new_allocations(&mut rng, &mut history).await?;
    }
    for round in 0..rounds {
        let mut point = match POINTS.get(round) {
            Some(point) => *point,
            None => POINTS[rng.gen_range(0..POINTS.len())],
        };
        if matches!(point, Point::MappingAdded | Point::MappingRemoved) {
            // Toggle the room: add it when it is not mapped, remove it when it is.
            let mapped = "select 1 from bb_resource_outlook_item where resource_id = $1 and active = 1";
            point = if db.query_opt(mapped, &[&TOGGLED_ROOM]).await?.is_some() {
                Point::MappingRemoved
            } else {
                Point::MappingAdded
            };
        }
        let what = match strike(point, &mut system, &mut booking, &mut rng, &mut history).await {
            Ok(what) => what,
            Err(error) => {
                let diagnostics = system.diagnostics().await;
                return Err(error.context(format!("round {round} ({point:?})\n{diagnostics}")));
            }
        };
        system.process.restart().await?;
        eprintln!("crash: round {round} {point:?}: {what}");
        let took = system
            .settle(&db, "the calendars to match the oracle after the restart")
            .await
            .with_context(|| format!("round {round} ({point:?}): {what}"))?;
        let _ = writeln!(report, "round {round} {point:?}: {what}; converged {took:?} after the restart");
    }
    Ok(report)
}
