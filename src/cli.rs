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
    /// The pipeline on the sample booking data with the local stack, printing the room calendars as they fill.
    Demo,
    /// Check the configuration and print it (secrets redacted).
    CheckConfig,
    /// Show the pipeline's status: replication slot, items by sync status, rooms, errors, conflicts.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Compare what each room calendar holds with the desired state; print the drift and repair it.
    Reconcile {
        /// Only print the drift; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Only these room mailboxes (repeat the flag); all active rooms when omitted.
        #[arg(long = "room")]
        rooms: Vec<String>,
    },
    /// Copy chosen tables (or only the rows of chosen resources) into their CDC topics again, ordered with
    /// the stream: after adding a room mapping, or to rebuild a consumer's state. The CDC reader does the work.
    Backfill {
        /// Only these tables (repeat the flag); every captured table when omitted.
        #[arg(long = "table")]
        tables: Vec<String>,
        /// Only the rows of these bb_resource ids (repeat the flag); every row when omitted.
        #[arg(long = "resource")]
        resources: Vec<i32>,
        /// Return after recording the request instead of waiting for the reader to finish it.
        #[arg(long)]
        no_wait: bool,
        /// How long to wait for the reader.
        #[arg(long, value_parser = humantime_serde::re::humantime::parse_duration, default_value = "10m")]
        timeout: std::time::Duration,
    },
    /// Write parked calendar items again (after fixing what made the sink park them).
    Retry {
        /// Only list the parked items; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Only these room mailboxes (repeat the flag); every room when omitted.
        #[arg(long = "room")]
        rooms: Vec<String>,
        /// Only these item keys, e.g. `booking:201` (repeat the flag); every parked item when omitted.
        #[arg(long = "item")]
        items: Vec<String>,
    },
    /// Discover room mailboxes through Graph (/places).
    Rooms,
    /// Resource-to-room mappings (bb_resource_outlook_item).
    Mappings {
        /// What to do.
        #[command(subcommand)]
        action: MappingAction,
    },
    /// Outlook-origin bookings that conflict with booking-system reservations.
    Conflicts {
        /// What to do.
        #[command(subcommand)]
        action: ConflictAction,
    },
}

/// `roomsync mappings ...`
#[derive(Debug, Subcommand)]
pub enum MappingAction {
    /// List all mappings.
    List,
    /// Map a resource to a room mailbox (or change and reactivate its mapping).
    Add {
        /// bb_resource.id
        #[arg(long)]
        resource: i32,
        /// The room mailbox address (or Graph user id).
        #[arg(long)]
        mailbox: String,
        /// Display name of the room.
        #[arg(long)]
        name: Option<String>,
    },
    /// Stop syncing a resource's room: roomsync removes its events there; Outlook-origin events stay.
    Disable {
        /// bb_resource.id
        #[arg(long)]
        resource: i32,
    },
    /// Resume syncing a resource's room.
    Enable {
        /// bb_resource.id
        #[arg(long)]
        resource: i32,
    },
}

/// `roomsync conflicts ...`
#[derive(Debug, Subcommand)]
pub enum ConflictAction {
    /// List open conflicts (all with --all).
    List {
        /// Include resolved and declined ones.
        #[arg(long)]
        all: bool,
    },
    /// Mark a conflict resolved.
    Resolve {
        /// The conflict id.
        id: i64,
        /// What was decided.
        #[arg(long, default_value = "resolved by operator")]
        note: String,
    },
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

    /// The stage's name, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Cdc => "cdc",
            Stage::GraphSource => "graph-source",
            Stage::Resolver => "resolver",
            Stage::GraphSink => "graph-sink",
        }
    }
}
