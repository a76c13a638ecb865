//! The pipeline under load: its own database (the booking schema and sample data plus `rooms` bench rooms),
//! an in-process Graph emulator whose tenant holds those rooms, and the four stages started with the settings
//! `roomsync run` gives them (as tests/pipeline.rs does).

use std::time::Duration;

use graph_emulator::{serve, Emulator, RoomConfig, TenantConfig};
use roomsync::cli::Stage;
use roomsync::stages;
use testkit::{unique_name, Stack, TestDatabase};
use tokio::sync::watch;

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

/// The running pipeline; dropping it stops every stage.
pub struct Pipeline {
    pub db: TestDatabase,
    pub emu: Emulator,
    /// Topic prefix of this run.
    pub prefix: String,
    /// Kafka bootstrap servers.
    pub kafka: String,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for task in &self.tasks {
            task.abort();
        }
    }
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

/// Creates the database with the bench rooms and their mappings, runs `seed` on it (the reservations that exist
/// before roomsync starts), then starts the emulator and the four stages.
pub async fn start(rooms: usize, seed: &str) -> anyhow::Result<Pipeline> {
    let db = TestDatabase::create().await?;
    let mut client = db.connect().await?;
    migrations::apply(&mut client).await?;
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
    let emu = Emulator::new(tenant(rooms));
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
    let extra = [("ROOMSYNC__GRAPH_SOURCE__POLL_INTERVAL", "5s".to_owned())];
    let kafka = Stack::from_env().kafka;
    let config = crate::support::pipeline_config(db.url(), &kafka, &graph, &name, &extra)?;

    for stage in Stage::ALL {
        let task = stages::start(&config, stage, shutdown())?;
        tasks.push(tokio::spawn(async move {
            if let Err(error) = task.await {
                eprintln!("{} failed: {error:#}", stage.name());
            }
        }));
    }
    Ok(Pipeline { db, emu, prefix: name, kafka, stop: stop_all, tasks })
}

/// How long the initial snapshot may take before the run is given up.
pub const SNAPSHOT_DEADLINE: Duration = Duration::from_secs(180);
