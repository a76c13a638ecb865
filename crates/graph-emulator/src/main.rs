//! `roomsync-graph-emulator`: runs the Graph emulator for demos and manual testing.

use clap::Parser;
use graph_emulator::{serve, Emulator, TenantConfig};

/// Command line.
#[derive(Debug, Parser)]
#[command(name = "roomsync-graph-emulator", about = "A stateful Microsoft Graph emulator")]
struct Args {
    /// Address to listen on, e.g. 127.0.0.1:8080.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Tenant config (TOML): rooms, users, credentials, faults.
    #[arg(long)]
    config: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let args = Args::parse();
    let config = match &args.config {
        Some(path) => TenantConfig::load(path)?,
        None => TenantConfig::default(),
    };
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, tenant = %config.tenant_id, "graph emulator listening");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    serve(listener, Emulator::new(config), shutdown).await?;
    Ok(())
}
