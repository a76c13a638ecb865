//! Configuration: one TOML file plus environment overrides, validated at start with messages that say what to
//! fix. Defaults (in one place: the `Default` impls below) point at the local stack that `scripts/stack up`
//! starts, so `roomsync run` works there without a file.
//!
//! Overrides: `ROOMSYNC__<SECTION>__<KEY>=value` replaces `[section] key` (e.g. `ROOMSYNC__KAFKA__TOPIC_PREFIX`).
//! Secrets (database password, Graph client secret, admin token) are never read from the file itself: give
//! them in the environment (`ROOMSYNC__GRAPH__CLIENT_SECRET`) or as a file path (`client_secret_file`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;
use vocabulary::oslo::DstRules;

use crate::secret::Secret;

/// The environment prefix of overrides.
pub const ENV_PREFIX: &str = "ROOMSYNC__";

/// Keys that hold secrets: refused in the file, accepted from the environment.
const SECRET_KEYS: &[(&str, &str)] = &[("database", "password"), ("graph", "client_secret"), ("admin", "token")];

/// What is wrong with the configuration, and how to fix it.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML does not parse or does not fit the settings.
    #[error("config: {0}")]
    Parse(String),
    /// A secret was written into the file.
    #[error(
        "config: [{section}] {key} is a secret and is not read from the config file; set {env} in the \
         environment or {key}_file = \"/path/to/file\" instead"
    )]
    SecretInFile {
        /// Section.
        section: String,
        /// Key.
        key: String,
        /// The environment variable to use.
        env: String,
    },
    /// A value is out of its allowed range.
    #[error("config: {0}")]
    Invalid(String),
}

/// All settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The booking system's PostgreSQL database (roomsync's own tables live there too).
    pub database: DatabaseConfig,
    /// The Kafka cluster.
    pub kafka: KafkaConfig,
    /// The Confluent-compatible schema registry.
    pub registry: RegistryConfig,
    /// Microsoft Graph.
    pub graph: GraphConfig,
    /// Change data capture.
    pub cdc: CdcConfig,
    /// Sync rules.
    pub sync: SyncConfig,
    /// Admin HTTP API.
    pub admin: AdminConfig,
    /// The Graph source's rhythm.
    pub graph_source: GraphSourceConfig,
    /// Graph change notifications (webhooks).
    pub webhooks: WebhooksConfig,
    /// The Graph sink and the import of Outlook-origin bookings.
    pub graph_sink: GraphSinkConfig,
    /// Periodic reconciliation of the room calendars with the desired state.
    pub reconcile: ReconcileConfig,
}

/// `[reconcile]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconcileConfig {
    /// Run reconciliation periodically inside `roomsync run` (the graph-sink stage must run for repairs).
    pub enabled: bool,
    /// Time between two periodic runs (the first runs one interval after start).
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        ReconcileConfig { enabled: true, interval: Duration::from_secs(30 * 60) }
    }
}

/// `[graph_sink]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphSinkConfig {
    /// Record Outlook-origin bookings that conflict with nothing in outlook_calendar_mapping.
    pub imports_enabled: bool,
    /// Also write them into the booking system as bb_event rows (with bb_event_resource and bb_event_date),
    /// so it shows the room busy. Off by default: it writes into the booking system's tables.
    pub import_bb_events: bool,
    /// Record an import that overlaps a booking-system reservation as a conflict instead of importing it.
    pub record_import_conflicts: bool,
    /// Most records handled in one unit of work (one PostgreSQL transaction with its offsets).
    pub max_batch_records: usize,
    /// How long a unit waits for more records before it is written.
    #[serde(with = "humantime_serde")]
    pub batch_linger: Duration,
    /// Most records per unit while catching up (a unit that fills `max_batch_records` before its linger goes on
    /// taking records while they keep coming: a first load, a backlog).
    pub max_catch_up_records: usize,
    /// How long a catching-up unit may go on taking records.
    #[serde(with = "humantime_serde")]
    pub catch_up_linger: Duration,
    /// How long a unit's items may go on failing transiently (a Graph outage, a throttling storm) before the unit
    /// is abandoned uncommitted and the instance rejoins its group, so whichever instance owns the partitions
    /// then applies it anew.
    #[serde(with = "humantime_serde")]
    pub unit_retry_limit: Duration,
    /// `checked`: an item seen for the first time skips its lookup by tags in a room calendar checked to hold no
    /// tagged event roomsync does not know; `always`: look up before every create.
    pub lookups: graph_sink::Lookups,
    /// How often conflicts the resolver marked `declined` are declined in the room calendar.
    #[serde(with = "humantime_serde")]
    pub decline_interval: Duration,
    /// The comment sent to the organizer with a decline.
    pub decline_comment: String,
}

