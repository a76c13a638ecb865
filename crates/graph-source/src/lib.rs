//! Graph source: every change in every watched Outlook room calendar into `<prefix>.graph.events`, promptly
//! (webhooks) and without gaps (delta rounds with durable links, fallback polling).
//!
//! ```text
//! bb_resource_outlook_item --(re-read)--> Supervisor --one task per room--> round: delta -> $batch GET -> Kafka
//!                                                           ^                              |
//! Graph --POST--> webhook (clientState check) --poke--------+            delta link + known ids -> PostgreSQL
//!        <------- SubscriptionManager (create / renew / recreate / delete per room)
//! ```
//! Invariants: progress (delta link, known ids) is stored only after Kafka acknowledged the round, so a crash
//! replays and never skips; deletions are inferred only from `@removed`, 404 or a completed full round; one
//! broken room never stops the others; the webhook answers at once and leaves the work to the room tasks.

#![warn(missing_docs)]

mod config;
mod enrich;
mod error;
pub mod metrics;
mod normalize;
mod room;
mod round;
mod store;
mod subscription;
mod supervisor;
mod webhook;

use std::future::Future;
use std::sync::Arc;

use graph_client::GraphClient;
use schema_registry::{AvroCodec, RegistryClient};
use streams::{ensure_topics, RecordProducer, TopicSpec};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use config::{Config, WebhookConfig, DEFAULT_NOTIFICATION_DELAY, MAX_SUBSCRIPTION_LIFETIME};
pub use error::Error;
pub use normalize::{delete_record, upsert_record, Unreadable};
pub use room::Rooms;
pub use subscription::{LifecycleCommand, SubscriptionBook};
pub use webhook::{webhook_router, WebhookState};

/// Runs the Graph source until `shutdown` completes. One instance per installation (topic prefix) is active
/// (`supervision::role`); others stand by and take over when its database session ends. The webhook listener is
/// bound only while active, so a load balancer in front of several instances finds the active one. Transient
/// failures (a lost database session, the role with it) start it again after a backoff (`supervision`).
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    config.validate()?;
    supervision::supervise("graph-source", shutdown, |stop| run_once(&config, stop.wait())).await
}

async fn run_once(config: &Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let mut shutdown = std::pin::pin!(shutdown);
    let Some(role) = Role::take(config, &mut shutdown).await? else { return Ok(()) };
    let listener = match &config.webhook {
        Some(webhook) => Some(
            TcpListener::bind(webhook.listen).await.map_err(|source| Error::Listen { addr: webhook.listen, source })?,
        ),
        None => None,
    };
    match active(config, listener, role, &mut shutdown).await? {
        Ended::Shutdown => Ok(()),
        Ended::RoleLost => Err(Error::RoleLost),
    }
}

/// Like [`run`], with the webhook listener bound by the caller (tests bind 127.0.0.1:0). The listener is used
/// only when `config.webhook` is set. Not supervised: losing the role ends it with [`Error::RoleLost`] (the
/// listener cannot be bound again).
pub async fn run_with_listener(
    config: Config,
    listener: Option<TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    config.validate()?;
    let mut shutdown = std::pin::pin!(shutdown);
    let Some(role) = Role::take(&config, &mut shutdown).await? else { return Ok(()) };
    match active(&config, listener, role, &mut shutdown).await? {
        Ended::Shutdown => Ok(()),
        Ended::RoleLost => Err(Error::RoleLost),
    }
}

/// How an active period ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    Shutdown,
    /// The session holding the role ended (a database restart, a network failure): another instance may be
    /// active now.
    RoleLost,
}

/// The installation's Graph-source role, held by a database session of its own.
struct Role {
    _session: tokio_postgres::Client,
    connection: tokio::task::JoinHandle<()>,
}

