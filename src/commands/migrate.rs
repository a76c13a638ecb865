//! `roomsync migrate`: create or update roomsync's own tables.

use tracing::info;

use crate::config::Config;

/// Applies the pending migrations and reports what was done.
pub async fn run(config: &Config) -> anyhow::Result<()> {
    let mut client = super::connect_database(config).await?;
    let applied = migrations::apply(&mut client).await?;
    if applied.is_empty() {
        info!("roomsync tables are up to date");
    } else {
        info!(versions = ?applied, "applied migrations");
    }
    Ok(())
}
