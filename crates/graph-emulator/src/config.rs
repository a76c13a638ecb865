//! Tenant configuration: who exists in the emulated tenant and which faults are switched on at start.
//!
//! Loaded from TOML (`--config tenant.toml`) or built in code by tests. Invariant: every mailbox id is a GUID and
//! every mailbox email is unique (case-insensitive), so a path segment `{id|upn}` resolves to at most one mailbox.

use serde::{Deserialize, Serialize};

use crate::error::EmulatorError;

/// The whole emulated tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantConfig {
    /// Directory (tenant) id accepted in the token URL; `common`-style aliases are not emulated.
    pub tenant_id: String,
    /// Application (client) id accepted by the token endpoint.
    pub client_id: String,
    /// Client secret accepted by the token endpoint.
    pub client_secret: String,
    /// Lifetime of issued tokens in seconds (Graph: 3599).
    pub token_lifetime_secs: u64,
    /// Room mailboxes.
    pub rooms: Vec<RoomConfig>,
    /// User mailboxes.
    pub users: Vec<UserConfig>,
    /// Throttling limits and fault injection.
    pub faults: FaultConfig,
}

impl Default for TenantConfig {
    fn default() -> Self {
        Self {
            tenant_id: "00000000-0000-0000-0000-0000000000aa".into(),
            client_id: "roomsync-test-client".into(),
            client_secret: "roomsync-test-secret".into(),
            token_lifetime_secs: 3599,
            rooms: Vec::new(),
            users: Vec::new(),
            faults: FaultConfig::default(),
        }
    }
}

/// One room mailbox and its resource booking assistant settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RoomConfig {
    /// Object id (GUID).
    pub id: String,
    /// Primary SMTP address (also the UPN).
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Seats.
    #[serde(default)]
    pub capacity: Option<u32>,
    /// Building name.
    #[serde(default)]
    pub building: Option<String>,
    /// Floor number.
    #[serde(default)]
    pub floor_number: Option<i32>,
    /// Room list email this room belongs to.
    #[serde(default)]
    pub room_list: Option<String>,
    /// Resource booking assistant AutoAccept (default true).
    #[serde(default = "yes")]
    pub auto_accept: bool,
    /// Resource booking assistant AllowConflicts (default false: busy -> decline).
    #[serde(default)]
    pub allow_conflicts: bool,
}

impl RoomConfig {
    /// A room with the resource booking assistant's defaults (AutoAccept, no conflicts allowed) and no capacity,
    /// building, floor or room list.
    pub fn new(id: impl Into<String>, email: impl Into<String>, display_name: impl Into<String>) -> Self {
        RoomConfig {
            id: id.into(),
            email: email.into(),
            display_name: display_name.into(),
            capacity: None,
            building: None,
            floor_number: None,
            room_list: None,
            auto_accept: true,
            allow_conflicts: false,
        }
    }
}

/// One user mailbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UserConfig {
    /// Object id (GUID).
    pub id: String,
    /// Primary SMTP address (also the UPN).
    pub email: String,
    /// Display name.
    pub display_name: String,
}

/// Whether the concurrency limit counts requests per mailbox or per app (docs disagree; see docs/graph-facts.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConcurrencyScope {
    /// At most N concurrent requests per mailbox.
    Mailbox,
    /// At most N concurrent mailbox requests for the whole app.
    App,
}

