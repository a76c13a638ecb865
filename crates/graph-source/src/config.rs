//! The stage's settings: a plain struct the root binary fills from its TOML; defaults live in [`Config::new`].
//!
//! Invariant: every limit the stage uses (intervals, window, backoff, subscription lifetime) comes from here;
//! nothing is hard-coded in the loops.

use std::net::SocketAddr;
use std::time::Duration;

use graph_client::ClientConfig;
use streams::Connections;

use crate::error::Error;

/// Graph keeps a subscription to Outlook events at most this long.
pub const MAX_SUBSCRIPTION_LIFETIME: Duration = Duration::from_secs(10_080 * 60);

/// How long a notified room gathers notifications before its round ([`Config::notification_delay`]).
pub const DEFAULT_NOTIFICATION_DELAY: Duration = Duration::from_secs(1);

/// Everything the Graph source needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The booking database (roomsync's tables live there too; its `Debug` hides the password), the Kafka
    /// cluster (its `partitions` is also the partition count used for [`vocabulary::keys::room_partition`]), the
    /// schema registry and the topic names (`<prefix>.graph.events`).
    pub connections: Connections,
    /// How to reach Microsoft Graph.
    pub graph: ClientConfig,
    /// The sync window starts this long before now.
    pub window_past: Duration,
    /// The sync window ends this long after now.
    pub horizon: Duration,
    /// A new full round over a fresh window starts once the stored window is this old, so items enter the window
    /// as time passes.
    pub window_refresh: Duration,
    /// A delta round per room at least this often, even when webhooks work (default 5 minutes).
    pub poll_interval: Duration,
    /// A notified room waits this long before its delta round, so the notifications of a burst share one round
    /// (default 1 s; zero reads at once, a round per notification under steady load).
    pub notification_delay: Duration,
    /// How often `bb_resource_outlook_item` is re-read for added, deactivated or deleted rooms.
    pub rooms_refresh: Duration,
    /// `Prefer: odata.maxpagesize` of delta rounds (`None`: Graph's default).
    pub page_size: Option<usize>,
    /// First wait after a failed round; it doubles per consecutive failure.
    pub retry_base: Duration,
    /// Longest wait between attempts of a failing room.
    pub retry_max: Duration,
    /// Change notifications; `None` means polling only.
    pub webhook: Option<WebhookConfig>,
}

/// The webhook receiver and the subscriptions that point at it.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Where the receiver listens (behind a TLS-terminating proxy in production).
    pub listen: SocketAddr,
    /// The public HTTPS URL Graph reaches the receiver at, without a trailing slash; notifications go to
    /// `<public_url>/notifications`, lifecycle events to `<public_url>/lifecycle`.
    pub public_url: String,
    /// Lifetime asked for on create and renew (Graph allows at most 10,080 minutes for events).
    pub subscription_lifetime: Duration,
    /// A subscription is renewed once it expires within this long.
    pub renew_before: Duration,
    /// How often subscriptions are checked (created for new rooms, renewed, removed for dropped rooms).
    pub check_interval: Duration,
}

impl WebhookConfig {
    /// Defaults: 3 days lifetime, renewal one day before expiry, checks every minute.
    pub fn new(listen: SocketAddr, public_url: impl Into<String>) -> Self {
        Self {
            listen,
            public_url: public_url.into().trim_end_matches('/').to_string(),
            subscription_lifetime: Duration::from_secs(3 * 24 * 3600),
            renew_before: Duration::from_secs(24 * 3600),
            check_interval: Duration::from_secs(60),
        }
    }

    /// The change-notification URL registered with Graph.
    pub fn notification_url(&self) -> String {
        format!("{}/notifications", self.public_url)
    }

    /// The lifecycle-notification URL registered with Graph.
    pub fn lifecycle_url(&self) -> String {
        format!("{}/lifecycle", self.public_url)
    }
}

