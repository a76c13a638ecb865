//! From roomsync's one configuration to each stage's own settings. Stages take plain structs and know nothing
//! of files or the environment; this module is the only place that maps one onto the other.

use anyhow::Context;

use crate::config::Config;

/// The booking database URL with the password (from the environment or a file) filled in, for the stages that
/// take a URL.
pub fn database_url(config: &Config) -> String {
    let Some(password) = &config.database.password else { return config.database.url.clone() };
    let url = &config.database.url;
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user = &url[scheme + 3..at];
            format!("{}{user}:{}{}", &url[..scheme + 3], percent_encode(password.expose()), &url[at..])
        }
        _ => url.clone(),
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Kafka connection settings.
pub fn kafka_settings(config: &Config) -> streams::KafkaSettings {
    streams::KafkaSettings {
        bootstrap_servers: config.kafka.bootstrap_servers.clone(),
        properties: config.kafka.properties.clone(),
        partitions: config.kafka.partitions,
        replication_factor: config.kafka.replication_factor,
    }
}

/// The Graph client's settings (the client secret must be given).
pub fn graph_client_config(config: &Config) -> anyhow::Result<graph_client::ClientConfig> {
    let secret = config.graph.client_secret.as_ref().context(
        "the Graph client secret is missing: set ROOMSYNC__GRAPH__CLIENT_SECRET or [graph] client_secret_file",
    )?;
    let mut client = graph_client::ClientConfig::new(
        config.graph.tenant_id.clone(),
        config.graph.client_id.clone(),
        graph_client::Secret::new(secret.expose()),
    )
    .with_base_urls(config.graph.authority_url.clone(), config.graph.base_url.clone());
    client.mailbox_concurrency = config.graph.max_concurrent_per_mailbox;
    Ok(client)
}

/// The Graph source's settings.
pub fn graph_source(config: &Config) -> anyhow::Result<graph_source::Config> {
    let mut source = graph_source::Config::new(
        database_url(config),
        kafka_settings(config),
        config.registry.url.clone(),
        graph_client_config(config)?,
    );
    source.topic_prefix = config.kafka.topic_prefix.clone();
    source.window_past = config.sync.window_past;
    source.horizon = config.sync.horizon;
    source.window_refresh = config.graph_source.window_refresh;
    source.poll_interval = config.graph_source.poll_interval;
    source.rooms_refresh = config.graph_source.rooms_refresh;
    source.page_size = config.graph_source.page_size;
    if let Some(public_url) = &config.webhooks.public_url {
        let listen = config.webhooks.listen.parse().context("[webhooks] listen")?;
        let mut webhook = graph_source::WebhookConfig::new(listen, public_url.clone());
        webhook.subscription_lifetime = config.webhooks.subscription_lifetime;
        webhook.renew_before = config.webhooks.renew_before;
        source.webhook = Some(webhook);
    }
    source.validate().map_err(|err| anyhow::anyhow!("graph source settings: {err}"))?;
    Ok(source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn the_password_is_filled_into_the_url_encoded() {
        let mut config = Config::default();
        config.database.url = "postgres://roomsync@db:5432/booking".into();
        assert_eq!(database_url(&config), "postgres://roomsync@db:5432/booking");
        config.database.password = Some(Secret::new("p@ss word"));
        assert_eq!(database_url(&config), "postgres://roomsync:p%40ss%20word@db:5432/booking");
    }

    #[test]
    fn the_graph_source_follows_the_sync_window_and_webhook_settings() -> anyhow::Result<()> {
        let mut config = Config::default();
        assert!(graph_source(&config).is_err(), "no client secret");
        config.graph.client_secret = Some(Secret::new("s"));
        let source = graph_source(&config)?;
        assert_eq!(source.horizon, config.sync.horizon);
        assert!(source.webhook.is_none(), "no public URL: polling only");
        config.webhooks.public_url = Some("https://roomsync.kommune.no/graph".into());
        let source = graph_source(&config)?;
        assert_eq!(
            source.webhook.map(|w| w.notification_url()),
            Some("https://roomsync.kommune.no/graph/notifications".to_owned())
        );
        Ok(())
    }
}
