//! Mailboxes that hold no tagged event the mapping table does not know: there an item seen for the first time
//! (no mapping row) is created without a lookup by tags first.
//!
//! ```text
//! catching-up unit, while it fills: every mailbox it holds records of, eight at a time, beside the fill
//! unit: items with no row, step Find, in mailboxes not yet checked (nor being checked)
//!   -> GET /users/{m}/events?$filter=Any(ep: ep/id eq BookingSystemType)&$top=1&$select=id
//!      for every such mailbox at once ($batch across mailboxes)
//!   -> empty: clean (remembered for the life of the process) -> those items go straight to Create
//!      anything found, or a definite error: tagged (remembered) -> lookups by tags, as before
//!      a transient error: not remembered                       -> lookups by tags this time
//! ```
//! Why it is safe: a lookup by tags before a create (see `plan`) protects against three kinds of event the
//! mapping table does not know: one created by a crashed earlier run (but its intent row was committed before
//! the POST, so such an item has a row and keeps its lookup), the PHP integration's, and roomsync's own from
//! before a mapping table was lost or restored from a backup. The last two carry a BookingSystemType tag, so a
//! mailbox with no event carrying that property, whatever its value, has none of them; events roomsync creates
//! after the check all have rows. A restored database means a restart, which checks again. (Graph documents a
//! `$filter` with `eq` on the property's id alone for "resource instances that have certain extended
//! properties"; until 2026-12-07 the check asked for each of `event`, `booking` and `allocation`, three GETs that
//! also assumed the PHP integration spelled the kinds as roomsync does.)
//!
//! Assumption (README, "Catching up: first load and backlogs"): the PHP integration no longer writes to the room
//! calendars once roomsync runs. Where that may not hold, `lookups = "always"` keeps a lookup before every create.
//!
//! Why it matters: on a first load the lookups doubled the Graph requests (one GET per item) and, at Outlook's
//! 4 requests in flight per mailbox, the time; the check costs one request per mailbox, eight to a `$batch` call
//! while a unit fills (two of Outlook's waves of 4: 0.3 s at 150 ms a request).

use std::collections::{HashMap, HashSet};

use graph_client::properties::BOOKING_SYSTEM_TYPE;
use graph_client::{paths, BatchRequest, ErrorClass, GraphClient, Method};
use serde::Deserialize;
use tokio::task::JoinSet;
use tracing::{debug, warn};
use vocabulary::records::UpsertOrDelete;

use crate::plan::Step;
use crate::work::Work;

/// Whether an item may skip the lookup before its create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lookups {
    /// Look up before a create unless the item has no mapping row and its mailbox was checked clean.
    #[default]
    Checked,
    /// Look up before every create.
    Always,
}

/// Mailboxes per check call while a unit fills: two of Outlook's waves of 4 inner requests (a call's answer comes
/// when its last request is done; a full call of 20 took 0.75 s at 150 ms a request), 50 calls for 400 calendars.
const MAILBOXES_PER_CALL: usize = 8;

/// What the process knows of each mailbox (keys in lower case), and the checks running beside a filling unit.
#[derive(Debug, Default)]
pub struct CleanMailboxes {
    known: HashMap<String, bool>,
    /// Mailboxes named by a catching-up unit as it fills, not yet sent to a check.
    queued: Vec<String>,
    /// Mailboxes queued or being checked (lower case).
    asked: HashSet<String>,
    /// Checks sent while a unit fills (aborted if the sink is dropped): their answers are taken in by the unit's
    /// first [`skip_lookups`](Self::skip_lookups).
    running: JoinSet<Vec<(String, Option<bool>)>>,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    value: Vec<serde_json::Value>,
}

/// An item seen for the first time that would be looked up before its create: no mapping row when the unit
/// began, and no intent recorded or write tried since (a create whose answer was lost is looked up, always).
fn first_sight(work: &Work) -> bool {
    !work.is_done()
        && work.row.is_none()
        && work.announced.is_none()
        && work.failures == 0
        && work.step == Step::Find
        && work.desired.as_ref().is_some_and(|d| d.op == UpsertOrDelete::Upsert)
}

impl CleanMailboxes {
    /// Notes a mailbox a catching-up unit holds records of while it is still filling, and checks such mailboxes
    /// eight at a time beside the fill, so a first load's checks are done, or nearly, when its unit starts (the
    /// busiest calendar, a first load's critical path, no longer waits for them). A mailbox is checked once per
    /// process either way; one whose items all have rows did not need it.
    pub fn foresee(&mut self, client: &GraphClient, mailbox: &str) {
        let key = mailbox.to_ascii_lowercase();
        if self.known.contains_key(&key) || !self.asked.insert(key) {
            return;
        }
        self.queued.push(mailbox.to_owned());
        if self.queued.len() >= MAILBOXES_PER_CALL {
            self.send(client);
        }
    }

