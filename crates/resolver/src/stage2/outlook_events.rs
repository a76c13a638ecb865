//! The Outlook side of the core: what each Outlook room-calendar event means (echo, edit, import, conflict,
//! see [`crate::stage2::outlook`]) and what it makes the resolver emit.
//!
//! Invariants: imports and conflicts are emitted once per change (an import ledger and a set of recorded
//! conflicts per event); an edit is reverted when the event arrives and once when an instance takes a room
//! over (edits made while nobody owned it), never on the periodic re-evaluations, so the sink's own rewrite
//! coming back cannot start a loop.

use std::cell::OnceCell;
use std::collections::HashSet;

use tracing::{debug, info};
use vocabulary::records::{DesiredItem, GraphEvent, GraphEventBody, ImportOp, UpsertOrDelete};
use vocabulary::ReservationKind;

use crate::config::EditPolicy;
use crate::core::{Conflict, Core, Output};
use crate::stage2::desired::items_of;
use crate::stage2::outlook::{classify, matches_desired, MappingRow, Reservations, RoomView, Verdict};
use crate::stage2::timeline::Item;
use crate::stage2::window::Window;

/// Reverted Outlook versions remembered at most (then forgotten at once: the cost is at most one more revert
/// of a version still arriving).
const REVERTED_KEPT: usize = 10_000;

impl Core {
    /// The bb_event ids imported from Outlook bookings in `mailbox`.
    pub(crate) fn imported_events(&self, mailbox: &str) -> HashSet<i32> {
        self.assembler.state.calendar_mapping.imported_events(mailbox)
    }

    /// roomsync's mapping row of an Outlook event, if any.
    fn mapping_row(&self, mailbox: &str, event_id: &str) -> Option<MappingRow> {
        self.assembler.state.calendar_mapping.row(mailbox, event_id).cloned()
    }

    /// Re-classifies the Outlook events of a room (a reservation change can make a booking conflict).
    pub(crate) fn classify_room(
        &mut self,
        mailbox: &str,
        resources: &[i32],
        window: Window,
        output: &mut Output,
        start: bool,
    ) {
        let events: Vec<GraphEvent> = self
            .graph
            .range((mailbox.to_owned(), String::new())..)
            .take_while(|((m, _), _)| m == mailbox)
            .map(|((m, id), body)| GraphEvent {
                op: UpsertOrDelete::Upsert,
                mailbox: m.clone(),
                event_id: id.clone(),
                observed_at: 0,
                event: Some(body.clone()),
            })
            .collect();
        let items = RoomItems::new(mailbox, resources);
        for event in events {
            let verdict = self.verdict(&event, None, resources, window, &items);
            if matches!(verdict, Verdict::Import(_) | Verdict::Conflict(_))
                || (start && matches!(verdict, Verdict::Edited { .. }))
            {
                self.act(&event, resources, window, output, (false, &items, None));
            }
        }
        self.decide_deletions(mailbox, resources, window, output, &items, start);
    }

    /// The room's reservations as timeline items, without the bb_events imported from Outlook.
    fn room_items(&self, mailbox: &str, resources: &[i32]) -> Vec<Item> {
        let imported = self.imported_events(mailbox);
        items_of(
            &self
                .reservations_of(resources)
                .into_iter()
                .filter(|r| !(r.kind == ReservationKind::Event && imported.contains(&r.reservation_id)))
                .collect::<Vec<_>>(),
            &self.policies,
        )
    }

    pub(crate) fn verdict(
        &self,
        event: &GraphEvent,
        previous: Option<&GraphEventBody>,
        resources: &[i32],
        window: Window,
        items: &RoomItems<'_>,
    ) -> Verdict {
        let row = self.mapping_row(&event.mailbox, &event.event_id);
        let row = row.as_ref();
        let lazy = || items.get(self);
        let room =
            RoomView { resource_id: resources.first().copied(), reservations: Reservations::Lazy(&lazy), window };
        let ledger = &self.ledger;
        let mailbox = event.mailbox.clone();
        let verdict =
            classify(event, previous, row, |key| ledger.get(&mailbox, key).and_then(|d| d.content.clone()), room);
        match verdict {
            Verdict::Edited { item_key } if self.is_earlier_write(event, &item_key) => Verdict::Echo,
            Verdict::Edited { item_key } if self.is_former_event(event, &item_key) => Verdict::Echo,
            other => other,
        }
    }

    /// Whether the item's mapping row names another event than this one: the item lives on as that event
    /// (the sink wrote it again after this one was deleted or vanished), so this one's deletion changes nothing.
    fn is_former_event(&self, event: &GraphEvent, item_key: &str) -> bool {
        let mappings = &self.assembler.state.calendar_mapping;
        mappings.event_of_item(&event.mailbox, item_key).flatten().is_some_and(|current| current != event.event_id)
    }

