//! The system under test: the in-process Graph emulator, the test's own broker, and the four stages, each a
//! real `roomsync run --stage <stage>` process run by a supervisor that restarts it when it exits or is killed,
//! as a process supervisor (systemd, Kubernetes) would. With several instances (issue #14) every stage runs that
//! many processes, sharing its consumer groups over the partitions or standing by for its role.
//!
//! ```text
//!  supervisor(stage, i) --spawns--> roomsync run --stage <stage>   (stderr: $TMPDIR/<name>-<stage>-<i>.log)
//!        ^   | kill: SIGKILL (no shutdown code runs); crash: every stage's process at once, the whole deployment
//!        +---+ exit or kill -> wait -> start again (same config, same slot, same consumer groups)
//! ```
//! Invariant: a killed stage leaves nothing running behind (its process is reaped before the next one starts),
//! so a restart meets exactly what a restarted process meets.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use graph_emulator::{serve, Emulator, TenantConfig};
use roomsync::cli::Stage;
use roomsync::config::Config;
use testkit::{unique_name, TestDatabase};
use tokio::sync::{mpsc, watch};

use super::broker::Broker;
use super::process::free_port;
use super::process::Process;

/// The Graph source's fallback polling: lost notifications cost at most this long.
pub const POLL_INTERVAL: &str = "2s";

/// How long a stage process stays down after it exited by itself, and between restarts that failed: a
/// supervisor's restart delay.
const RESTART_DELAY: Duration = Duration::from_millis(500);

/// What happened to each stage (for the report and the failure message).
#[derive(Debug, Default, Clone)]
pub struct StageLog {
    /// Kills by the fault injector.
    pub kills: usize,
    /// Exits by itself (then restarted).
    pub failures: usize,
    /// Panics (a bug; the test fails).
    pub panics: Vec<String>,
    /// The last error, shortened.
    pub last_error: Option<String>,
}

/// Shared record of stage incidents.
pub type StageLogs = Arc<Mutex<BTreeMap<&'static str, StageLog>>>;

enum Command {
    Kill { down: Duration },
}

struct Supervisor {
    stage: Stage,
    commands: mpsc::Sender<Command>,
    /// Kill commands sent to this stage's supervisors so far; the next one goes to instance `kills % n`.
    kills: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

/// The running system.
pub struct Harness {
    /// The booking database (sample data, migrations, room mappings).
    pub db: TestDatabase,
    /// The Graph tenant.
    pub emu: Emulator,
    /// Base URL of the emulator (for the admin endpoints).
    pub graph_url: String,
    /// roomsync's configuration for this run (what the stage processes are given).
    pub config: Config,
    /// The test's own broker (shared with the fault injector, which restarts it in the background).
    pub broker: Arc<tokio::sync::Mutex<Broker>>,
    /// Stage incidents.
    pub logs: StageLogs,
    _graph: GraphServer,
    supervisors: Vec<Supervisor>,
}

/// The settings both whole-system tests give roomsync on top of the test pipeline's: the window reaches the
/// sample data, webhooks on a free port with fast fallback polling, imports as mapping rows only (what the
/// oracle models).
pub fn observed_pipeline() -> anyhow::Result<Vec<(&'static str, String)>> {
    let webhook = format!("127.0.0.1:{}", free_port()?);
    Ok(vec![
        // The sample data lies in March-June 2026, the autumn change of 2026 is behind us and the spring change of
        // 2027 ahead: all of it inside the window.
        ("ROOMSYNC__SYNC__WINDOW_PAST", "400days".to_owned()),
        ("ROOMSYNC__GRAPH_SOURCE__POLL_INTERVAL", POLL_INTERVAL.to_owned()),
        // Full rounds over a fresh window every 30 s (daily in production): an Outlook booking that ended during
        // the run is reported gone by them, as it is a day after a meeting in production.
        ("ROOMSYNC__GRAPH_SOURCE__WINDOW_REFRESH", "30s".to_owned()),
        ("ROOMSYNC__WEBHOOKS__PUBLIC_URL", format!("http://{webhook}")),
        ("ROOMSYNC__WEBHOOKS__LISTEN", webhook),
        ("ROOMSYNC__GRAPH_SINK__IMPORT_BB_EVENTS", "false".to_owned()),
    ])
}

/// A fresh copy of the booking database with roomsync's tables, the local room mappings, and `prepare` run.
pub async fn booking_database(prepare: &str) -> anyhow::Result<TestDatabase> {
    let db = TestDatabase::create().await?;
    let mut client = db.connect().await?;
    migrations::apply(&mut client).await?;
    client.batch_execute(include_str!("../../fixtures/local/room_mappings.sql")).await?;
    client.batch_execute(prepare).await.context("preparing the booking data")?;
    Ok(db)
}

/// The Graph emulator with the local tenant, served on a free loopback port until dropped.
pub struct GraphServer {
    /// The tenant's state.
    pub emu: Emulator,
    /// Its base URL.
    pub url: String,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl GraphServer {
    /// Serves a fresh tenant (fixtures/emulator/tenant.toml).
    pub async fn start() -> anyhow::Result<GraphServer> {
        let tenant = TenantConfig::load(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/emulator/tenant.toml"))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let emu = Emulator::new(tenant);
        let (stop, mut stopped) = watch::channel(false);
        let served = emu.clone();
        let task = tokio::spawn(async move {
            let _ = serve(listener, served, async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await;
        });
        Ok(GraphServer { emu, url, stop, task })
    }
}

impl Drop for GraphServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.task.abort();
    }
}

/// Notes that `stage`'s process exited by itself: a failure, or a panic (exit status 101), with its log's tail.
fn note_exit(logs: &StageLogs, stage: Stage, process: &Process, status: std::process::ExitStatus) {
    let mut logs = logs.lock().unwrap_or_else(|e| e.into_inner());
    let log = logs.entry(stage.name()).or_default();
    let tail = process.log_tail(3);
    if status.code() == Some(101) || tail.contains("panicked") {
        log.panics.push(format!("{} panicked: {tail}", stage.name()));
    } else {
        log.failures += 1;
        log.last_error = Some(format!("{status}: {tail}").chars().take(300).collect());
    }
}

async fn supervise(mut process: Process, stage: Stage, mut commands: mpsc::Receiver<Command>, logs: StageLogs) {
    loop {
        let down = tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Kill { down }) => {
                    if process.kill().await.is_ok() {
                        logs.lock().unwrap_or_else(|e| e.into_inner()).entry(stage.name()).or_default().kills += 1;
                    }
                    down
                }
                None => {
                    let _ = process.kill().await;
                    return;
                }
            },
            status = process.exited() => {
                note_exit(&logs, stage, &process, status);
                RESTART_DELAY
            }
        };
        // Kept down for the fault's duration (or the restart delay), then started again.
        tokio::time::sleep(down).await;
        while let Err(error) = process.restart().await {
            {
                let mut logs = logs.lock().unwrap_or_else(|e| e.into_inner());
                let log = logs.entry(stage.name()).or_default();
                log.failures += 1;
                log.last_error = Some(format!("restart: {error:#}").chars().take(300).collect());
            }
            // Paced like a supervisor (systemd's RestartSec): nothing signals when a start could succeed, and a
            // restart that fails at once must not spin a worker thread.
            tokio::time::sleep(RESTART_DELAY).await;
        }
    }
}

