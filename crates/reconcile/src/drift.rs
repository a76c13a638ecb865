//! The comparison of one room: desired items, mapping rows and the calendar in, findings out. Pure.
//!
//! Invariants:
//! - an event without roomsync tags (Outlook-origin) is never a finding;
//! - a desired item is only compared when its mapping row says the sink settled exactly this content
//!   (`synced`, same hash, no intent); otherwise the sink is behind or busy and the item is `Unmapped`;
//! - a tagged event is `Stale` only if no live mapping row claims it, the sink is not writing its item, its
//!   item's desired state is known, and it is not the one the sink would adopt for a missing item: whatever
//!   the sink may still be doing with an event is never taken for a stranger.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use graph_client::DateTimeTimeZone;
use vocabulary::records::DesiredContent;

use crate::actual::{Calendar, Observed, Row};
use crate::desired::{DesiredEntry, RawRecord};
use crate::report::{Drift, DriftKind};

/// What a repair of a finding would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Report only.
    None,
    /// Reset the mapping row (as read) and produce the desired record again.
    Rewrite {
        /// The event is gone: the row forgets it, so the sink creates the next generation.
        vanished: bool,
        /// The row's event id as read (compare-and-set).
        row_event: Option<String>,
        /// The row's content hash as read (compare-and-set).
        row_hash: Option<String>,
        /// The desired record to produce again.
        raw: RawRecord,
    },
    /// Delete the event.
    Delete,
}

/// One finding with its repair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    /// What differs.
    pub drift: Drift,
    /// What a repair does.
    pub action: Action,
}

/// One room's inputs.
pub(crate) struct Room<'a> {
    /// The mailbox.
    pub mailbox: &'a str,
    /// Desired upserts by item key.
    pub desired: &'a BTreeMap<String, DesiredEntry>,
    /// The room's mapping rows (read after the calendar).
    pub rows: &'a [Row],
    /// The calendar.
    pub calendar: &'a Calendar,
    /// Item keys whose desired state could not be decoded.
    pub unknown: &'a (dyn Fn(&str) -> bool + Sync),
}

fn micros_to_naive(micros: i64) -> Option<NaiveDateTime> {
    DateTime::<Utc>::from_timestamp_micros(micros).map(|t| t.naive_utc())
}

/// Whether a desired item overlaps `[from, to)`.
pub(crate) fn overlaps(content: &DesiredContent, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
    content.start < to.timestamp_micros() && content.end > from.timestamp_micros()
}

fn show(t: Option<NaiveDateTime>) -> String {
    t.map_or_else(|| "none".to_owned(), |t| format!("{}Z", t.format("%Y-%m-%dT%H:%M:%S")))
}

fn show_observed(t: Option<&DateTimeTimeZone>) -> String {
    match t {
        None => "none".to_owned(),
        Some(t) => match t.instant() {
            Ok(instant) => show(Some(instant.naive_utc())),
            Err(_) => format!("{} {}", t.date_time, t.time_zone),
        },
    }
}

/// Whether an observed time is the desired instant; an all-day item also matches as the floating midnight Graph
/// keeps all-day events at, read in the item's zone (the reading the Graph source and the sink use too).
fn same_time(desired: i64, observed: Option<&DateTimeTimeZone>, all_day: bool, zone: &str) -> bool {
    let Some(observed) = observed else { return false };
    if observed.instant().is_ok_and(|t| t.timestamp_micros() == desired) {
        return true;
    }
    let zone: Tz = zone.parse().unwrap_or(chrono_tz::Europe::Oslo);
    all_day && observed.floating_midnight(zone).is_ok_and(|t| t.timestamp_micros() == desired)
}

/// The fields in which the event differs from the desired content (empty: none). Graph's own rewriting (html
/// body, time-zone normalisation, fraction digits) is not compared: only instants, subject and all-day.
pub(crate) fn differences(content: &DesiredContent, event: &Observed) -> Vec<String> {
    let mut out = Vec::new();
    let all_day = content.is_all_day;
    let (start, end) = (event.start.as_ref(), event.end.as_ref());
    if !same_time(content.start, start, all_day, &content.time_zone) {
        out.push(format!("start desired {}, calendar {}", show(micros_to_naive(content.start)), show_observed(start)));
    }
    if !same_time(content.end, end, all_day, &content.time_zone) {
        out.push(format!("end desired {}, calendar {}", show(micros_to_naive(content.end)), show_observed(end)));
    }
    if event.subject.as_deref().unwrap_or("").trim() != content.subject.trim() {
        out.push("subject differs".to_owned());
    }
    if event.is_all_day.unwrap_or(false) != all_day {
        out.push(format!("isAllDay desired {all_day}, calendar {}", event.is_all_day.unwrap_or(false)));
    }
    out
}

