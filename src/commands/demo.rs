//! `roomsync demo`: the whole pipeline on the sample booking data, with the room calendars printed as they
//! fill up. It starts the local stack (`scripts/stack up`) when it is not running, maps the sample resources to
//! the emulator's rooms, runs every stage, and stops the stack again on Ctrl-C if it started it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use tracing::info;

use crate::config::Config;

/// The repository's stack script (the demo is a developer command run from a checkout).
const STACK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/stack");

/// The local stack's settings, used when no config file is given.
pub const LOCAL_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/local.toml");

/// The emulator tenant's client secret (fixtures/emulator/tenant.toml), a test value with no power anywhere.
const EMULATOR_SECRET: &str = "roomsync-local-secret";

/// The sample resources' room mappings.
const ROOM_MAPPINGS: &str = include_str!("../../fixtures/local/room_mappings.sql");

/// Runs the demo until Ctrl-C.
pub async fn run(config: &Config) -> anyhow::Result<()> {
    let mut config = config.clone();
    if config.graph.client_secret.is_none() {
        config.graph.client_secret = Some(crate::secret::Secret::new(EMULATOR_SECRET));
    }
    let config = &config;
    let started = if stack(&["status"])?.contains("postgres  running") {
        false
    } else {
        println!("starting the local stack (scripts/stack up) ...");
        stack(&["up"])?;
        true
    };
    let outcome = run_pipeline(config).await;
    if started {
        stack(&["down"])?;
    }
    outcome
}

async fn run_pipeline(config: &Config) -> anyhow::Result<()> {
    super::migrate::run(config).await?;
    let client = super::connect_database(config).await?;
    client.batch_execute(ROOM_MAPPINGS).await.context("mapping the sample resources to the emulator's rooms")?;
    let rooms: Vec<String> = crate::ops::room_mappings::list(&client)
        .await?
        .into_iter()
        .filter(|mapping| mapping.active)
        .map(|mapping| mapping.mailbox)
        .collect();
    let emulator = config.graph.base_url.trim_end_matches('/').trim_end_matches("/v1.0").to_owned();
    let display = tokio::spawn(show_calendars(emulator, rooms));
    info!("demo: the sample data flows into the room calendars; change rows in the booking database and watch");
    let outcome = super::run::run(config, &[]).await;
    display.abort();
    outcome
}

/// Prints the number of events per room calendar whenever it changes.
async fn show_calendars(emulator: String, rooms: Vec<String>) {
    let http = reqwest::Client::new();
    let mut shown: BTreeMap<String, usize> = BTreeMap::new();
    loop {
        let mut now = BTreeMap::new();
        for room in &rooms {
            let url = format!("{emulator}/_emulator/mailboxes/{room}/events");
            let count = match http.get(&url).send().await {
                Ok(response) => response
                    .json::<serde_json::Value>()
                    .await
                    .ok()
                    .map(|body| body.get("value").or(Some(&body)).and_then(|v| v.as_array()).map_or(0, Vec::len)),
                Err(_) => None,
            };
            if let Some(count) = count {
                now.insert(room.clone(), count);
            }
        }
        if now != shown {
            println!("room calendars:");
            for (room, count) in &now {
                println!("  {room:<45} {count:>4} events");
            }
            shown = now;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

fn stack(args: &[&str]) -> anyhow::Result<String> {
    anyhow::ensure!(Path::new(STACK).exists(), "roomsync demo runs from a checkout of the repository ({STACK})");
    let output = std::process::Command::new(STACK)
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running scripts/stack {}", args.join(" ")))?;
    anyhow::ensure!(output.status.success(), "scripts/stack {} failed", args.join(" "));
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
