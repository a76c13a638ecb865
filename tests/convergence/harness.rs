//! The system under test: the in-process Graph emulator, the test's own broker, and the four stages, each run by
//! a supervisor that restarts it when it fails or is killed, as a process supervisor (systemd, Kubernetes)
//! would restart `roomsync run --stage ...`.
//!
//! ```text
//!  supervisor(stage) --spawns--> thread + own tokio runtime --runs--> stages::start(config, stage)
//!        ^   | kill: the runtime is dropped, which drops every task the stage spawned (like a killed process)
//!        +---+ failure or kill -> wait -> start again (same config, same slot, same consumer groups)
//! ```
//! Invariant: a killed stage leaves nothing running behind (its runtime with all its tasks, connections and
//! listeners is gone), so a restart meets exactly what a restarted process would meet.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use graph_emulator::{serve, Emulator, TenantConfig};
use roomsync::cli::Stage;
use roomsync::config::Config;
use roomsync::stages;
use testkit::{unique_name, TestDatabase};
use tokio::sync::{mpsc, oneshot, watch};

use super::broker::{free_port, Broker};

/// The Graph source's fallback polling: lost notifications cost at most this long.
pub const POLL_INTERVAL: &str = "2s";

/// What happened to each stage (for the report and the failure message).
#[derive(Debug, Default, Clone)]
pub struct StageLog {
    /// Kills by the fault injector.
    pub kills: usize,
    /// Returns with an error (then restarted).
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
    /// roomsync's configuration for this run.
    pub config: Config,
    /// The test's own broker (shared with the fault injector, which restarts it in the background).
    pub broker: Arc<tokio::sync::Mutex<Broker>>,
    /// Stage incidents.
    pub logs: StageLogs,
    emulator_stop: watch::Sender<bool>,
    emulator_task: tokio::task::JoinHandle<()>,
    supervisors: Vec<Supervisor>,
}

/// Runs one incarnation of a stage on its own thread and runtime until it returns or `kill` fires. `None` means
/// killed; a panic surfaces as a dropped sender.
fn incarnation(config: Config, stage: Stage, kill: oneshot::Receiver<()>) -> oneshot::Receiver<Option<String>> {
    let (done, outcome) = oneshot::channel();
    let spawned = std::thread::Builder::new().name(format!("chaos-{}", stage.name())).spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() else {
            let _ = done.send(Some("could not build a runtime".to_owned()));
            return;
        };
        let result = runtime.block_on(async move {
            // The stage is never shut down gracefully here: the harness kills it or the test ends.
            let task = match stages::start(&config, stage, std::future::pending()) {
                Ok(task) => task,
                Err(error) => return Some(Some(format!("{error:#}"))),
            };
            tokio::select! {
                result = task => Some(Some(match result {
                    Ok(()) => "returned without being asked to stop".to_owned(),
                    Err(error) => format!("{error:#}"),
                })),
                _ = kill => None,
            }
        });
        // Dropping the runtime without waiting: every task of the stage is dropped, like a killed process.
        runtime.shutdown_background();
        let _ = done.send(result.flatten());
    });
    if spawned.is_err() {
        let (done, outcome) = oneshot::channel();
        let _ = done.send(Some("could not spawn a thread".to_owned()));
        return outcome;
    }
    outcome
}

async fn supervise(config: Config, stage: Stage, mut commands: mpsc::Receiver<Command>, logs: StageLogs) {
    loop {
        let (kill, killed) = oneshot::channel();
        let mut outcome = incarnation(config.clone(), stage, killed);
        let down = tokio::select! {
            result = &mut outcome => {
                let mut logs = logs.lock().unwrap_or_else(|e| e.into_inner());
                let log = logs.entry(stage.name()).or_default();
                match result {
                    Ok(Some(error)) => {
                        log.failures += 1;
                        log.last_error = Some(error.chars().take(300).collect());
                    }
                    Ok(None) => {}
                    Err(_) => log.panics.push(format!("{} panicked", stage.name())),
                }
                // A supervisor's restart delay.
                Duration::from_millis(500)
            }
            command = commands.recv() => {
                let _ = kill.send(());
                let _ = outcome.await;
                match command {
                    Some(Command::Kill { down }) => {
                        logs.lock().unwrap_or_else(|e| e.into_inner()).entry(stage.name()).or_default().kills += 1;
                        down
                    }
                    None => return,
                }
            }
        };
        tokio::time::sleep(down).await;
    }
}