impl Default for GraphSinkConfig {
    fn default() -> Self {
        GraphSinkConfig {
            imports_enabled: true,
            import_bb_events: false,
            record_import_conflicts: true,
            max_batch_records: graph_sink::DEFAULT_MAX_BATCH_RECORDS,
            batch_linger: graph_sink::DEFAULT_BATCH_LINGER,
            max_catch_up_records: graph_sink::DEFAULT_MAX_CATCH_UP_RECORDS,
            catch_up_linger: graph_sink::DEFAULT_CATCH_UP_LINGER,
            unit_retry_limit: graph_sink::DEFAULT_UNIT_RETRY_LIMIT,
            lookups: graph_sink::Lookups::default(),
            decline_interval: Duration::from_secs(10),
            decline_comment: graph_sink::DEFAULT_DECLINE_COMMENT.to_owned(),
        }
    }
}

/// `[graph_source]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphSourceConfig {
    /// Fallback polling of every room even when webhooks work: a lost notification costs at most this long.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// A notified room waits this long before its delta round, so a burst of notifications shares one round.
    #[serde(with = "humantime_serde")]
    pub notification_delay: Duration,
    /// How often bb_resource_outlook_item is re-read for added, changed or deactivated rooms.
    #[serde(with = "humantime_serde")]
    pub rooms_refresh: Duration,
    /// A full delta round when the sync window has moved on by this much.
    #[serde(with = "humantime_serde")]
    pub window_refresh: Duration,
    /// Delta page size (`Prefer: odata.maxpagesize`); Graph's default when absent.
    pub page_size: Option<usize>,
}

impl Default for GraphSourceConfig {
    fn default() -> Self {
        GraphSourceConfig {
            poll_interval: Duration::from_secs(300),
            notification_delay: graph_source::DEFAULT_NOTIFICATION_DELAY,
            rooms_refresh: Duration::from_secs(30),
            window_refresh: Duration::from_secs(24 * 3600),
            page_size: None,
        }
    }
}

/// `[webhooks]`: off unless `public_url` is set (polling alone works then).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// The public HTTPS URL (behind a TLS proxy) that reaches `listen`; Graph POSTs to `<public_url>/notifications`
    /// and `<public_url>/lifecycle`.
    pub public_url: Option<String>,
    /// Listen address of the webhook receiver (separate from the admin API; needs no admin token).
    pub listen: String,
    /// Subscription lifetime (at most 10,080 minutes for Outlook events).
    #[serde(with = "humantime_serde")]
    pub subscription_lifetime: Duration,
    /// Renew a subscription this long before it expires.
    #[serde(with = "humantime_serde")]
    pub renew_before: Duration,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            public_url: None,
            listen: "127.0.0.1:18089".into(),
            subscription_lifetime: Duration::from_secs(3 * 24 * 3600),
            renew_before: Duration::from_secs(24 * 3600),
        }
    }
}

/// `[database]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// Connection URL without the password, e.g. `postgres://roomsync@db.kommune.no:5432/booking`.
    pub url: String,
    /// Password (environment `ROOMSYNC__DATABASE__PASSWORD` only).
    #[serde(skip)]
    pub password: Option<Secret>,
    /// File holding the password.
    pub password_file: Option<PathBuf>,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "postgres://postgres@127.0.0.1:15432/booking".into(),
            password: None,
            password_file: None,
        }
    }
}

/// `[kafka]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma separated.
    pub bootstrap_servers: String,
    /// Prefix of every topic name (e.g. `roomsync` gives `roomsync.graph.events`).
    pub topic_prefix: String,
    /// Partitions of topics roomsync creates.
    pub partitions: i32,
    /// Replication factor of topics roomsync creates.
    pub replication_factor: i32,
    /// Extra librdkafka properties (e.g. `"security.protocol" = "SASL_SSL"`, `"session.timeout.ms" = 10000`);
    /// numbers and booleans are taken as librdkafka's strings, so an environment override such as
    /// `ROOMSYNC__KAFKA__PROPERTIES__session.timeout.ms=10000` works too.
    #[serde(deserialize_with = "librdkafka_properties")]
    pub properties: std::collections::BTreeMap<String, String>,
    /// Single-instance deployments: a resolver or graph sink without any partition of its group for this long
    /// leaves the group and joins again (unset: it waits and warns). See `streams::KafkaSettings`.
    #[serde(with = "humantime_serde")]
    pub rejoin_unassigned_after: Option<Duration>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            bootstrap_servers: "127.0.0.1:19092".into(),
            topic_prefix: vocabulary::topics::DEFAULT_PREFIX.into(),
            partitions: 1,
            replication_factor: 1,
            properties: Default::default(),
            rejoin_unassigned_after: None,
        }
    }
}

