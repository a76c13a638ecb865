//! The command line: `roomsync [--config FILE] <command>`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Two-way, near real-time sync between the PorticoEstate booking system and Outlook room calendars.
#[derive(Debug, Parser)]
#[command(name = "roomsync", version, about)]
pub struct Cli {
    /// Configuration file (TOML); without it, defaults for the local stack plus ROOMSYNC__* overrides.
    #[arg(long, global = true, env = "ROOMSYNC_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "ROOMSYNC_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline: all stages, or the ones named with --stage.
    Run {
        /// Stages to run in this process (repeat the flag or separate with commas); all when omitted.
        #[arg(long, value_enum, value_delimiter = ',')]
        stage: Vec<Stage>,
    },
    /// Create or update roomsync's own tables in the booking database.
    Migrate,
    /// Check the configuration and print it (secrets redacted).
    CheckConfig,
}

/// A pipeline stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum Stage {
    /// PostgreSQL logical replication -> Kafka.
    Cdc,
    /// Outlook room calendars -> Kafka.
    GraphSource,
    /// Reservations + Outlook events -> desired state.
    Resolver,
    /// Desired state -> Microsoft Graph and the mapping tables.
    GraphSink,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 4] = [Stage::Cdc, Stage::GraphSource, Stage::Resolver, Stage::GraphSink];
}
