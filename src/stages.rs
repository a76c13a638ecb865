//! From roomsync's one configuration to each stage's own settings. Stages take plain structs and know nothing
//! of files or the environment; this module is the only place that maps one onto the other.

use std::future::Future;
use std::pin::Pin;

use anyhow::Context;

use crate::cli::Stage;
use crate::config::Config;

/// A running stage: resolves when the stage stops, with its error if it failed.
pub type StageTask = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// Starts `stage` with the settings `roomsync run` gives it (the graph sink with the periodic reconciliation of
/// `[reconcile]`); it stops when `shutdown` completes. `roomsync run`, the end-to-end test, the chaos test and
/// the pipeline benchmark all start stages through here, so they run the same thing.
pub fn start(
    config: &Config,
    stage: Stage,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<StageTask> {
    Ok(match stage {
        Stage::Cdc => {
            let settings = cdc(config)?;
            Box::pin(async move { cdc_reader::run(settings, shutdown).await.map_err(Into::into) })
        }
        Stage::GraphSource => {
            let settings = graph_source(config)?;
            Box::pin(async move { graph_source::run(settings, shutdown).await.map_err(Into::into) })
        }
        Stage::Resolver => {
            let settings = resolver(config)?;
            Box::pin(async move { resolver::run(settings, shutdown).await.map_err(Into::into) })
        }
        Stage::GraphSink => {
            let settings = graph_sink(config)?;
            let periodic = config.reconcile.enabled.then(|| reconcile(config)).transpose()?;
            let interval = config.reconcile.interval;
            Box::pin(async move {
                let Some(reconcile) = periodic else {
                    return graph_sink::run(settings, shutdown).await.map_err(Into::into);
                };
                // The periodic reconciliation lives and dies with the sink whose writes it checks; an interrupted
                // run is like a crashed one (its repairs are compare-and-set on the mapping rows).
                tokio::select! {
                    result = graph_sink::run(settings, shutdown) => result.map_err(Into::into),
                    () = reconcile::run_periodically(reconcile, interval, std::future::pending()) => Ok(()),
                }
            })
        }
    })
}

/// The booking database's connection settings, as every stage takes them: `[database] url` (which holds no
/// password, [`Config::validate`]) with the password (from the environment or a file) set beside it, never inside a
/// URL string. `tokio_postgres::Config` prints a password as `_`, so no stage's settings can show it.
pub fn database(config: &Config) -> anyhow::Result<tokio_postgres::Config> {
    let mut database: tokio_postgres::Config = config.database.url.parse().context("[database] url")?;
    if let Some(password) = &config.database.password {
        database.password(password.expose());
    }
    Ok(database)
}

/// The consumer group of a stage ([`vocabulary::topics::Topics::group`]).
pub fn consumer_group(config: &Config, stage: &str) -> String {
    vocabulary::topics::Topics::new(config.kafka.topic_prefix.clone()).group(stage)
}

/// Where everything is, as every stage takes it: Kafka, the schema registry, the topic names and the booking
/// database ([`database`]).
pub fn connections(config: &Config) -> anyhow::Result<streams::Connections> {
    let mut connections =
        streams::Connections::new(kafka_settings(config), config.registry.url.clone(), database(config)?);
    connections.topics = vocabulary::topics::Topics::new(config.kafka.topic_prefix.clone());
    Ok(connections)
}

/// Kafka connection settings.
pub fn kafka_settings(config: &Config) -> streams::KafkaSettings {
    streams::KafkaSettings {
        bootstrap_servers: config.kafka.bootstrap_servers.clone(),
        properties: config.kafka.properties.clone(),
        partitions: config.kafka.partitions,
        replication_factor: config.kafka.replication_factor,
        rejoin_unassigned_after: config.kafka.rejoin_unassigned_after,
    }
}

/// The Graph client's settings (the client secret must be given).
pub fn graph_client_config(config: &Config) -> anyhow::Result<graph_client::ClientConfig> {
    let secret = config.graph.client_secret.as_ref().context(
        "the Graph client secret is missing: set ROOMSYNC__GRAPH__CLIENT_SECRET or [graph] client_secret_file",
    )?;
    let mut client =
        graph_client::ClientConfig::new(config.graph.tenant_id.clone(), config.graph.client_id.clone(), secret.clone())
            .with_base_urls(config.graph.authority_url.clone(), config.graph.base_url.clone());
    client.mailbox_concurrency = config.graph.max_concurrent_per_mailbox;
    Ok(client)
}

/// The CDC reader's settings.
pub fn cdc(config: &Config) -> anyhow::Result<cdc_reader::Config> {
    let mut cdc = cdc_reader::Config::new(connections(config)?);
    cdc.slot = config.cdc.slot.clone();
    cdc.publication = config.cdc.publication.clone();
    cdc.schema = config.cdc.schema.clone();
    cdc.tables = config.cdc.tables.clone();
    cdc.excluded_columns = config.cdc.excluded_columns.clone();
    cdc.snapshot_batch_rows = config.cdc.snapshot_batch_rows;
    cdc.max_message_bytes = config.cdc.max_message_bytes;
    cdc.validate().map_err(|err| anyhow::anyhow!("cdc settings: {err}"))?;
    Ok(cdc)
}

/// The resolver's settings.
pub fn resolver(config: &Config) -> anyhow::Result<resolver::Config> {
    let mut resolver = resolver::Config::new(connections(config)?);
    resolver.source_schema = config.cdc.schema.clone();
    resolver.policies = resolver::Policies {
        overlap: config.sync.overlap,
        min_piece: config.sync.min_piece,
        outlook_edit: config.sync.outlook_edits,
        conflict: config.sync.conflicts,
        import_outlook_bookings: config.sync.import_outlook_bookings,
        dst: config.sync.dst,
        ..resolver::Policies::default()
    };
    resolver.window.past = config.sync.window_past;
    resolver.window.horizon = config.sync.horizon;
    resolver.stall_after = config.sync.stall_after;
    resolver.checkpoint_every = Some(config.sync.checkpoint_every).filter(|every| !every.is_zero());
    Ok(resolver)
}

/// The Graph sink's settings.
pub fn graph_sink(config: &Config) -> anyhow::Result<graph_sink::Config> {
    let mut sink = graph_sink::Config::new(connections(config)?, graph_client_config(config)?);
    sink.imports_enabled = config.graph_sink.imports_enabled;
    sink.import_bb_events = config.graph_sink.import_bb_events;
    sink.record_import_conflicts = config.graph_sink.record_import_conflicts;
    sink.conflict_policy = config.sync.conflicts;
    sink.max_batch_records = config.graph_sink.max_batch_records;
    sink.batch_linger = config.graph_sink.batch_linger;
    sink.max_catch_up_records = config.graph_sink.max_catch_up_records;
    sink.catch_up_linger = config.graph_sink.catch_up_linger;
    sink.unit_retry_limit = config.graph_sink.unit_retry_limit;
    sink.lookups = config.graph_sink.lookups;
    sink.decline_interval = config.graph_sink.decline_interval;
    sink.decline_comment = config.graph_sink.decline_comment.clone();
    Ok(sink)
}

/// Reconciliation's settings.
pub fn reconcile(config: &Config) -> anyhow::Result<reconcile::Config> {
    let mut reconcile = reconcile::Config::new(connections(config)?, graph_client_config(config)?);
    reconcile.window_past = config.sync.window_past;
    reconcile.horizon = config.sync.horizon;
    Ok(reconcile)
}

/// The Graph source's settings.
pub fn graph_source(config: &Config) -> anyhow::Result<graph_source::Config> {
    let mut source = graph_source::Config::new(connections(config)?, graph_client_config(config)?);
    source.window_past = config.sync.window_past;
    source.horizon = config.sync.horizon;
    source.window_refresh = config.graph_source.window_refresh;
    source.poll_interval = config.graph_source.poll_interval;
    source.notification_delay = config.graph_source.notification_delay;
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
    fn the_password_is_set_beside_the_url_as_it_is() -> anyhow::Result<()> {
        let mut config = Config::default();
        config.database.url = "postgres://roomsync@db:5432/booking".into();
        assert_eq!(database(&config)?.get_password(), None);
        config.database.password = Some(Secret::new("p@ss word"));
        let settings = database(&config)?;
        assert_eq!(settings.get_password(), Some("p@ss word".as_bytes()));
        assert_eq!((settings.get_user(), settings.get_dbname()), (Some("roomsync"), Some("booking")));
        Ok(())
    }

    #[test]
    fn no_stage_settings_print_the_database_password() -> anyhow::Result<()> {
        let mut config = Config::default();
        config.database.url = "postgres://roomsync@db:5432/booking".into();
        config.database.password = Some(Secret::new("pw-s3cret"));
        config.graph.client_secret = Some(Secret::new("s"));
        let printed = [
            format!("{:?}", cdc(&config)?),
            format!("{:?}", resolver(&config)?),
            format!("{:?}", graph_sink(&config)?),
            format!("{:?}", graph_source(&config)?),
            format!("{:?}", reconcile(&config)?),
        ];
        for (stage, text) in ["cdc", "resolver", "graph-sink", "graph-source", "reconcile"].iter().zip(&printed) {
            assert!(!text.contains("pw-s3cret"), "{stage} prints the password: {text}");
        }
        Ok(())
    }

    #[test]
    fn the_cdc_reader_gets_the_configured_names_and_exclusions() -> anyhow::Result<()> {
        let mut config = Config::default();
        config.kafka.topic_prefix = "kommune".into();
        config.cdc.excluded_columns.push("bb_event.contact_phone".into());
        let cdc = cdc(&config)?;
        assert_eq!(cdc.slot, "roomsync");
        assert_eq!(cdc.connections.topics.prefix(), "kommune");
        assert!(cdc.is_excluded("bb_event", "secret"));
        assert!(cdc.is_excluded("bb_event", "contact_phone"));
        assert!(!cdc.is_excluded("bb_booking", "contact_phone"));
        Ok(())
    }

    #[test]
    fn the_cdc_reader_library_defaults_are_those_roomsync_run_uses() -> anyhow::Result<()> {
        let run = cdc(&Config::default())?;
        let library = cdc_reader::Config::new(run.connections.clone());
        let settings = |c: &cdc_reader::Config| {
            format!(
                "slot {} publication {} schema {} tables {:?} excluded {:?} snapshot batch {} max message {}",
                c.slot,
                c.publication,
                c.schema,
                c.tables,
                c.excluded_columns,
                c.snapshot_batch_rows,
                c.max_message_bytes
            )
        };
        assert_eq!(settings(&library), settings(&run));
        Ok(())
    }

    #[test]
    fn consumer_groups_follow_the_topic_prefix_so_deployments_never_share_one() -> anyhow::Result<()> {
        let mut config = Config::default();
        config.graph.client_secret = Some(Secret::new("s"));
        assert_eq!(resolver(&config)?.group, "roomsync-resolver", "the default prefix keeps the old names");
        assert_eq!(graph_sink(&config)?.consumer_group, "roomsync-graph-sink");
        config.kafka.topic_prefix = "kommune".into();
        assert_eq!(resolver(&config)?.group, "kommune-resolver");
        assert_eq!(graph_sink(&config)?.consumer_group, "kommune-graph-sink");
        Ok(())
    }

    #[test]
    fn the_resolver_uses_the_sync_rules_and_window() -> anyhow::Result<()> {
        let mut config = Config::default();
        config.sync.overlap = crate::config::OverlapPolicy::Hide;
        config.sync.horizon = std::time::Duration::from_secs(3600 * 24 * 30);
        let resolver = resolver(&config)?;
        assert_eq!(resolver.policies.overlap, crate::config::OverlapPolicy::Hide);
        assert_eq!(resolver.window.horizon, config.sync.horizon);
        assert_eq!(resolver.policies.time_zone, "Europe/Oslo");
        Ok(())
    }

    #[test]
    fn every_stage_reaches_the_same_systems() -> anyhow::Result<()> {
        let mut config = Config::default();
        config.kafka.topic_prefix = "kommune".into();
        config.database.password = Some(Secret::new("pw"));
        config.graph.client_secret = Some(Secret::new("s"));
        let expected = connections(&config)?;
        assert_eq!(expected.topics.prefix(), "kommune");
        assert_eq!(expected.database.get_password(), Some("pw".as_bytes()));
        assert_eq!(cdc(&config)?.connections, expected);
        assert_eq!(resolver(&config)?.connections, expected);
        assert_eq!(graph_sink(&config)?.connections, expected);
        assert_eq!(graph_source(&config)?.connections, expected);
        assert_eq!(reconcile(&config)?.connections, expected);
        Ok(())
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
