//! The pipeline under load: its own database (the booking schema and sample data plus `rooms` bench rooms),
//! an in-process Graph emulator whose tenant holds those rooms, and the four stages, either started in this
//! process with the settings `roomsync run` gives them (as tests/pipeline.rs does) or as `roomsync run` child
//! processes sharing the work as several instances do (the README's "Running several instances").

use std::time::Duration;

use graph_emulator::{serve, Emulator, RoomConfig, TenantConfig};
use roomsync::cli::Stage;
use roomsync::stages;
use testkit::municipality::{self, Sizes, Summary};
use testkit::{unique_name, TestDatabase};
use tokio::sync::watch;

use crate::broker::Broker;
use crate::process::Process;

/// First `bb_resource.id` of the bench rooms (the sample data uses small ids).
pub const FIRST_RESOURCE: i32 = 1001;
/// The activity every bench event belongs to (exists in the sample data).
pub const ACTIVITY: i32 = 17;

/// The mailbox of bench room `index`.
pub fn mailbox(index: usize) -> String {
    format!("bench-room-{index:03}@fjordvik.kommune.no")
}

/// The `bb_resource.id` of bench room `index`.
pub fn resource(index: usize) -> i32 {
    FIRST_RESOURCE + i32::try_from(index).unwrap_or(i32::MAX - FIRST_RESOURCE)
}

/// Where the stages run.
#[derive(Debug, Clone, Copy)]
pub enum Deployment {
    /// Every stage in this process, on topics of one partition.
    InProcess,
    /// `count` processes of the real binary (`roomsync run`, every stage), on topics of `partitions` partitions.
    Processes { count: usize, partitions: usize },
}

/// The running pipeline; dropping it stops every stage (child processes are killed).
pub struct Pipeline {
    pub db: TestDatabase,
    pub emu: Emulator,
    /// Topic prefix of this run.
    pub prefix: String,
    /// Kafka bootstrap servers (of the run's own broker).
    pub kafka: String,
    /// The `roomsync run` processes ([`Deployment::Processes`]).
    pub processes: Vec<Process>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Dropped last, after every stage.
    _broker: Broker,
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The municipality under the bench rooms (`--municipality`): its size, and what the load wrote.
pub struct Base {
    pub sizes: Sizes,
    pub size_name: String,
    pub summary: Option<Summary>,
    /// Every roomsync event the calendars hold once the first load is done (bench seeds included).
    pub expected_events: usize,
    pub load_seconds: f64,
}

fn tenant(rooms: usize) -> TenantConfig {
    let mut tenant = TenantConfig {
        tenant_id: "00000000-0000-0000-0000-00000000f00d".into(),
        client_id: "roomsync-local".into(),
        client_secret: "roomsync-local-secret".into(),
        ..TenantConfig::default()
    };
    tenant.rooms = (0..rooms)
        .map(|i| RoomConfig {
            capacity: Some(20),
            building: Some("Fjordvik idrettshall".into()),
            ..RoomConfig::new(
                format!("00000000-0000-0000-0000-{:012}", 1000 + i),
                mailbox(i),
                format!("Bench room {i}"),
            )
        })
        .collect();
    tenant
}

/// Every roomsync item the calendars must hold, by the oracle, under the sync settings `roomsync run` defaults to
/// (the ones this benchmark runs with).
async fn expected_events(client: &tokio_postgres::Client) -> anyhow::Result<usize> {
    let rules = crate::municipality_setup::rules(&roomsync::config::SyncConfig::default())?;
    Ok(testkit::oracle::calendars(client, rules).await?.items.values().map(|items| items.len()).sum())
}

/// How the graph source learns of Outlook changes in the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Every room mailbox polled every 5 s, no webhooks.
    Polling,
    /// Change notifications from the emulator to each instance's webhook receiver, with the default fallback
    /// polling (every 5 minutes): the production shape.
    Webhooks,
}

impl Notice {
    /// As the report names it.
    pub fn describe(self) -> &'static str {
        match self {
            Notice::Polling => "polling every room mailbox every 5 s",
            Notice::Webhooks => "change notifications (webhooks), fallback polling every 5 min (the default)",
        }
    }
}

/// A webhook receiver's settings on a free loopback port.
fn webhook_env() -> anyhow::Result<Vec<(&'static str, String)>> {
    let listen = format!("127.0.0.1:{}", crate::process::free_port()?);
    Ok(vec![("ROOMSYNC__WEBHOOKS__PUBLIC_URL", format!("http://{listen}")), ("ROOMSYNC__WEBHOOKS__LISTEN", listen)])
}