/// `[registry]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// Base URL of the schema registry.
    pub url: String,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig { url: "http://127.0.0.1:18081".into() }
    }
}

/// `[graph]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphConfig {
    /// Graph API base URL.
    pub base_url: String,
    /// Token authority base URL.
    pub authority_url: String,
    /// Entra ID tenant id.
    pub tenant_id: String,
    /// Application (client) id.
    pub client_id: String,
    /// Client secret (environment `ROOMSYNC__GRAPH__CLIENT_SECRET` only).
    #[serde(skip)]
    pub client_secret: Option<Secret>,
    /// File holding the client secret.
    pub client_secret_file: Option<PathBuf>,
    /// Most requests in flight per room mailbox (Outlook allows 4).
    pub max_concurrent_per_mailbox: usize,
}

impl Default for GraphConfig {
    fn default() -> Self {
        GraphConfig {
            base_url: "http://127.0.0.1:18080/v1.0".into(),
            authority_url: "http://127.0.0.1:18080".into(),
            tenant_id: "00000000-0000-0000-0000-00000000f00d".into(),
            client_id: "roomsync-local".into(),
            client_secret: None,
            client_secret_file: None,
            max_concurrent_per_mailbox: 4,
        }
    }
}

/// `[cdc]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CdcConfig {
    /// Logical replication slot name (lowercase letters, digits, `_`).
    pub slot: String,
    /// Publication name.
    pub publication: String,
    /// Published tables (in `schema`).
    pub tables: Vec<String>,
    /// The schema of the published tables.
    pub schema: String,
    /// Columns never published (sensitive data): a bare name applies to every table, `table.column` to one.
    pub excluded_columns: Vec<String>,
    /// Rows per batch of the initial snapshot.
    pub snapshot_batch_rows: i32,
    /// Largest record the reader produces; larger rows go to the dead-letter topic.
    pub max_message_bytes: usize,
}

impl Default for CdcConfig {
    fn default() -> Self {
        CdcConfig {
            slot: cdc_reader::config::DEFAULT_SLOT.into(),
            publication: cdc_reader::config::DEFAULT_PUBLICATION.into(),
            tables: cdc_reader::config::default_tables(),
            schema: cdc_reader::config::DEFAULT_SCHEMA.into(),
            excluded_columns: cdc_reader::config::DEFAULT_EXCLUDED_COLUMNS.iter().map(|c| (*c).to_owned()).collect(),
            snapshot_batch_rows: cdc_reader::config::DEFAULT_SNAPSHOT_BATCH_ROWS,
            max_message_bytes: cdc_reader::config::DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

pub use resolver::{ConflictPolicy, EditPolicy, OverlapPolicy};

/// `[sync]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    /// DST rules for booking-system wall-clock times.
    pub dst: DstRules,
    /// How far back the sync window reaches.
    #[serde(with = "humantime_serde")]
    pub window_past: Duration,
    /// How far ahead the sync window reaches.
    #[serde(with = "humantime_serde")]
    pub horizon: Duration,
    /// Lower-priority items where a higher-priority one holds the slot: trim, hide or show_all.
    pub overlap: OverlapPolicy,
    /// With `trim`, pieces shorter than this are dropped.
    #[serde(with = "humantime_serde")]
    pub min_piece: Duration,
    /// An Outlook edit of an event roomsync wrote: revert (the booking system is the authority) or record.
    pub outlook_edits: EditPolicy,
    /// An Outlook-origin booking overlapping a booking-system reservation: record, or decline.
    pub conflicts: ConflictPolicy,
    /// Turn non-conflicting Outlook-origin bookings into import records.
    pub import_outlook_bookings: bool,
    /// Booking changes the resolver took in and could not turn into calendar changes for this long (a
    /// transaction that never completes, partitions it cannot load) are a stall: logged as an error, shown by
    /// `roomsync status`, failing `/health/ready`, in `roomsync_resolver_stalled_seconds`.
    #[serde(with = "humantime_serde")]
    pub stall_after: Duration,
    /// How often the resolver writes its state to its checkpoint in the database, so a start reads only the
    /// input that came after it; `0s`: never (every start reads every input topic from the beginning).
    #[serde(with = "humantime_serde")]
    pub checkpoint_every: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            dst: DstRules::default(),
            window_past: vocabulary::window::DEFAULT_PAST,
            horizon: vocabulary::window::DEFAULT_HORIZON,
            overlap: OverlapPolicy::Trim,
            min_piece: Duration::from_secs(60),
            outlook_edits: EditPolicy::Revert,
            conflicts: ConflictPolicy::Record,
            import_outlook_bookings: true,
            stall_after: Duration::from_secs(120),
            checkpoint_every: resolver::config::DEFAULT_CHECKPOINT_EVERY,
        }
    }
}

