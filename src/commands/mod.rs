//! The commands of the binary, one module each.

pub mod demo;
pub mod migrate;
pub mod ops;
pub mod run;

use anyhow::Context;
use tokio_postgres::{Client, NoTls};

use crate::config::Config;

/// Connects to the booking database with the configured credentials.
pub async fn connect_database(config: &Config) -> anyhow::Result<Client> {
    let (client, connection) = crate::stages::database(config)?.connect(NoTls).await.with_context(|| {
        format!("connecting to the booking database {}", cdc_reader::config::redact_url(&config.database.url))
    })?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(error = %error, "booking database connection closed");
        }
    });
    Ok(client)
}

/// The Graph client for the configured tenant (the client secret comes from the environment or a file).
pub fn graph_client(config: &Config) -> anyhow::Result<graph_client::GraphClient> {
    graph_client::GraphClient::new(crate::stages::graph_client_config(config)?).context("creating the Graph client")
}
