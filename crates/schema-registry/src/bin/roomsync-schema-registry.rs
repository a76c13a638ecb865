//! `roomsync-schema-registry --listen ADDR --database-url URL`: the Confluent-compatible registry of the local
//! stack. Stops gracefully on Ctrl-C or SIGTERM.

use anyhow::Context;
use clap::Parser;
use schema_registry::server::{serve, Store, StoreConfig};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// Confluent-compatible schema registry (Avro), persisted in PostgreSQL.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "ROOMSYNC_REGISTRY_LISTEN", default_value = "127.0.0.1:8081")]
    listen: String,
    /// PostgreSQL URL of the database holding the registry (tables are created if absent).
    #[arg(long, env = "ROOMSYNC_REGISTRY_DATABASE_URL")]
    database_url: String,
    /// Most database connections open at once.
    #[arg(long, default_value_t = 8)]
    max_connections: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let args = Args::parse();
    let config = StoreConfig { database_url: args.database_url, max_connections: args.max_connections };
    let store = Store::open(&config).await.context("opening the registry database")?;
    let listener = TcpListener::bind(&args.listen).await.with_context(|| format!("listening on {}", args.listen))?;
    serve(listener, store, shutdown_signal()).await?;
    tracing::info!("schema registry stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %err, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