/// `[admin]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Listen address of the admin API and /metrics.
    pub listen: String,
    /// Bearer token (environment `ROOMSYNC__ADMIN__TOKEN` only).
    #[serde(skip)]
    pub token: Option<Secret>,
    /// File holding the bearer token.
    pub token_file: Option<PathBuf>,
    /// Run without a token (local use only).
    pub auth_disabled: bool,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig { listen: "127.0.0.1:18088".into(), token: None, token_file: None, auth_disabled: false }
    }
}

impl Config {
    /// Loads `path` (or only defaults when `None`), applies the environment overrides and validates.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(path, std::env::vars())
    }

    /// [`load`](Self::load) with an explicit environment (tests).
    pub fn load_with_env(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
                let table: toml::Table = toml::from_str(&text).map_err(|err| ConfigError::Parse(err.to_string()))?;
                reject_secrets(&table)?;
                table
            }
            None => toml::Table::new(),
        };
        let mut secrets = Vec::new();
        for (name, raw) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else { continue };
            let path: Vec<String> = rest.split("__").map(str::to_lowercase).collect();
            if let [section, key] = path.as_slice() {
                if SECRET_KEYS.contains(&(section.as_str(), key.as_str())) {
                    secrets.push((section.clone(), key.clone(), Secret::new(raw)));
                    continue;
                }
            }
            set_path(&mut table, &path, parse_env_value(&raw), &name)?;
        }
        let mut config: Config =
            toml::Value::Table(table).try_into().map_err(|err: toml::de::Error| ConfigError::Parse(err.to_string()))?;
        for (section, key, secret) in secrets {
            match (section.as_str(), key.as_str()) {
                ("database", "password") => config.database.password = Some(secret),
                ("graph", "client_secret") => config.graph.client_secret = Some(secret),
                _ => config.admin.token = Some(secret),
            }
        }
        config.read_secret_files()?;
        config.validate()?;
        Ok(config)
    }

    fn read_secret_files(&mut self) -> Result<(), ConfigError> {
        let read = |path: &PathBuf| {
            std::fs::read_to_string(path)
                .map(|text| Secret::new(text.trim_end_matches(['\n', '\r'])))
                .map_err(|source| ConfigError::Read { path: path.clone(), source })
        };
        if let (None, Some(path)) = (&self.database.password, &self.database.password_file) {
            self.database.password = Some(read(path)?);
        }
        if let (None, Some(path)) = (&self.graph.client_secret, &self.graph.client_secret_file) {
            self.graph.client_secret = Some(read(path)?);
        }
        if let (None, Some(path)) = (&self.admin.token, &self.admin.token_file) {
            self.admin.token = Some(read(path)?);
        }
        Ok(())
    }

    /// Checks values the types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| Err(ConfigError::Invalid(message));
        match self.database.url.parse::<tokio_postgres::Config>() {
            Ok(parsed) if parsed.get_password().is_some() => {
                return invalid(
                    "[database] url contains a password; remove it and set ROOMSYNC__DATABASE__PASSWORD or \
                     password_file"
                        .into(),
                )
            }
            Ok(_) => {}
            Err(err) => {
                return invalid(format!(
                "[database] url is not a PostgreSQL URL ({err}); expected e.g. postgres://roomsync@host:5432/booking"
            ))
            }
        }
        if self.kafka.bootstrap_servers.trim().is_empty() {
            return invalid("[kafka] bootstrap_servers is empty; set e.g. \"kafka:9092\"".into());
        }
        if !is_topic_safe(&self.kafka.topic_prefix) {
            return invalid(format!(
                "[kafka] topic_prefix {:?} may only hold letters, digits, '.', '_' and '-'",
                self.kafka.topic_prefix
            ));
        }
        if self.kafka.partitions < 1 || self.kafka.replication_factor < 1 {
            return invalid("[kafka] partitions and replication_factor must be at least 1".into());
        }
        for (what, name) in [("slot", &self.cdc.slot), ("publication", &self.cdc.publication)] {
            if !is_identifier(name) {
                return invalid(format!(
                    "[cdc] {what} {name:?} must be 1-63 lowercase letters, digits or '_', starting with a letter"
                ));
            }
        }
        if self.cdc.tables.is_empty() {
            return invalid("[cdc] tables is empty; list the tables to capture".into());
        }
        if self.graph.max_concurrent_per_mailbox == 0 || self.graph.max_concurrent_per_mailbox > 4 {
            return invalid("[graph] max_concurrent_per_mailbox must be 1..=4 (Outlook's limit is 4)".into());
        }
        if let Some(url) = &self.webhooks.public_url {
            if !url.starts_with("https://") && !url.starts_with("http://") {
                return invalid(format!("[webhooks] public_url {url:?} must be an https:// URL Graph can reach"));
            }
            if self.webhooks.listen.parse::<std::net::SocketAddr>().is_err() {
                return invalid(format!("[webhooks] listen {:?} must be host:port", self.webhooks.listen));
            }
        }
        if self.reconcile.enabled && self.reconcile.interval < Duration::from_secs(60) {
            return invalid("[reconcile] interval must be at least \"1m\" (it reads every room calendar)".into());
        }
        if self.sync.horizon.is_zero() {
            return invalid("[sync] horizon must be longer than zero, e.g. \"180d\"".into());
        }
        Ok(())
    }

    /// The admin token, or an error saying how to give one (unless auth is explicitly disabled).
    pub fn admin_token(&self) -> Result<Option<&Secret>, ConfigError> {
        match (&self.admin.token, self.admin.auth_disabled) {
            (Some(token), _) => Ok(Some(token)),
            (None, true) => Ok(None),
            (None, false) => Err(ConfigError::Invalid(
                "the admin API needs a bearer token: set ROOMSYNC__ADMIN__TOKEN or [admin] token_file, or set \
                 [admin] auth_disabled = true for local use"
                    .into(),
            )),
        }
    }
}