impl Harness {
    /// Starts the emulator, the broker and `instances` processes of every stage on a fresh copy of the booking
    /// database; `prepare` runs on the database before any stage starts. With more than one instance the topics
    /// get 6 partitions and consumer sessions time out after 6 s, so a killed member's partitions move on soon.
    pub async fn start(prepare: &str, instances: usize) -> anyhow::Result<Harness> {
        let db = booking_database(prepare).await?;
        let graph = GraphServer::start().await?;
        let (emu, graph_url) = (graph.emu.clone(), graph.url.clone());
        let broker = Broker::start().await?;
        let name = unique_name("chaos");
        let mut extra = observed_pipeline()?;
        extra.extend([
            // One instance per stage, as `roomsync run`: a member left without partitions by a broker crash
            // (tansu, F7) rejoins its group.
            ("ROOMSYNC__KAFKA__REJOIN_UNASSIGNED_AFTER", "60s".to_owned()),
            // The periodic reconciliation at its shortest: it repairs what no notification and no delta round
            // can report, an event roomsync created and somebody deleted between two delta rounds (F11).
            ("ROOMSYNC__RECONCILE__INTERVAL", "1m".to_owned()),
        ]);
        if instances > 1 {
            extra.extend([
                ("ROOMSYNC__KAFKA__PARTITIONS", "6".to_owned()),
                ("ROOMSYNC__KAFKA__PROPERTIES__session.timeout.ms", "6000".to_owned()),
            ]);
        }
        let env = crate::support::pipeline_env(db.url(), &broker.bootstrap(), &graph_url, &name, &extra);
        let config = crate::support::pipeline_config(db.url(), &broker.bootstrap(), &graph_url, &name, &extra)?;
        let logs = StageLogs::default();
        let mut supervisors = Vec::new();
        for stage in Stage::ALL {
            let kills = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            for instance in 0..instances.max(1) {
                let log = std::env::temp_dir().join(format!("{name}-{}-{instance}.log", stage.name()));
                let process = Process::start(&["run", "--stage", stage.name()], env.clone(), &log).await?;
                let (commands, receiver) = mpsc::channel(4);
                let task = tokio::spawn(supervise(process, stage, receiver, logs.clone()));
                supervisors.push(Supervisor { stage, commands, kills: Arc::clone(&kills), task });
            }
        }
        let broker = Arc::new(tokio::sync::Mutex::new(broker));
        Ok(Harness { db, emu, graph_url, config, broker, logs, _graph: graph, supervisors })
    }

    /// Kills one of `stage`'s processes (SIGKILL; with several instances, each in turn) and lets its supervisor
    /// start it again after `down`.
    pub async fn kill(&self, stage: Stage, down: Duration) {
        let instances: Vec<&Supervisor> = self.supervisors.iter().filter(|s| s.stage == stage).collect();
        let Some(first) = instances.first() else { return };
        let turn = first.kills.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % instances.len();
        let _ = instances[turn].commands.send(Command::Kill { down }).await;
    }

    /// Kills every stage's process at once (the whole deployment lost: power, host, OOM) and starts them all
    /// again after `down`.
    pub async fn crash(&self, down: Duration) {
        for supervisor in &self.supervisors {
            let _ = supervisor.commands.try_send(Command::Kill { down });
        }
    }

    /// Kills every stage's process and waits until each is gone (before the database is dropped).
    pub async fn shutdown(&mut self) {
        for supervisor in std::mem::take(&mut self.supervisors) {
            drop(supervisor.commands);
            let _ = tokio::time::timeout(Duration::from_secs(30), supervisor.task).await;
        }
    }

    /// A copy of the stage incidents so far.
    pub fn stage_logs(&self) -> BTreeMap<&'static str, StageLog> {
        self.logs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        for supervisor in &self.supervisors {
            supervisor.task.abort();
        }
    }
}
