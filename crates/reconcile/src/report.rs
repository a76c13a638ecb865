//! What a run found and what it did about it, for the CLI, the admin API and the logs.
//!
//! Invariant: a report names rooms, item keys and event ids and says which fields differ and how the times
//! moved, but never carries subjects or bodies (they may hold personal data).

use std::fmt;

/// The kinds of drift between the desired state and a room calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DriftKind {
    /// A desired item whose mapped event is gone from the calendar (deleted by a person).
    Missing,
    /// A desired item whose event differs in start, end, subject or all-day flag (moved or edited by a person).
    Changed,
    /// A roomsync-tagged event that nothing desires (an extra copy, or left over).
    Stale,
    /// A desired item the sink has not settled yet (no mapping row, a write in progress, older content):
    /// reported, never repaired here.
    Unmapped,
}

impl DriftKind {
    /// Every kind, in report order.
    pub const ALL: [DriftKind; 4] = [DriftKind::Missing, DriftKind::Changed, DriftKind::Stale, DriftKind::Unmapped];

    /// Lowercase name (metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::Missing => "missing",
            DriftKind::Changed => "changed",
            DriftKind::Stale => "stale",
            DriftKind::Unmapped => "unmapped",
        }
    }
}

/// One difference found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// Kind.
    pub kind: DriftKind,
    /// Room mailbox.
    pub mailbox: String,
    /// roomsync's item key (for a stale event: the key its tags name).
    pub item_key: String,
    /// The Graph event concerned, if any.
    pub event_id: Option<String>,
    /// What differs.
    pub detail: String,
}

/// What a repair did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The mapping row was reset and the desired record produced again; the sink rewrites the event.
    Reproduced {
        /// Partition of the new copy.
        partition: i32,
        /// Offset of the new copy.
        offset: i64,
    },
    /// The stale event was deleted.
    Deleted,
    /// The stale event was already gone.
    AlreadyGone,
    /// Not repaired, because the state changed since it was read (the sink got there first); the next run
    /// looks again.
    Skipped(String),
    /// The repair failed; the next run finds the drift again.
    Failed(String),
}

impl Outcome {
    /// Lowercase name (metric label).
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Reproduced { .. } | Outcome::Deleted | Outcome::AlreadyGone => "repaired",
            Outcome::Skipped(_) => "skipped",
            Outcome::Failed(_) => "failed",
        }
    }
}

/// A repair of one drift.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    /// The drift repaired.
    pub drift: Drift,
    /// What was done.
    pub outcome: Outcome,
}

/// The result of one reconciliation run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Whether the run only reported.
    pub dry_run: bool,
    /// Rooms compared.
    pub rooms: Vec<String>,
    /// Rooms that could not be read, with the reason; nothing was concluded about them.
    pub failed_rooms: Vec<(String, String)>,
    /// Desired items seen in the compared rooms.
    pub desired_items: usize,
    /// Events seen in the compared rooms' windows.
    pub events_seen: usize,
    /// Every drift found.
    pub drift: Vec<Drift>,
    /// What was done about it (empty in a dry run).
    pub repairs: Vec<Repair>,
    /// Records the resolver produced during the run that a repair's copy overtook, produced once more so the
    /// newest state stays last.
    pub superseded: usize,
}

impl Report {
    /// Drift of one kind.
    pub fn count(&self, kind: DriftKind) -> usize {
        self.drift.iter().filter(|d| d.kind == kind).count()
    }

    /// Whether no drift at all was found.
    pub fn is_clean(&self) -> bool {
        self.drift.is_empty()
    }

    /// Repairs that did something.
    pub fn repaired(&self) -> usize {
        self.repairs.iter().filter(|r| r.outcome.as_str() == "repaired").count()
    }
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<8} {} {}", self.kind.as_str(), self.mailbox, self.item_key)?;
        if let Some(id) = &self.event_id {
            write!(f, " event {id}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Reproduced { partition, offset } => {
                write!(f, "desired record produced again (partition {partition}, offset {offset})")
            }
            Outcome::Deleted => f.write_str("event deleted"),
            Outcome::AlreadyGone => f.write_str("event was already gone"),
            Outcome::Skipped(why) => write!(f, "skipped: {why}"),
            Outcome::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let counts: Vec<String> = DriftKind::ALL.iter().map(|k| format!("{} {}", self.count(*k), k.as_str())).collect();
        writeln!(
            f,
            "{} rooms, {} desired items, {} events: {}{}",
            self.rooms.len(),
            self.desired_items,
            self.events_seen,
            counts.join(", "),
            if self.dry_run { " (dry run: nothing changed)" } else { "" }
        )?;
        for (room, why) in &self.failed_rooms {
            writeln!(f, "unread   {room}: {why}")?;
        }
        for drift in &self.drift {
            writeln!(f, "{drift}")?;
        }
        for repair in &self.repairs {
            writeln!(f, "repair   {} {}: {}", repair.drift.mailbox, repair.drift.item_key, repair.outcome)?;
        }
        if self.superseded > 0 {
            writeln!(f, "{} newer desired records re-produced after the repairs", self.superseded)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_report_counts_each_kind_and_lists_drift_and_repairs() {
        let drift = Drift {
            kind: DriftKind::Changed,
            mailbox: "room@x".into(),
            item_key: "event:2".into(),
            event_id: Some("e2".into()),
            detail: "start desired 2030-01-06T17:00:00Z, calendar 2030-01-06T19:00:00Z".into(),
        };
        let report = Report {
            rooms: vec!["room@x".into()],
            desired_items: 3,
            events_seen: 4,
            drift: vec![drift.clone()],
            repairs: vec![Repair { drift, outcome: Outcome::Reproduced { partition: 0, offset: 9 } }],
            ..Report::default()
        };
        let text = report.to_string();
        assert!(text.starts_with("1 rooms, 3 desired items, 4 events: 0 missing, 1 changed, 0 stale, 0 unmapped\n"));
        assert!(text.contains("changed  room@x event:2 event e2: start desired"));
        assert!(text.contains("repair   room@x event:2: desired record produced again (partition 0, offset 9)"));
        assert_eq!(report.repaired(), 1);
        assert!(!report.is_clean());
    }
}