/// Creates the database with the bench rooms and their mappings (on a generated municipality when `base` is
/// given), runs `seed` on it (the reservations that exist before roomsync starts), then starts the emulator and
/// the four stages as `deployment` says, the graph source learning of changes as `notice` says.
pub async fn start(
    rooms: usize,
    seed: &str,
    deployment: Deployment,
    base: Option<&mut Base>,
    notice: Notice,
) -> anyhow::Result<Pipeline> {
    let db = TestDatabase::create().await?;
    let mut client = db.connect().await?;
    migrations::apply(&mut client).await?;
    let mut base = base;
    if let Some(base) = base.as_mut() {
        let started = std::time::Instant::now();
        let today = chrono::Utc::now().date_naive();
        base.summary = Some(municipality::load(&client, &base.sizes, 1, today).await?);
        base.load_seconds = started.elapsed().as_secs_f64();
        eprintln!("municipality ({}) loaded in {:.1} s", base.size_name, base.load_seconds);
    }
    let mut sql = String::from("begin;\n");
    for i in 0..rooms {
        let (id, name) = (resource(i), format!("Bench room {i}"));
        sql.push_str(&format!(
            "insert into bb_resource (id, active, name, activity_id, sort) values ({id}, 1, '{name}', {ACTIVITY}, {i});
             insert into bb_building_resource (building_id, resource_id) values (1, {id});
             insert into bb_resource_outlook_item (resource_id, outlook_item_id, outlook_item_name, active)
                 values ({id}, '{}', '{name}', 1);\n",
            mailbox(i)
        ));
    }
    sql.push_str(seed);
    sql.push_str("commit;");
    client.batch_execute(&sql).await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let graph = format!("http://{}", listener.local_addr()?);
    let mut tenant = tenant(rooms);
    if let Some(base) = base {
        base.expected_events = expected_events(&client).await?;
        tenant.rooms.extend(base.summary.as_ref().map(crate::municipality_setup::rooms).unwrap_or_default());
    }
    let emu = Emulator::new(tenant);
    let (stop_all, stopped) = watch::channel(false);
    let shutdown = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let mut tasks = vec![tokio::spawn({
        let emu = emu.clone();
        let stop = shutdown();
        async move {
            let _ = serve(listener, emu, stop).await;
        }
    })];

    let name = unique_name("bench");
    let mut extra = match notice {
        Notice::Polling => vec![("ROOMSYNC__GRAPH_SOURCE__POLL_INTERVAL", "5s".to_owned())],
        Notice::Webhooks => Vec::new(),
    };
    // A broker of the run's own: tansu's sqlite storage gets slower the more it holds, so the stack's broker,
    // filled by earlier runs, would measure its own history (benches/README.md).
    let broker = Broker::start().await?;
    let kafka = broker.bootstrap();
    let mut processes = Vec::new();
    match deployment {
        Deployment::InProcess => {
            if notice == Notice::Webhooks {
                extra.extend(webhook_env()?);
            }
            let config = crate::support::pipeline_config(db.url(), &kafka, &graph, &name, &extra)?;
            for stage in Stage::ALL {
                let task = stages::start(&config, stage, shutdown())?;
                tasks.push(tokio::spawn(async move {
                    if let Err(error) = task.await {
                        eprintln!("{} failed: {error:#}", stage.name());
                    }
                }));
            }
        }
        Deployment::Processes { count, partitions } => {
            extra.push(("ROOMSYNC__KAFKA__PARTITIONS", partitions.to_string()));
            for instance in 0..count {
                // Each instance its own receiver: whichever holds the graph source's role subscribes with its URL.
                let mut env = crate::support::pipeline_env(db.url(), &kafka, &graph, &name, &extra);
                if notice == Notice::Webhooks {
                    env.extend(webhook_env()?.into_iter().map(|(k, v)| (k.to_owned(), v)));
                }
                let log = std::env::temp_dir().join(format!("{name}-{instance}.log"));
                eprintln!("instance {instance}: roomsync run, log {}", log.display());
                processes.push(Process::start(&["run"], env, &log).await?);
            }
        }
    }
    Ok(Pipeline { db, emu, prefix: name, kafka, processes, stop: stop_all, tasks, _broker: broker })
}

/// How long the initial snapshot may take before the run is given up.
pub const SNAPSHOT_DEADLINE: Duration = Duration::from_secs(180);
