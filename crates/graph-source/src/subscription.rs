//! Change-notification subscriptions: one per watched room, created with a fresh per-subscription secret,
//! renewed well before expiry, recreated after `subscriptionRemoved` (followed by a full round), reauthorized on
//! `reauthorizationRequired`, deleted when the room is no longer watched.
//!
//! Invariants: each subscription has its own random secret (clientState), stored with it and never logged; a
//! notification that arrives before the bookkeeping of a brand-new subscription is lost to the webhook but not
//! to the room, because fallback polling runs anyway; failures for one room are retried at the next check and
//! never stop the others.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use graph_client::{ErrorClass, GraphClient, Subscription};
use rand::RngCore;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::WebhookConfig;
use crate::error::Error;
use crate::metrics;
use crate::room::Rooms;
use crate::store::{Store, StoredSubscription};

/// The subscriptions the webhook accepts notifications for, by id.
#[derive(Debug, Default)]
pub struct SubscriptionBook {
    by_id: Mutex<HashMap<String, StoredSubscription>>,
}

impl SubscriptionBook {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, StoredSubscription>> {
        self.by_id.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The subscription with `id`.
    pub fn get(&self, id: &str) -> Option<StoredSubscription> {
        self.lock().get(id).cloned()
    }

    fn all(&self) -> Vec<StoredSubscription> {
        self.lock().values().cloned().collect()
    }

    pub(crate) fn put(&self, sub: StoredSubscription) {
        self.lock().insert(sub.id.clone(), sub);
    }

    fn forget(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// What the webhook asks the manager to do after a lifecycle event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifecycleCommand {
    /// Graph removed the subscription: make a new one (and run a full round).
    Recreate(String),
    /// Graph wants the subscription reauthorized.
    Reauthorize(String),
}

/// Creates, renews and removes subscriptions.
#[derive(Debug)]
pub struct SubscriptionManager {
    /// Graph.
    pub graph: GraphClient,
    /// Shared context (its store holds roomsync_subscriptions).
    pub ctx: Arc<crate::round::RoundContext>,
    /// What the webhook reads.
    pub book: Arc<SubscriptionBook>,
    /// Watched rooms.
    pub rooms: Arc<Rooms>,
    /// URLs and timing.
    pub config: WebhookConfig,
    /// Poked when the set of rooms changed.
    pub rooms_changed: Arc<Notify>,
}

fn secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The expiry Graph granted (it may shorten what we asked for); what we asked for if the answer has none.
fn granted(answer: &Subscription, asked: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&answer.expiration_date_time).map(|t| t.with_timezone(&Utc)).unwrap_or(asked)
}

fn count(op: &'static str) {
    ::metrics::counter!(metrics::SUBSCRIPTION_OPS, "op" => op).increment(1);
}

impl SubscriptionManager {
    fn db(&self) -> &Store {
        &self.ctx.store
    }

    fn expiry(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::from_std(self.config.subscription_lifetime).unwrap_or(chrono::Duration::days(2))
    }

    /// Loads the stored subscriptions, then keeps them in line with the watched rooms until `cancel` fires.
    pub async fn run(self, mut commands: mpsc::UnboundedReceiver<LifecycleCommand>, cancel: CancellationToken) {
        loop {
            match self.db().subscriptions().await {
                Ok(subs) => {
                    subs.into_iter().for_each(|s| self.book.put(s));
                    break;
                }
                Err(err) => warn!(error = %err, "cannot load subscriptions; retrying"),
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(self.config.check_interval) => {}
            }
        }
        // Wait for the supervisor's first read of the rooms, else every stored subscription looks unwatched.
        tokio::select! {
            () = cancel.cancelled() => return,
            () = self.rooms_changed.notified() => {}
        }
        loop {
            self.check().await;
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(self.config.check_interval) => {}
                () = self.rooms_changed.notified() => {}
                command = commands.recv() => match command {
                    Some(command) => self.handle(command).await,
                    None => return,
                },
            }
        }
    }