    /// Whether the event is, unmodified, one of roomsync's own earlier writes of the item: its content-hash
    /// tag names a superseded content and its content is that content. The Graph source saw it before the
    /// sink's newer write (or reports the versions late): an echo, not an Outlook edit, and reverting it would
    /// write the item a second time. An edit in Outlook changes the content but not the tag, so it still
    /// differs from the content the tag names.
    fn is_earlier_write(&self, event: &GraphEvent, item_key: &str) -> bool {
        let Some(body) = event.event.as_ref() else { return false };
        let Some(hash) = body.tags.content_hash.as_deref() else { return false };
        self.ledger.earlier(&event.mailbox, item_key, hash).is_some_and(|content| matches_desired(body, content))
    }

    /// Decides about the room's Outlook deletions nothing has decided yet, each with the last body seen:
    /// - with `start` (this instance now evaluates the room from the start), the deletions read without a
    ///   decision (while catching up, or while another instance owned the room): a deleted roomsync event is put
    ///   back (per the edit policy), a deleted imported booking is cancelled; a deletion the previous owner
    ///   already handled finds no mapping row for the event any more and is ignored;
    /// - always, the live imports (not over before the window) whose Outlook event the Graph state no longer
    ///   holds (it forgets events over before the window: their imports keep their state). An import row exists only
    ///   for an event the resolver read, so such an event was deleted; its deletion may have been read when no
    ///   cancel could be decided (the import's row not yet read back after a rebuild, or only the deletion left
    ///   by compaction), and nothing else would look at it again. The cancel is emitted once per instance (the
    ///   import ledger), until the sink marks the row `deleted`.
    fn decide_deletions(
        &mut self,
        mailbox: &str,
        resources: &[i32],
        window: Window,
        output: &mut Output,
        items: &RoomItems<'_>,
        start: bool,
    ) {
        let mut pending: Vec<(String, Option<GraphEventBody>)> = Vec::new();
        if start {
            let keys: Vec<(String, String)> = self
                .unseen_deletes
                .range((mailbox.to_owned(), String::new())..)
                .take_while(|((m, _), _)| m == mailbox)
                .map(|(key, _)| key.clone())
                .collect();
            for key in keys {
                let previous = self.unseen_deletes.remove(&key).flatten();
                pending.push((key.1, previous));
            }
        }
        for event_id in self.assembler.state.calendar_mapping.live_imports(mailbox, window.start) {
            let key = (mailbox.to_owned(), event_id);
            let undecided = self.unseen_deletes.contains_key(&key) || pending.iter().any(|(id, _)| *id == key.1);
            if !self.graph.contains_key(&key) && !undecided {
                pending.push((key.1, None));
            }
        }
        for (event_id, previous) in pending {
            let event = GraphEvent {
                op: UpsertOrDelete::Delete,
                mailbox: mailbox.to_owned(),
                event_id,
                observed_at: 0,
                event: None,
            };
            self.act(&event, resources, window, output, (false, items, previous));
        }
    }

    /// Notes an Outlook event read without a decision: a deletion waits in `unseen_deletes` (with the last
    /// body seen) until the room is evaluated from the start; a newer upsert of the event withdraws it.
    fn note_unseen(&mut self, event: &GraphEvent) {
        let key = (event.mailbox.clone(), event.event_id.clone());
        debug!(mailbox = %event.mailbox, event_id = %event.event_id, op = ?event.op, "outlook event noted without a decision");
        match (&event.op, &event.event) {
            (UpsertOrDelete::Upsert, Some(_)) => {
                self.unseen_deletes.remove(&key);
            }
            _ => {
                let previous = self.graph.get(&key).cloned();
                let slot = self.unseen_deletes.entry(key).or_default();
                if previous.is_some() {
                    *slot = previous;
                }
            }
        }
    }

