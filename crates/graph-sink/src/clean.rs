//! Mailboxes that hold no tagged event the mapping table does not know: there an item seen for the first time
//! (no mapping row) is created without a lookup by tags first.
//!
//! ```text
//! unit: items with no row, step Find, in mailboxes not yet checked
//!   -> GET /users/{m}/events?$filter=Any(BookingSystemType eq kind)&$top=1&$select=id, per kind,
//!      for every such mailbox at once ($batch across mailboxes)
//!   -> all three empty: clean (remembered for the life of the process) -> those items go straight to Create
//!      anything found, or a definite error: tagged (remembered)         -> lookups by tags, as before
//!      a transient error: not remembered                                -> lookups by tags this time
//! ```
//! Why it is safe: a lookup by tags before a create (see `plan`) protects against three kinds of event the
//! mapping table does not know: one created by a crashed earlier run (but its intent row was committed before
//! the POST, so such an item has a row and keeps its lookup), the PHP integration's, and roomsync's own from
//! before a mapping table was lost or restored from a backup. The last two carry a BookingSystemType tag, so a
//! mailbox with no such event has none of them; events roomsync creates after the check all have rows. A
//! restored database means a restart, which checks again.
//!
//! Assumptions (README, "Catching up: first load and backlogs"): the PHP integration no longer writes to the room calendars once roomsync
//! runs, and it wrote BookingSystemType as roomsync does (`event`, `booking`, `allocation`). Where either may not
//! hold, `lookups = "always"` keeps a lookup before every create.
//!
//! Why it matters: on a first load the lookups doubled the Graph requests (one GET per item) and, at Outlook's
//! 4 requests in flight per mailbox, the time; the check costs 3 requests per mailbox, 20 to a `$batch` call.

use std::collections::HashMap;

use graph_client::properties::BOOKING_SYSTEM_TYPE;
use graph_client::{paths, BatchRequest, ErrorClass, GraphClient, Method};
use serde::Deserialize;
use tracing::{debug, warn};
use vocabulary::records::UpsertOrDelete;
use vocabulary::ReservationKind;

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

/// What the process knows of each mailbox (keys in lower case).
#[derive(Debug, Default)]
pub struct CleanMailboxes {
    known: HashMap<String, bool>,
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
    /// Checks the mailboxes of first-sight items not checked yet, then sends the first-sight items of clean
    /// mailboxes straight to their create. Returns how many items skipped their lookup.
    pub async fn skip_lookups(&mut self, client: &GraphClient, works: &mut [Work]) -> usize {
        let mut unknown: Vec<String> = works
            .iter()
            .filter(|w| first_sight(w) && !self.known.contains_key(&w.mailbox.to_ascii_lowercase()))
            .map(|w| w.mailbox.clone())
            .collect();
        unknown.sort_by_key(|m| m.to_ascii_lowercase());
        unknown.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        if !unknown.is_empty() {
            self.check(client, &unknown).await;
        }
        let mut skipped = 0;
        for work in works.iter_mut().filter(|w| first_sight(w)) {
            if self.known.get(&work.mailbox.to_ascii_lowercase()) == Some(&true) {
                crate::writer::nothing_tagged(work);
                skipped += 1;
            }
        }
        if skipped > 0 {
            metrics::counter!(crate::metrics::LOOKUPS_SKIPPED).increment(skipped as u64);
        }
        skipped
    }

    async fn check(&mut self, client: &GraphClient, mailboxes: &[String]) {
        let mut requests = Vec::new();
        for (m, mailbox) in mailboxes.iter().enumerate() {
            for (k, kind) in ReservationKind::ALL.iter().enumerate() {
                let url =
                    paths::events(mailbox).filter_property(BOOKING_SYSTEM_TYPE, kind.as_str()).top(1).select(&["id"]);
                requests.push((mailbox.clone(), BatchRequest::new(format!("m{m}k{k}"), Method::GET, url)));
            }
        }
        let answers = match client.batch_across(requests).await {
            Ok(answers) => answers,
            Err(err) => {
                warn!(error = %err, "checking mailboxes for tagged events failed; their items are looked up");
                return;
            }
        };
        for (mailbox, answers) in mailboxes.iter().zip(answers.chunks(ReservationKind::ALL.len())) {
            let mut clean = Some(true);
            for answer in answers {
                match answer.json::<Page>() {
                    Ok(page) if page.value.is_empty() => {}
                    Ok(_) => clean = clean.map(|_| false),
                    Err(err) => match err.classify() {
                        ErrorClass::Transient { .. } | ErrorClass::Throttled { .. } => clean = None,
                        _ => clean = clean.map(|_| false),
                    },
                }
            }
            debug!(%mailbox, ?clean, "mailbox checked for tagged events");
            if let Some(clean) = clean {
                self.known.insert(mailbox.to_ascii_lowercase(), clean);
            }
        }
    }
}