    async fn handle(&self, command: LifecycleCommand) {
        match command {
            LifecycleCommand::Recreate(id) => {
                let Some(sub) = self.book.get(&id) else { return };
                self.book.forget(&id);
                if let Err(err) = self.db().delete_subscription(&id).await {
                    warn!(error = %err, "cannot forget a removed subscription");
                }
                if self.rooms.contains(&sub.mailbox) {
                    if let Err(err) = self.create(&sub.mailbox).await {
                        warn!(mailbox = %sub.mailbox, error = %err, "cannot recreate the subscription; retrying later");
                    }
                    // Changes during the gap were not notified: a full round finds them.
                    self.rooms.poke(&sub.mailbox, true);
                }
            }
            LifecycleCommand::Reauthorize(id) => {
                let result = match self.graph.reauthorize_subscription(&id).await {
                    Ok(()) => Ok(()),
                    Err(err) if err.classify() == ErrorClass::NotFound => {
                        self.handle_gone(&id).await;
                        return;
                    }
                    // Renewal reauthorizes too; try it before giving up.
                    Err(_) => self.renew(&id).await,
                };
                match result {
                    Ok(()) => count("reauthorized"),
                    Err(err) => {
                        count("failed");
                        warn!(error = %err, "cannot reauthorize a subscription");
                    }
                }
            }
        }
    }

    async fn handle_gone(&self, id: &str) {
        self.book.forget(id);
        if let Err(err) = self.db().delete_subscription(id).await {
            warn!(error = %err, "cannot forget a vanished subscription");
        }
    }

    /// One pass: drop subscriptions of unwatched rooms, renew those close to expiry, create missing ones.
    pub async fn check(&self) {
        let watched = self.rooms.mailboxes();
        let renew_at = Utc::now() + chrono::Duration::from_std(self.config.renew_before).unwrap_or_default();
        let mut covered: HashSet<String> = HashSet::new();
        for sub in self.book.all() {
            if !watched.contains(&sub.mailbox) || covered.contains(&sub.mailbox) {
                match self.graph.delete_subscription(&sub.id).await {
                    Ok(()) => {
                        self.handle_gone(&sub.id).await;
                        count("deleted");
                        info!(mailbox = %sub.mailbox, "deleted subscription of an unwatched room");
                    }
                    Err(err) => warn!(mailbox = %sub.mailbox, error = %err, "cannot delete a subscription"),
                }
                continue;
            }
            if sub.expires_at <= renew_at {
                match self.renew(&sub.id).await {
                    Ok(()) => count("renewed"),
                    Err(Error::Graph(err))
                        if err.classify() == ErrorClass::NotFound || sub.expires_at <= Utc::now() =>
                    {
                        // Graph forgot it (or it lapsed): make a new one and catch up with a full round.
                        self.handle_gone(&sub.id).await;
                        self.rooms.poke(&sub.mailbox, true);
                        continue;
                    }
                    Err(err) => {
                        count("failed");
                        warn!(mailbox = %sub.mailbox, error = %err, "cannot renew a subscription; retrying later");
                    }
                }
            }
            covered.insert(sub.mailbox.clone());
        }
        for mailbox in watched.iter().filter(|m| !covered.contains(*m)) {
            if let Err(err) = self.create(mailbox).await {
                count("failed");
                warn!(mailbox = %mailbox, error = %err, "cannot create a subscription; retrying later");
            }
        }
    }

    async fn renew(&self, id: &str) -> Result<(), Error> {
        let asked = self.expiry();
        let renewed = self.graph.renew_subscription(id, asked).await?;
        let expires = granted(&renewed, asked);
        if let Some(mut sub) = self.book.get(id) {
            sub.expires_at = expires;
            self.book.put(sub);
        }
        self.db().renewed_subscription(id, expires).await
    }

    async fn create(&self, mailbox: &str) -> Result<(), Error> {
        let client_state = secret();
        let expires = self.expiry();
        let request = Subscription {
            id: None,
            resource: graph_client::paths::events_resource(mailbox),
            change_type: "created,updated,deleted".into(),
            notification_url: self.config.notification_url(),
            lifecycle_notification_url: Some(self.config.lifecycle_url()),
            client_state: Some(client_state.clone()),
            expiration_date_time: expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        let created = self.graph.create_subscription(&request).await?;
        let id = created
            .id
            .clone()
            .ok_or_else(|| Error::Graph(graph_client::GraphError::Decode("subscription without id".into())))?;
        let expires_at = granted(&created, expires);
        let stored = StoredSubscription { id, mailbox: mailbox.to_string(), client_state, expires_at };
        self.book.put(stored.clone());
        self.db().insert_subscription(&stored).await?;
        count("created");
        info!(mailbox = %mailbox, "created subscription");
        Ok(())
    }
}