impl Role {
    /// Waits for the role (`None`: shutdown came first).
    async fn take(config: &Config, shutdown: &mut (impl Future<Output = ()> + Unpin)) -> Result<Option<Role>, Error> {
        let mut settings = config.connections.database.clone();
        settings.options(supervision::role::keepalive_options()).application_name("roomsync-graph-source");
        let (session, connection) = settings.connect(tokio_postgres::NoTls).await?;
        let connection = tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(error = %error, "the graph source's role session ended");
            }
        });
        let role = format!("roomsync-graph-source/{}", config.connections.topics.prefix());
        if supervision::role::take(&session, "graph-source", &role, shutdown).await? {
            Ok(Some(Role { _session: session, connection }))
        } else {
            Ok(None)
        }
    }

    /// Completes when the session holding the role has ended.
    async fn lost(&mut self) {
        let _ = (&mut self.connection).await;
    }
}

/// The active Graph source, until shutdown or until its role is lost.
async fn active(
    config: &Config,
    listener: Option<TcpListener>,
    mut role: Role,
    shutdown: &mut (impl Future<Output = ()> + Unpin),
) -> Result<Ended, Error> {
    let store = store::Store::new(config.connections.database.clone());
    store.check_schema().await?;
    let topics = config.connections.topics.clone();
    let topic = topics.graph_events();
    ensure_topics(&config.connections.kafka, &[TopicSpec::of(&topics, &topic)]).await?;
    let codec = AvroCodec::new(RegistryClient::new(&config.connections.registry_url));
    let producer = RecordProducer::new(&config.connections.kafka, codec)?;
    let graph = GraphClient::new(config.graph.clone())?;
    let ctx = Arc::new(round::RoundContext {
        graph: graph.clone(),
        store,
        producer,
        topic,
        partitions: config.connections.kafka.partitions.max(1),
        window_past: config.window_past,
        horizon: config.horizon,
        window_refresh: config.window_refresh,
        page_size: config.page_size,
    });
    let rooms = Arc::new(Rooms::default());
    let rooms_changed = Arc::new(Notify::new());
    let cancel = CancellationToken::new();
    let mut tasks = Vec::new();

    let supervisor = supervisor::Supervisor {
        ctx: Arc::clone(&ctx),
        rooms: Arc::clone(&rooms),
        pace: room::Pace {
            poll_interval: config.poll_interval,
            notification_delay: config.notification_delay,
            retry_base: config.retry_base,
            retry_max: config.retry_max,
        },
        refresh: config.rooms_refresh,
        changed: Arc::clone(&rooms_changed),
    };
    tasks.push(tokio::spawn(supervisor.run(cancel.child_token())));

    if let (Some(webhook), Some(listener)) = (config.webhook.clone(), listener) {
        let book = Arc::new(SubscriptionBook::default());
        let (commands, received) = mpsc::unbounded_channel();
        let router = webhook_router(WebhookState { book: Arc::clone(&book), rooms: Arc::clone(&rooms), commands });
        let server_cancel = cancel.child_token();
        let addr = listener.local_addr().ok();
        info!(listen = ?addr, public_url = %webhook.public_url, "webhook receiver listening");
        tasks.push(tokio::spawn(async move {
            let stop = server_cancel.clone();
            if let Err(error) =
                axum::serve(listener, router).with_graceful_shutdown(async move { stop.cancelled().await }).await
            {
                tracing::error!(error = %error, "webhook receiver stopped");
            }
        }));
        let manager = subscription::SubscriptionManager {
            graph,
            ctx: Arc::clone(&ctx),
            book,
            rooms: Arc::clone(&rooms),
            config: webhook,
            rooms_changed,
        };
        tasks.push(tokio::spawn(manager.run(received, cancel.child_token())));
    }

    let ended = tokio::select! {
        () = &mut *shutdown => Ended::Shutdown,
        () = role.lost() => Ended::RoleLost,
    };
    match ended {
        Ended::Shutdown => info!("graph source stopping"),
        Ended::RoleLost => tracing::warn!(
            "the graph source lost its role (database session ended): stopping its \
            rooms and standing by"
        ),
    }
    cancel.cancel();
    for task in tasks {
        let _ = task.await;
    }
    Ok(ended)
}