    /// Decides about one event and records what to emit; `context` is (the event just arrived, the room's
    /// items, the last body seen of a deleted event when the Graph state no longer holds it).
    fn act(
        &mut self,
        event: &GraphEvent,
        resources: &[i32],
        window: Window,
        output: &mut Output,
        context: (bool, &RoomItems<'_>, Option<GraphEventBody>),
    ) {
        let (arrived, items, previous) = context;
        let previous = previous.or_else(|| self.graph.get(&(event.mailbox.clone(), event.event_id.clone())).cloned());
        let verdict = self.verdict(event, previous.as_ref(), resources, window, items);
        let class = match &verdict {
            Verdict::Ignore(_) => "ignored",
            Verdict::Echo => "echo",
            Verdict::Edited { .. } => "edited",
            Verdict::Import(_) => "import",
            Verdict::Conflict(_) => "conflict",
        };
        if arrived {
            ::metrics::counter!(crate::metrics::OUTLOOK_CLASSIFIED, "class" => class).increment(1);
        }
        debug!(mailbox = %event.mailbox, event_id = %event.event_id, class, arrived, "outlook event classified");
        let key = (event.mailbox.clone(), event.event_id.clone());
        match verdict {
            Verdict::Ignore(reason) => debug!(reason, "outlook event ignored"),
            Verdict::Echo => {}
            Verdict::Edited { item_key } => match self.policies.outlook_edit {
                EditPolicy::Revert => {
                    // One revert per version of the edit: duplicate notifications, delta replays and polls of
                    // the same edited version arrive until the sink's rewrite lands.
                    let version = event.event.as_ref().map(|b| b.change_key.clone());
                    if self.reverted.get(&key) == Some(&version) {
                        debug!(item = %item_key, "this outlook version was reverted already");
                    } else if let Some(last) = self.ledger.get(&event.mailbox, &item_key).cloned() {
                        info!(item = %item_key, "roomsync event edited in outlook: reverting to the booking system's state");
                        output.reverts.push((event.mailbox.clone(), item_key.clone()));
                        output.desired.push(DesiredItem { rewrite: true, ..last });
                        if self.reverted.len() >= REVERTED_KEPT {
                            self.reverted.clear();
                        }
                        self.reverted.insert(key.clone(), version);
                    }
                }
                EditPolicy::Record => info!(item = %item_key, "roomsync event edited in outlook: recorded, left as is"),
            },
            Verdict::Import(_) if !self.policies.import_outlook_bookings => {
                debug!("outlook-origin booking not imported (import_outlook_bookings is off)");
            }
            Verdict::Import(record)
                if record.op == ImportOp::Cancel
                    && !self.imports.contains_key(&key)
                    && self.mapping_row(&key.0, &key.1).is_none_or(|m| m.reservation_type != "outlook") =>
            {
                debug!("deleted outlook booking was never imported: nothing to cancel");
            }
            Verdict::Import(record) => {
                if self.imports.get(&key) != Some(&record) {
                    self.imports.insert(key.clone(), record.clone());
                    output.imports.push(record);
                }
            }
            Verdict::Conflict(hits) => {
                let Some(body) = event.event.as_ref() else { return };
                for hit in hits {
                    if self.conflicts.insert((key.0.clone(), key.1.clone(), hit.clone())) {
                        output.conflicts.push(Conflict {
                            mailbox: key.0.clone(),
                            resource_id: resources.first().copied().unwrap_or_default(),
                            event_id: key.1.clone(),
                            change_key: body.change_key.clone(),
                            hit,
                            policy: self.policies.conflict,
                        });
                    }
                }
            }
        }
    }

    /// Remembers an Outlook event while catching up at start (decided by [`Core::full`]).
    pub fn apply_graph_event_quietly(&mut self, event: &GraphEvent) {
        self.note_unseen(event);
        self.remember(event);
    }

    /// Applies one Outlook event as the Graph source saw it; returns what to emit.
    pub fn apply_graph_event(&mut self, event: &GraphEvent, now: i64) -> Output {
        let mut output = Output::default();
        if !self.ownership.owns(&event.mailbox) {
            self.note_unseen(event);
            self.remember(event);
            return output;
        }
        let window = self.window_at(now);
        let resources = self.rooms().get(&event.mailbox).cloned().unwrap_or_default();
        let items = RoomItems::new(&event.mailbox, &resources);
        self.unseen_deletes.remove(&(event.mailbox.clone(), event.event_id.clone()));
        self.act(event, &resources, window, &mut output, (true, &items, None));
        self.remember(event);
        output
    }

    fn remember(&mut self, event: &GraphEvent) {
        let key = (event.mailbox.clone(), event.event_id.clone());
        match (&event.op, &event.event) {
            (UpsertOrDelete::Upsert, Some(body)) => {
                // A newer version (the sink's rewrite, or a new edit already decided above) ends the old one.
                if self.reverted.get(&key).is_some_and(|v| *v != Some(body.change_key.clone())) {
                    self.reverted.remove(&key);
                }
                self.graph.insert(key, body.clone());
            }
            _ => {
                self.graph.remove(&key);
                self.imports.remove(&key);
            }
        }
    }
}

/// A room's reservations as timeline items, worked out once and only if a classification needs them: building
/// them for every Outlook event, echoes of roomsync's own writes included, made a burst of echoes (a poll round
/// over hundreds of busy calendars) hold the resolver for seconds on a large municipality (benches/README.md).
pub(crate) struct RoomItems<'r> {
    mailbox: &'r str,
    resources: &'r [i32],
    items: OnceCell<Vec<Item>>,
}

impl<'r> RoomItems<'r> {
    pub(crate) fn new(mailbox: &'r str, resources: &'r [i32]) -> Self {
        RoomItems { mailbox, resources, items: OnceCell::new() }
    }

    fn get(&self, core: &Core) -> &[Item] {
        self.items.get_or_init(|| core.room_items(self.mailbox, self.resources))
    }

    /// Whether they were worked out (tests).
    #[cfg(test)]
    pub(crate) fn worked_out(&self) -> bool {
        self.items.get().is_some()
    }
}