impl Harness {
    /// Starts the emulator, the broker and every stage on a fresh copy of the booking database; `prepare` runs
    /// on the database before any stage starts.
    pub async fn start(prepare: &str) -> anyhow::Result<Harness> {
        let db = TestDatabase::create().await?;
        let mut client = db.connect().await?;
        migrations::apply(&mut client).await?;
        client.batch_execute(include_str!("../../fixtures/local/room_mappings.sql")).await?;
        client.batch_execute(prepare).await.context("preparing the booking data")?;

        let tenant = TenantConfig::load(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/emulator/tenant.toml"))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let graph_url = format!("http://{}", listener.local_addr()?);
        let emu = Emulator::new(tenant);
        let (emulator_stop, mut stopped) = watch::channel(false);
        let served = emu.clone();
        let emulator_task = tokio::spawn(async move {
            let _ = serve(listener, served, async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await;
        });

        let broker = Broker::start().await?;
        let name = unique_name("chaos");
        let webhook = format!("127.0.0.1:{}", free_port()?);
        let extra = [
            // The sample data lies in March-June 2026, the autumn change of 2026 is behind us and the spring
            // change of 2027 ahead: all of it inside the window.
            ("ROOMSYNC__SYNC__WINDOW_PAST", "400days".to_owned()),
            ("ROOMSYNC__GRAPH_SOURCE__POLL_INTERVAL", POLL_INTERVAL.to_owned()),
            ("ROOMSYNC__WEBHOOKS__PUBLIC_URL", format!("http://{webhook}")),
            ("ROOMSYNC__WEBHOOKS__LISTEN", webhook),
            ("ROOMSYNC__GRAPH_SINK__IMPORT_BB_EVENTS", "false".to_owned()),
            // One instance per stage, as `roomsync run`: a member left without partitions by a broker crash
            // (tansu, F7) rejoins its group.
            ("ROOMSYNC__KAFKA__REJOIN_UNASSIGNED_AFTER", "60s".to_owned()),
            // The periodic reconciliation at its shortest: it repairs what no notification and no delta round
            // can report, an event roomsync created and somebody deleted between two delta rounds (F11).
            ("ROOMSYNC__RECONCILE__INTERVAL", "1m".to_owned()),
        ];
        let config = crate::support::pipeline_config(db.url(), &broker.bootstrap(), &graph_url, &name, &extra)?;

        let logs = StageLogs::default();
        let supervisors = Stage::ALL
            .into_iter()
            .map(|stage| {
                let (commands, receiver) = mpsc::channel(4);
                let task = tokio::spawn(supervise(config.clone(), stage, receiver, logs.clone()));
                Supervisor { stage, commands, task }
            })
            .collect();
        let broker = Arc::new(tokio::sync::Mutex::new(broker));
        Ok(Harness { db, emu, graph_url, config, broker, logs, emulator_stop, emulator_task, supervisors })
    }

    /// Kills `stage` (its whole runtime) and lets its supervisor start it again after `down`.
    pub async fn kill(&self, stage: Stage, down: Duration) {
        if let Some(supervisor) = self.supervisors.iter().find(|s| s.stage == stage) {
            let _ = supervisor.commands.send(Command::Kill { down }).await;
        }
    }

    /// Stops every stage and waits until each has let go of its connections (before the database is dropped).
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
        let _ = self.emulator_stop.send(true);
        self.emulator_task.abort();
    }
}
