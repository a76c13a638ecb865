//! `roomsync status | rooms | mappings ... | conflicts ...`: print what [`crate::ops`] reads and changes.

use anyhow::Context;

use crate::cli::{ConflictAction, MappingAction};
use crate::config::Config;
use crate::ops::{conflicts, room_mappings, status};

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
    let report = reconcile::reconcile(&settings, &reconcile::Options { dry_run, rooms }).await?;
    println!("{report}");
    Ok(())
}

/// `roomsync retry`.
pub async fn retry(config: &Config, options: reconcile::RetryOptions) -> anyhow::Result<()> {
    let settings = crate::stages::reconcile(config)?;
    let report = reconcile::retry_parked(&settings, &options).await?;
    print!("{report}");
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