    /// What is known of `mailbox` so far, for a catching-up unit that writes while it fills.
    pub fn verdict(&self, mailbox: &str) -> Verdict {
        let key = mailbox.to_ascii_lowercase();
        match self.known.get(&key) {
            Some(true) => Verdict::Clean,
            Some(false) => Verdict::LookUp,
            None if self.asked.contains(&key) => {
                Verdict::Pending { sent: !self.queued.iter().any(|m| m.eq_ignore_ascii_case(mailbox)) }
            }
            // Its check failed transiently: its items are looked up.
            None => Verdict::LookUp,
        }
    }

    /// Whether checks sent beside a filling unit are still out.
    pub fn checking(&self) -> bool {
        !self.running.is_empty()
    }

    /// Takes in the next check sent beside a filling unit to answer (`None`: none is out).
    pub async fn next_answer(&mut self) -> Option<()> {
        let answered = self.running.join_next().await?;
        // A check that panicked leaves its mailboxes unknown: their items are looked up.
        self.remember(answered.unwrap_or_default());
        Some(())
    }

    /// Sends a check of the queued mailboxes (fewer than a call holds), for a filling unit that waits for one of
    /// them.
    pub fn send(&mut self, client: &GraphClient) {
        if self.queued.is_empty() {
            return;
        }
        let (client, mailboxes) = (client.clone(), std::mem::take(&mut self.queued));
        self.running.spawn(async move { check(&client, &mailboxes).await });
    }

    /// Checks the mailboxes of first-sight items not checked yet (taking in the checks sent while the unit
    /// filled first), then sends the first-sight items of clean mailboxes straight to their create. Returns how
    /// many items skipped their lookup.
    pub async fn skip_lookups(&mut self, client: &GraphClient, works: &mut [Work]) -> usize {
        self.send(client);
        while let Some(answered) = self.running.join_next().await {
            // A check that panicked leaves its mailboxes unknown: they are checked below.
            self.remember(answered.unwrap_or_default());
        }
        self.asked.clear();
        let mut unknown: Vec<String> = works
            .iter()
            .filter(|w| first_sight(w) && !self.known.contains_key(&w.mailbox.to_ascii_lowercase()))
            .map(|w| w.mailbox.clone())
            .collect();
        unknown.sort_by_key(|m| m.to_ascii_lowercase());
        unknown.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        if !unknown.is_empty() {
            let answered = check(client, &unknown).await;
            self.remember(answered);
        }
        let mut skipped = 0;
        for items in works.chunk_by_mut(|a, b| a.mailbox == b.mailbox) {
            let mailbox = items.first().map(|w| w.mailbox.to_ascii_lowercase()).unwrap_or_default();
            if self.known.get(&mailbox) == Some(&true) {
                skipped += skip_in_clean(items);
            }
        }
        skipped
    }

    /// Keeps what a check found; a mailbox whose check failed transiently stays unknown (and is no longer
    /// asked).
    fn remember(&mut self, answered: Vec<(String, Option<bool>)>) {
        for (mailbox, clean) in answered {
            let key = mailbox.to_ascii_lowercase();
            self.asked.remove(&key);
            if let Some(clean) = clean {
                self.known.insert(key, clean);
            }
        }
    }
}

/// What a catching-up unit knows of a mailbox's check while it fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No tagged event the table does not know: first-sight items go straight to their create.
    Clean,
    /// Tagged events found, or the check failed: items are looked up by their tags.
    LookUp,
    /// The check is queued (`sent: false`) or out.
    Pending {
        /// Whether it was sent.
        sent: bool,
    },
}

/// Sends the first-sight items among `items` (of one mailbox checked clean) straight to their create; returns
/// how many skipped their lookup.
pub fn skip_in_clean(items: &mut [Work]) -> usize {
    let mut skipped = 0;
    for work in items.iter_mut().filter(|w| first_sight(w)) {
        crate::writer::nothing_tagged(work);
        skipped += 1;
    }
    if skipped > 0 {
        metrics::counter!(crate::metrics::LOOKUPS_SKIPPED).increment(skipped as u64);
    }
    skipped
}

/// Asks each mailbox whether it holds an event carrying a BookingSystemType tag: `Some(true)` for none,
/// `Some(false)` for some (or a definite error), `None` after a transient error.
async fn check(client: &GraphClient, mailboxes: &[String]) -> Vec<(String, Option<bool>)> {
    let requests = mailboxes
        .iter()
        .enumerate()
        .map(|(m, mailbox)| {
            let url = paths::events(mailbox).filter_has_property(BOOKING_SYSTEM_TYPE).top(1).select(&["id"]);
            (mailbox.clone(), BatchRequest::new(format!("m{m}"), Method::GET, url))
        })
        .collect();
    let answers = match client.batch_across(requests).await {
        Ok(answers) => answers,
        Err(err) => {
            warn!(error = %err, "checking mailboxes for tagged events failed; their items are looked up");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (mailbox, answer) in mailboxes.iter().zip(answers) {
        let clean = match answer.json::<Page>() {
            Ok(page) => Some(page.value.is_empty()),
            Err(err) => match err.classify() {
                ErrorClass::Transient { .. } | ErrorClass::Throttled { .. } => None,
                _ => Some(false),
            },
        };
        debug!(%mailbox, ?clean, "mailbox checked for tagged events");
        out.push((mailbox.clone(), clean));
    }
    out
}
