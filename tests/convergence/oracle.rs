//! The independent oracle: from the final booking tables (plain SQL, `testkit::oracle`) and the Outlook history
//! the generator recorded, what every mapped room calendar must hold, which conflicts must be recorded and which
//! Outlook bookings must be imported. It follows docs/architecture.md's domain rules with the default policies and
//! does not call any roomsync code.
//!
//! The booking side's rules are `testkit::oracle`'s. The Outlook side: Outlook-origin bookings stay as their
//! owner left them; one that overlaps an active reservation of the room (untrimmed) is a conflict per reservation
//! (one `roomsync_conflicts` row per booking and reservation); a single one overlapping nothing is imported (a
//! mapping row of type `outlook`).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration as TimeDelta, Utc};
use testkit::oracle::{calendars, oslo_local, slot, Reservation};
pub use testkit::oracle::{Rules, Slot};
use tokio_postgres::Client;

use super::outlook::oslo_instant;
use super::workload::History;

/// A conflict that must be recorded: mailbox, Outlook event id (`None` for an occurrence of a series, whose id the
/// generator does not know), reservation kind and id, and the overlap (for the message only: a recorded row keeps
/// the span of its first detection, see chaos-findings F6).
pub type ExpectedConflict = (String, Option<String>, &'static str, i32, DateTime<Utc>, DateTime<Utc>);

/// What the room calendars, the mapping table and the conflicts must hold.
#[derive(Debug, Default)]
pub struct Expected {
    /// roomsync's items per mailbox: item key -> (subject, slot).
    pub items: BTreeMap<String, BTreeMap<String, (String, Slot)>>,
    /// Outlook-origin events per mailbox (subject, slot), sorted.
    pub outlook: BTreeMap<String, Vec<(String, Slot)>>,
    /// Conflicts that must be in roomsync_conflicts.
    pub conflicts: BTreeSet<ExpectedConflict>,
    /// (mailbox, event id) of Outlook bookings that must be imported.
    pub imports: BTreeSet<(String, String)>,
    /// Every mapped mailbox.
    pub mailboxes: BTreeSet<String>,
}

/// The rules of `config` as of now.
pub fn rules_of(config: &roomsync::config::Config) -> anyhow::Result<Rules> {
    let now = chrono::Utc::now();
    Ok(Rules {
        window_start: now - TimeDelta::from_std(config.sync.window_past)?,
        window_end: now + TimeDelta::from_std(config.sync.horizon)?,
        min_piece: config.sync.min_piece,
    })
}

/// Computes the expectation from the tables as they are now and the Outlook history.
pub async fn expected(db: &Client, history: &History, rules: Rules) -> anyhow::Result<Expected> {
    let booking_side = calendars(db, rules).await?;
    let mut out = Expected { items: booking_side.items, mailboxes: booking_side.mailboxes, ..Expected::default() };
    let rooms = booking_side.reservations;
    for (id, booking) in &history.outlook_bookings {
        let entry = (booking.subject.clone(), slot(booking.start, booking.end));
        out.outlook.entry(booking.mailbox.clone()).or_default().push(entry);
        let items: &[Reservation] = rooms.get(&booking.mailbox).map(Vec::as_slice).unwrap_or_default();
        let mut overlaps_any = false;
        for k in 0..booking.occurrences {
            let week = TimeDelta::days(7 * i64::from(k));
            // The first occurrence is where Outlook put it; later ones repeat its wall clock, as Outlook expands.
            let (start, end) = if k == 0 {
                (booking.start, booking.end)
            } else {
                (oslo_instant(oslo_local(booking.start) + week), oslo_instant(oslo_local(booking.end) + week))
            };
            if end <= rules.window_start || start >= rules.window_end {
                continue;
            }
            for item in items.iter().filter(|i| i.end > start && i.start < end) {
                overlaps_any = true;
                let event = (booking.occurrences == 1).then(|| id.clone());
                let conflict = (
                    booking.mailbox.clone(),
                    event,
                    item.kind.as_str(),
                    item.id,
                    item.start.max(start),
                    item.end.min(end),
                );
                out.conflicts.insert(conflict);
            }
        }
        let in_window = booking.end > rules.window_start && booking.start < rules.window_end;
        if booking.occurrences == 1 && !overlaps_any && in_window {
            out.imports.insert((booking.mailbox.clone(), id.clone()));
        }
    }
    for list in out.outlook.values_mut() {
        list.sort();
    }
    Ok(out)
}
