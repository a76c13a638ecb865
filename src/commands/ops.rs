//! `roomsync status | rooms | mappings ... | conflicts ... | reconcile | retry | backfill`: print what
//! [`crate::ops`] and the reconciler read and change; long work shows a spinner on a terminal (stderr).

use anyhow::Context;

use crate::cli::{ConflictAction, MappingAction};
use crate::config::Config;
use crate::ops::{backfill as backfills, conflicts, room_mappings, status};

/// A spinner on stderr with `message` and the elapsed time; hidden when stderr is not a terminal.
fn spinner(message: impl Into<std::borrow::Cow<'static, str>>) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner().with_message(message);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// `roomsync backfill`: records the request; with `wait`, waits for the CDC reader to finish it.
pub async fn backfill(
    config: &Config,
    tables: &[String],
    resources: &[i32],
    wait: Option<std::time::Duration>,
) -> anyhow::Result<()> {
    let client = super::connect_database(config).await?;
    let captured = super::run::captured_tables(config);
    let request = backfills::request(&client, &config.cdc.schema, &captured, tables, resources).await?;
    println!("backfill {} requested", request.id);
    let Some(timeout) = wait else { return Ok(()) };
    let bar = spinner(format!("waiting for the CDC reader to copy backfill {}", request.id));
    let deadline = tokio::time::Instant::now() + timeout;
    let done = loop {
        let current = backfills::get(&client, request.id).await?;
        if current.done_at.is_some() {
            break current;
        }
        if tokio::time::Instant::now() >= deadline {
            bar.finish_and_clear();
            anyhow::bail!(
                "backfill {} is still waiting after {}: is the CDC reader running (`roomsync run`)? The request \
                 stays recorded and runs when the reader streams it; `roomsync backfill` does not need to be repeated",
                request.id,
                humantime_serde::re::humantime::format_duration(timeout)
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    bar.finish_and_clear();
    match (&done.error, done.rows) {
        (Some(error), _) => anyhow::bail!("backfill {} failed: {error}", done.id),
        (None, rows) => println!("backfill {} done: {} rows copied into the topics", done.id, rows.unwrap_or(0)),
    }
    Ok(())
}

/// `roomsync status`.
pub async fn status(config: &Config, json: bool) -> anyhow::Result<()> {
    let client = super::connect_database(config).await?;
    let status = status::read(&client, &config.cdc.slot).await.context("reading status")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    match &status.slot {
        Some(slot) => println!(
            "cdc slot {}: {}, confirmed {}, lag {} bytes, retained WAL {} bytes, wal_status {}",
            slot.name,
            if slot.active { "active" } else { "INACTIVE" },
            slot.confirmed_flush_lsn.as_deref().unwrap_or("-"),
            slot.lag_bytes.map_or("-".into(), |b| b.to_string()),
            slot.retained_wal_bytes.map_or("-".into(), |b| b.to_string()),
            slot.wal_status.as_deref().unwrap_or("-"),
        ),
        None => println!("cdc slot {}: not created yet", config.cdc.slot),
    }
    for stage in &status.stages {
        let state = if stage.gone {
            format!("gone (last seen {})", stage.updated_at.to_rfc3339())
        } else {
            stage.state.to_uppercase()
        };
        println!(
            "{} {}: {state} since {}{}",
            stage.stage,
            stage.instance,
            stage.since.to_rfc3339(),
            stage.detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
        );
    }
    let items: Vec<String> = status.items_by_status.iter().map(|(s, n)| format!("{s} {n}")).collect();
    println!("items: {}", if items.is_empty() { "none".into() } else { items.join(", ") });
    println!("open conflicts: {}", status.open_conflicts);
    println!("rooms:");
    for room in &status.rooms {
        println!(
            "  {:>5}  {:<40} {:<8} items {:>5}  errors {:>3}  last round {}",
            room.resource_id,
            room.mailbox,
            if room.active { "active" } else { "inactive" },
            room.items,
            room.errors,
            room.last_round_at.map_or("never".into(), |t| t.to_rfc3339()),
        );
    }
    for error in &status.recent_errors {
        println!("  error {} {}: {}", error.mailbox, error.item_key, error.error.as_deref().unwrap_or("-"));
    }
    Ok(())
}

/// `roomsync reconcile`.
pub async fn reconcile(config: &Config, dry_run: bool, rooms: Vec<String>) -> anyhow::Result<()> {
    let settings = crate::stages::reconcile(config)?;
    let bar = spinner("comparing room calendars with the desired state");
    let report = reconcile::reconcile(&settings, &reconcile::Options { dry_run, rooms }).await;
    bar.finish_and_clear();
    println!("{}", report?);
    Ok(())
}

/// `roomsync retry`.
pub async fn retry(config: &Config, options: reconcile::RetryOptions) -> anyhow::Result<()> {
    let settings = crate::stages::reconcile(config)?;
    let bar = spinner("retrying parked items");
    let report = reconcile::retry_parked(&settings, &options).await;
    bar.finish_and_clear();
    print!("{}", report?);
    Ok(())
}

/// `roomsync rooms`.
pub async fn rooms(config: &Config) -> anyhow::Result<()> {
    let graph = super::graph_client(config)?;
    let rooms = graph.list_rooms().await.context("listing rooms through Graph /places")?;
    for room in rooms {
        println!(
            "{:<45} {:<30} capacity {:>4}  {}",
            room.email_address,
            room.display_name,
            room.capacity.map_or("-".into(), |c| c.to_string()),
            room.building.unwrap_or_default(),
        );
    }
    Ok(())
}

/// `roomsync mappings ...`.
pub async fn mappings(config: &Config, action: MappingAction) -> anyhow::Result<()> {
    let client = super::connect_database(config).await?;
    let changed = match action {
        MappingAction::List => {
            for m in room_mappings::list(&client).await? {
                print_mapping(&m);
            }
            return Ok(());
        }
        MappingAction::Add { resource, mailbox, name } => {
            room_mappings::upsert(&client, resource, &mailbox, name.as_deref()).await?
        }
        MappingAction::Disable { resource } => room_mappings::set_active(&client, resource, false).await?,
        MappingAction::Enable { resource } => room_mappings::set_active(&client, resource, true).await?,
    };
    print_mapping(&changed);
    Ok(())
}

fn print_mapping(m: &room_mappings::RoomMapping) {
    println!(
        "{:>5}  {:<30} -> {:<45} {}",
        m.resource_id,
        m.resource_name.as_deref().unwrap_or("(unknown resource)"),
        m.mailbox,
        if m.active { "active" } else { "inactive" }
    );
}

/// `roomsync conflicts ...`.
pub async fn conflicts(config: &Config, action: ConflictAction) -> anyhow::Result<()> {
    let client = super::connect_database(config).await?;
    match action {
        ConflictAction::List { all } => {
            for c in conflicts::list(&client, all).await? {
                let declined = match (&c.declined_at, &c.decline_error) {
                    (Some(at), _) => format!("  declined in outlook {}", at.to_rfc3339()),
                    (None, Some(error)) => format!("  decline refused: {error}"),
                    (None, None) => String::new(),
                };
                println!(
                    "{:>6}  {:<8} {:<35} {} {}..{}  outlook {}  vs {} {}{declined}",
                    c.id,
                    c.status,
                    c.mailbox,
                    c.detected_at.format("%Y-%m-%d"),
                    c.starts_at.to_rfc3339(),
                    c.ends_at.to_rfc3339(),
                    c.outlook_event_id,
                    c.reservation_type,
                    c.reservation_id
                );
            }
        }
        ConflictAction::Resolve { id, note } => {
            anyhow::ensure!(conflicts::resolve(&client, id, &note).await?, "no unresolved conflict with id {id}");
            println!("conflict {id} resolved");
        }
    }
    Ok(())
}