/// Throttling and fault-injection knobs. Also readable and writable at run time via `/_emulator/faults`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct FaultConfig {
    /// Maximum concurrent requests (Outlook: 4); 0 disables the check.
    pub max_concurrency: usize,
    /// Scope of `max_concurrency`.
    pub concurrency_scope: ConcurrencyScope,
    /// `Retry-After` sent with ApplicationThrottled, verbatim.
    pub concurrency_retry_after: String,
    /// Requests allowed per mailbox per window; 0 disables the check.
    pub rate_limit_requests: usize,
    /// Length of the rate window in milliseconds.
    pub rate_limit_window_ms: u64,
    /// When false (Graph's documented form), the rate window's `Retry-After` is whole seconds, rounded up;
    /// when true it carries milliseconds ("2.958"), as some issue threads report Graph sending. Kiota-based SDKs
    /// fail to parse a fractional value, so only clients that must survive it should switch this on.
    pub fractional_retry_after: bool,
    /// How long after a create a POST with the same `transactionId` gets the existing event back instead of a new
    /// one (ms; 0: never). Graph de-duplicates a repeated transactionId only for a limited, undocumented time, and
    /// never against an event deleted since; a client must not rely on it beyond a quick retry.
    pub transaction_id_window_ms: u64,
    /// Probability (0..=1) that a mailbox request fails at random.
    pub random_error_rate: f64,
    /// Statuses picked from at random (429, 500, 502, 503, 504, 507).
    pub random_error_statuses: Vec<u16>,
    /// `Retry-After` sent with random errors, verbatim (fractional allowed, to keep tests fast); empty = no header.
    pub random_retry_after: String,
    /// When true, a random 504 is produced AFTER the request was applied (the write lands, the answer is lost),
    /// which is exactly the case transactionId de-duplication exists for.
    pub fail_after_apply: bool,
    /// Seed of the fault RNG, so a failing test can be replayed.
    pub seed: u64,
    /// Latency added to every mailbox request, in milliseconds (held while the concurrency slot is held).
    pub latency_ms: u64,
    /// Page size of delta when the client sends no `Prefer: odata.maxpagesize`.
    pub delta_default_page_size: usize,
    /// When true, the first page of every delta round is empty (Graph does this; clients must keep following).
    pub delta_empty_first_page: bool,
    /// When true, every delta round reports its first item a second time at its end (Graph replays items).
    pub delta_duplicates: bool,
    /// When true, `$batch` responses are shuffled instead of returned in completion order.
    pub batch_shuffle: bool,
    /// Mailboxes (ids or emails) the app may not access: every request to them answers 403 ErrorAccessDenied,
    /// as when an Exchange application access policy or RBAC scope excludes them.
    pub denied_mailboxes: Vec<String>,
    /// When true, the app holds only read permission (Calendars.Read): writes answer 403 ErrorAccessDenied.
    pub read_only: bool,
    /// When true, every change notification is delivered twice.
    pub notification_duplicates: bool,
    /// Times a refused or failed notification POST is retried (Graph retries for up to 4 hours).
    pub notification_retries: u32,
    /// Delay before the first retry, in milliseconds; it doubles for each further retry.
    pub notification_retry_delay_ms: u64,
    /// When true, change notifications are held until `POST /_emulator/notifications/flush`, which delivers them
    /// newest first (out of order).
    pub notification_hold: bool,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            max_concurrency: 4,
            concurrency_scope: ConcurrencyScope::Mailbox,
            concurrency_retry_after: "1".into(),
            rate_limit_requests: 0,
            rate_limit_window_ms: 600_000,
            fractional_retry_after: false,
            transaction_id_window_ms: 300_000,
            random_error_rate: 0.0,
            random_error_statuses: vec![429, 503, 504],
            random_retry_after: "0.05".into(),
            fail_after_apply: false,
            seed: 42,
            latency_ms: 0,
            delta_default_page_size: 10,
            delta_empty_first_page: false,
            delta_duplicates: false,
            batch_shuffle: false,
            denied_mailboxes: Vec::new(),
            read_only: false,
            notification_duplicates: false,
            notification_hold: false,
            notification_retries: 3,
            notification_retry_delay_ms: 200,
        }
    }
}

fn yes() -> bool {
    true
}

impl TenantConfig {
    /// Reads and validates a TOML file.
    pub fn load(path: &str) -> Result<Self, EmulatorError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| EmulatorError::ReadConfig { path: path.to_string(), source })?;
        let config: Self = toml::from_str(&text)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the invariants stated in the module docs.
    pub fn validate(&self) -> Result<(), EmulatorError> {
        let mut seen = std::collections::HashSet::new();
        let mailboxes =
            self.rooms.iter().map(|r| (&r.id, &r.email)).chain(self.users.iter().map(|u| (&u.id, &u.email)));
        for (id, email) in mailboxes {
            if uuid::Uuid::parse_str(id).is_err() {
                return Err(EmulatorError::InvalidConfig(format!("mailbox id {id} is not a GUID")));
            }
            if !seen.insert(email.to_ascii_lowercase()) || !seen.insert(id.to_ascii_lowercase()) {
                return Err(EmulatorError::InvalidConfig(format!("duplicate mailbox {email}")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_toml_tenant_with_one_room_parses_with_defaults() {
        let text = r#"
            tenant_id = "t"
            client_id = "c"
            client_secret = "s"
            [[rooms]]
            id = "6f1c2d1e-8a4b-4c55-9d2e-1a2b3c4d5e6f"
            email = "room1@example.org"
            displayName = "Room 1"
            capacity = 10
            allowConflicts = true
            [faults]
            maxConcurrency = 2
        "#;
        let config: TenantConfig = toml::from_str(text).expect("valid toml");
        assert!(config.validate().is_ok());
        assert_eq!(config.faults.max_concurrency, 2);
        assert!(config.rooms[0].auto_accept);
        assert!(config.rooms[0].allow_conflicts);
    }

    #[test]
    fn a_mailbox_id_that_is_not_a_guid_is_rejected() {
        let mut config = TenantConfig::default();
        config.users.push(UserConfig { id: "nope".into(), email: "a@b".into(), display_name: "A".into() });
        assert!(config.validate().is_err());
    }
}

#[cfg(test)]
mod example_tests {
    use super::*;

    #[test]
    fn the_example_tenant_file_parses_and_validates() {
        let config: TenantConfig = toml::from_str(include_str!("../tenant.example.toml")).expect("valid example");
        assert!(config.validate().is_ok());
        assert_eq!(config.rooms.len(), 2);
    }
}