impl Room<'_> {
    fn drift(&self, kind: DriftKind, item_key: &str, event_id: Option<&str>, detail: String) -> Drift {
        Drift {
            kind,
            mailbox: self.mailbox.to_owned(),
            item_key: item_key.to_owned(),
            event_id: event_id.map(str::to_owned),
            detail,
        }
    }

    /// Compares the room.
    pub(crate) fn findings(&self) -> Vec<Finding> {
        let by_key: HashMap<&str, &Row> = self.rows.iter().map(|r| (r.item_key.as_str(), r)).collect();
        let mut out = Vec::new();
        for (key, entry) in self.desired {
            if let Some(finding) = self.desired_item(key, entry, by_key.get(key.as_str()).copied()) {
                out.push(finding);
            }
        }
        for event in &self.calendar.in_window {
            if let Some(finding) = self.tagged_event(event, &by_key) {
                out.push(finding);
            }
        }
        out
    }

    fn desired_item(&self, key: &str, entry: &DesiredEntry, row: Option<&Row>) -> Option<Finding> {
        let content = entry.item.content.as_ref()?;
        let unmapped = |detail: String| Finding {
            drift: self.drift(DriftKind::Unmapped, key, row.and_then(|r| r.event_id.as_deref()), detail),
            action: Action::None,
        };
        let Some(row) = row else {
            return Some(unmapped("no mapping row: the sink has not written it yet".to_owned()));
        };
        if row.sync_status == "parked" {
            // The sink refused it for good and dead-lettered it; that is not drift of the calendar.
            return None;
        }
        if row.busy() || !matches!(row.sync_status.as_str(), "synced" | "deleted") {
            return Some(unmapped(format!(
                "the sink has not settled it (status {}, intent {})",
                row.sync_status, row.intent
            )));
        }
        let rewrite = |vanished: bool| Action::Rewrite {
            vanished,
            row_event: row.event_id.clone(),
            row_hash: row.content_hash.clone(),
            raw: entry.raw.clone(),
        };
        let Some(hash) = row.content_hash.as_deref() else {
            // Reset by an earlier repair (or a re-upsert after a delete) and not rewritten yet: produce again.
            let (kind, vanished) =
                if row.event_id.is_none() { (DriftKind::Missing, true) } else { (DriftKind::Changed, false) };
            let detail = "mapping row reset, the sink has not rewritten it yet".to_owned();
            return Some(Finding {
                drift: self.drift(kind, key, row.event_id.as_deref(), detail),
                action: rewrite(vanished),
            });
        };
        if hash != entry.item.content_hash {
            return Some(unmapped("the sink has not applied this content yet".to_owned()));
        }
        let event_id = row.event_id.as_deref()?;
        if self.calendar.gone.contains(event_id) {
            let detail = "the event is gone from the calendar".to_owned();
            return Some(Finding {
                drift: self.drift(DriftKind::Missing, key, Some(event_id), detail),
                action: rewrite(true),
            });
        }
        let event = self.calendar.find(event_id)?;
        let diffs = differences(content, event);
        if diffs.is_empty() {
            return None;
        }
        Some(Finding {
            drift: self.drift(DriftKind::Changed, key, Some(event_id), diffs.join("; ")),
            action: rewrite(false),
        })
    }

    fn tagged_event(&self, event: &Observed, by_key: &HashMap<&str, &Row>) -> Option<Finding> {
        let key = event.tagged_key.as_deref()?;
        if self.rows.iter().any(|r| r.claims(&event.id)) || (self.unknown)(key) {
            return None;
        }
        let row = by_key.get(key).copied();
        if row.is_some_and(Row::busy) {
            return None;
        }
        let detail = if self.desired.contains_key(key) {
            // The sink looks an item without a known event up by its tags and adopts this one.
            let mapped = row.and_then(|r| r.event_id.as_deref())?;
            if self.calendar.gone.contains(mapped) || row.is_some_and(|r| r.content_hash.is_none()) {
                return None;
            }
            format!("a second event tagged for the item (the item's event is {mapped})")
        } else {
            "tagged by roomsync for an item that is not desired".to_owned()
        };
        Some(Finding { drift: self.drift(DriftKind::Stale, key, Some(&event.id), detail), action: Action::Delete })
    }
}
