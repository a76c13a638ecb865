//! The roomsync binary: parse the command line, load the configuration, set up logging, run the command.

use clap::Parser;
use roomsync::cli::{Cli, Command, LogFormat};
use roomsync::config::Config;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "roomsync failed");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = match (&cli.command, &cli.config) {
        // The demo runs on the local stack: its settings unless a file is given.
        (Command::Demo, None) => Config::load(Some(std::path::Path::new(roomsync::commands::demo::LOCAL_CONFIG)))?,
        _ => Config::load(cli.config.as_deref())?,
    };
    match cli.command {
        Command::Run { stage } => roomsync::commands::run::run(&config, &stage).await,
        Command::Migrate => roomsync::commands::migrate::run(&config).await,
        Command::Demo => roomsync::commands::demo::run(&config).await,
        Command::CheckConfig => {
            println!("{config:#?}");
            Ok(())
        }
        Command::Status { json } => roomsync::commands::ops::status(&config, json).await,
        Command::Rooms => roomsync::commands::ops::rooms(&config).await,
        Command::Reconcile { dry_run, rooms } => roomsync::commands::ops::reconcile(&config, dry_run, rooms).await,
        Command::Backfill { tables, resources, no_wait, timeout } => {
            roomsync::commands::ops::backfill(&config, &tables, &resources, (!no_wait).then_some(timeout)).await
        }
        Command::Retry { dry_run, rooms, items } => {
            roomsync::commands::ops::retry(&config, reconcile::RetryOptions { rooms, items, dry_run }).await
        }
        Command::Mappings { action } => roomsync::commands::ops::mappings(&config, action).await,
        Command::Conflicts { action } => roomsync::commands::ops::conflicts(&config, action).await,
    }
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
