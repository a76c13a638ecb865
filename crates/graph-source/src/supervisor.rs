//! Which rooms are watched: `bb_resource_outlook_item` (active rows), re-read every `rooms_refresh`; a room task
//! is started for each new mailbox and stopped for each mailbox that was deactivated or deleted.
//!
//! Invariants: a database outage keeps the current set of rooms running (it never stops every room); a room's
//! task is stopped before it is forgotten, so a stopped room produces nothing more.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::metrics;
use crate::room::{watch_room, Pace, Rooms};
use crate::round::RoundContext;

/// Keeps one task per active room.
#[derive(Debug)]
pub struct Supervisor {
    /// Shared round context.
    pub ctx: Arc<RoundContext>,
    /// The registry the webhook pokes.
    pub rooms: Arc<Rooms>,
    /// Room task timing.
    pub pace: Pace,
    /// How often the table is re-read.
    pub refresh: Duration,
    /// Poked after the set of rooms changed (the subscription manager listens).
    pub changed: Arc<Notify>,
}

struct Running {
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl Supervisor {
    /// Runs until `cancel` fires, then stops every room task and waits for them.
    pub async fn run(self, cancel: CancellationToken) {
        let mut running: HashMap<String, Running> = HashMap::new();
        let mut first_read = true;
        loop {
            match self.ctx.store.active_rooms().await {
                Ok(rooms) => {
                    let wanted: HashMap<String, i32> = rooms.into_iter().map(|r| (r.mailbox, r.resource_id)).collect();
                    let before = running.len();
                    let stopped: Vec<String> = running.keys().filter(|m| !wanted.contains_key(*m)).cloned().collect();
                    for mailbox in &stopped {
                        self.rooms.remove(mailbox);
                        if let Some(room) = running.remove(mailbox) {
                            room.cancel.cancel();
                            let _ = room.task.await;
                        }
                        info!(mailbox = %mailbox, "stopped watching room");
                    }
                    for (mailbox, resource_id) in &wanted {
                        if running.contains_key(mailbox) {
                            continue;
                        }
                        let trigger = self.rooms.insert(mailbox);
                        let room_cancel = cancel.child_token();
                        let task = tokio::spawn(watch_room(
                            Arc::clone(&self.ctx),
                            mailbox.clone(),
                            trigger,
                            self.pace,
                            room_cancel.clone(),
                        ));
                        running.insert(mailbox.clone(), Running { cancel: room_cancel, task });
                        info!(mailbox = %mailbox, resource_id, "watching room");
                    }
                    // The first successful read is always announced: the subscription manager waits for it, so
                    // it never mistakes "not read yet" for "no rooms" and deletes every subscription on start.
                    if first_read || !stopped.is_empty() || running.len() != before {
                        self.changed.notify_one();
                    }
                    first_read = false;
                    ::metrics::gauge!(metrics::ROOMS_WATCHED).set(running.len() as f64);
                }
                Err(err) => warn!(error = %err, "cannot read the watched rooms; keeping the current set"),
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(self.refresh) => {}
            }
        }
        for (mailbox, room) in running {
            room.cancel.cancel();
            let _ = room.task.await;
            self.rooms.remove(&mailbox);
        }
    }
}