fn reject_secrets(table: &toml::Table) -> Result<(), ConfigError> {
    for (section, key) in SECRET_KEYS {
        if table.get(*section).and_then(|s| s.get(*key)).is_some() {
            return Err(ConfigError::SecretInFile {
                section: (*section).into(),
                key: (*key).into(),
                env: format!("{ENV_PREFIX}{}__{}", section.to_uppercase(), key.to_uppercase()),
            });
        }
    }
    Ok(())
}

/// librdkafka takes every property as a string: scalars of any TOML type are accepted and written as such.
fn librdkafka_properties<'de, D>(deserializer: D) -> Result<std::collections::BTreeMap<String, String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let raw = std::collections::BTreeMap::<String, toml::Value>::deserialize(deserializer)?;
    raw.into_iter()
        .map(|(key, value)| match value {
            toml::Value::String(text) => Ok((key, text)),
            toml::Value::Integer(n) => Ok((key, n.to_string())),
            toml::Value::Float(x) => Ok((key, x.to_string())),
            toml::Value::Boolean(b) => Ok((key, b.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "kafka property {key:?} must be a string, number or boolean, not {}",
                other.type_str()
            ))),
        })
        .collect()
}

/// An environment value as TOML when it reads as a number, boolean or array, else as a string.
fn parse_env_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .filter(|v| !matches!(v, toml::Value::Datetime(_)))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value, name: &str) -> Result<(), ConfigError> {
    match path {
        [key] => {
            table.insert(key.clone(), value);
            Ok(())
        }
        [section, rest @ ..] if !section.is_empty() => {
            let entry = table.entry(section.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(inner) => set_path(inner, rest, value, name),
                _ => Err(ConfigError::Parse(format!("{name} overrides {section}, which is not a section"))),
            }
        }
        _ => Err(ConfigError::Parse(format!("{name} does not name a setting (ROOMSYNC__SECTION__KEY)"))),
    }
}

fn is_topic_safe(name: &str) -> bool {
    !name.is_empty() && name.len() <= 200 && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

fn is_identifier(name: &str) -> bool {
    name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests;