impl Config {
    /// Defaults: window now - 1 day .. now + 180 days, refreshed daily, polling every 5 minutes, notified rooms read
    /// after 1 s, rooms re-read every 30 seconds, retries from 1 s doubling up to 5 minutes, no webhooks.
    pub fn new(connections: Connections, graph: ClientConfig) -> Self {
        Self {
            connections,
            graph,
            window_past: vocabulary::window::DEFAULT_PAST,
            horizon: vocabulary::window::DEFAULT_HORIZON,
            window_refresh: Duration::from_secs(24 * 3600),
            poll_interval: Duration::from_secs(300),
            notification_delay: DEFAULT_NOTIFICATION_DELAY,
            rooms_refresh: Duration::from_secs(30),
            page_size: None,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            webhook: None,
        }
    }
}

impl Config {
    /// Refuses settings that would spin (zero intervals) or that Graph would refuse, with a message that says
    /// which setting to fix.
    pub fn validate(&self) -> Result<(), Error> {
        let positive = [
            ("poll_interval", self.poll_interval),
            ("rooms_refresh", self.rooms_refresh),
            ("retry_base", self.retry_base),
            ("horizon", self.horizon),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, d)| d.is_zero()) {
            return Err(Error::Config(format!("{name} must be greater than zero")));
        }
        if self.retry_max < self.retry_base {
            return Err(Error::Config("retry_max must be at least retry_base".into()));
        }
        if let Some(webhook) = &self.webhook {
            if !(webhook.public_url.starts_with("https://") || webhook.public_url.starts_with("http://")) {
                return Err(Error::Config("webhook public_url must be an http(s) URL (https for Graph)".into()));
            }
            if webhook.subscription_lifetime.is_zero() || webhook.subscription_lifetime > MAX_SUBSCRIPTION_LIFETIME {
                return Err(Error::Config("subscription_lifetime must be between 1 s and 10,080 minutes".into()));
            }
            if webhook.renew_before >= webhook.subscription_lifetime {
                return Err(Error::Config("renew_before must be shorter than subscription_lifetime".into()));
            }
            if webhook.check_interval.is_zero() {
                return Err(Error::Config("webhook check_interval must be greater than zero".into()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let graph = ClientConfig::new("t", "c", graph_client::Secret::new("s"));
        Config::new(
            Connections::new(streams::KafkaSettings::new("k:9092"), "http://r", tokio_postgres::Config::new()),
            graph,
        )
    }

    #[test]
    fn the_defaults_are_valid_with_and_without_webhooks() {
        let mut c = config();
        assert!(c.validate().is_ok());
        c.webhook = Some(WebhookConfig::new(([127, 0, 0, 1], 0).into(), "https://roomsync.example.org/graph/"));
        assert!(c.validate().is_ok());
        let webhook = c.webhook.as_ref().expect("webhook");
        assert_eq!(webhook.notification_url(), "https://roomsync.example.org/graph/notifications");
        assert_eq!(webhook.lifecycle_url(), "https://roomsync.example.org/graph/lifecycle");
    }

    #[test]
    fn settings_that_would_spin_or_that_graph_refuses_are_rejected() {
        let mut c = config();
        c.poll_interval = Duration::ZERO;
        assert!(c.validate().is_err());
        let mut c = config();
        let mut webhook = WebhookConfig::new(([127, 0, 0, 1], 0).into(), "https://x");
        webhook.subscription_lifetime = MAX_SUBSCRIPTION_LIFETIME + Duration::from_secs(60);
        c.webhook = Some(webhook.clone());
        assert!(c.validate().is_err());
        webhook.subscription_lifetime = Duration::from_secs(3600);
        webhook.renew_before = Duration::from_secs(3600);
        c.webhook = Some(webhook.clone());
        assert!(c.validate().is_err());
        webhook.renew_before = Duration::from_secs(60);
        webhook.public_url = "ftp://x".into();
        c.webhook = Some(webhook);
        assert!(c.validate().is_err());
    }
}
