//! Whether the resolver turns the input it has taken in into output, said loudly when it does not (issue #18:
//! a resolver that owned no room emitted nothing for ever while health stayed ready and the logs stayed quiet).
//!
//! ```text
//!  driver, every poll tick --Facts--> Liveness::observe --state change--> warn! + roomsync_stage_health row
//!                                          |                              (roomsync status, /health/ready)
//!                                          +--> gauge roomsync_resolver_stalled_seconds
//! ```
//! States: `catching_up` (rebuilding from the topics, nothing emitted yet), `ok`, `degraded` (a transaction was
//! applied before all its records arrived, or records arrived after it: for `bound` after the last one) and
//! `stalled`, when for longer than `bound`:
//! - the oldest buffered transaction stays incomplete (its END or records never come; every later transaction
//!   waits behind it),
//! - partitions of the group are assigned but not loaded (the instance owns no room there and emits nothing),
//! - the catch-up reads nothing while partitions are still below their start watermark.
//!
//! Invariant: the decision is a pure function of the facts and the clock ([`Liveness::observe`], here), so it is
//! unit tested without Kafka; the driver ([`crate::kafka::consume`]) only gathers the facts, and [`health`]
//! reports what changed (log line, gauge, the row written through [`crate::postgres::conflicts`]).

pub mod health;

use std::time::{Duration, Instant};

/// What the driver knows at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// Every input partition was read up to its start watermark and nothing is buffered.
    pub caught_up: bool,
    /// Commit LSN of the oldest transaction waiting in the assembler.
    pub oldest_buffered: Option<i64>,
    /// Partitions of the group assigned to this instance.
    pub assigned: usize,
    /// Of those, loaded (the instance emits for their rooms).
    pub owned: usize,
    /// An input record was read at this tick.
    pub input_read: bool,
    /// Commit LSN of a transaction applied incomplete, or of one whose late records arrived, at this tick.
    pub incomplete: Option<i64>,
}

/// The resolver's state as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Rebuilding from the topics.
    CatchingUp,
    /// Turning input into output.
    Ok,
    /// Working, but a transaction was applied without all its records (detail: which).
    Degraded(String),
    /// Input taken in and not turned into output for longer than the bound (detail: why).
    Stalled(String),
}

impl State {
    /// The name stored in `roomsync_stage_health.state`.
    pub fn name(&self) -> &'static str {
        match self {
            State::CatchingUp => "catching_up",
            State::Ok => "ok",
            State::Degraded(_) => "degraded",
            State::Stalled(_) => "stalled",
        }
    }

    /// What is wrong, if anything.
    pub fn detail(&self) -> Option<&str> {
        match self {
            State::Degraded(detail) | State::Stalled(detail) => Some(detail),
            State::CatchingUp | State::Ok => None,
        }
    }
}

/// The liveness tracker of one resolver run.
#[derive(Debug)]
pub struct Liveness {
    bound: Duration,
    state: State,
    /// The oldest buffered transaction and since when it is the oldest.
    head: Option<(i64, Instant)>,
    /// Since when some assigned partition is not loaded.
    unloaded_since: Option<Instant>,
    /// When the catch-up last read something.
    last_input: Instant,
    /// The last transaction applied incomplete, and when.
    incomplete: Option<(i64, Instant)>,
}

impl Liveness {
    /// A tracker that reports a stall after `bound`, starting to catch up at `now`.
    pub fn new(bound: Duration, now: Instant) -> Self {
        Liveness {
            bound,
            state: State::CatchingUp,
            head: None,
            unloaded_since: None,
            last_input: now,
            incomplete: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// How long the resolver has been stalled (zero when it is not).
    pub fn stalled_for(&self, now: Instant) -> Duration {
        let since = [self.head.map(|(_, at)| at), self.unloaded_since].into_iter().flatten().min();
        match (&self.state, since) {
            (State::Stalled(_), Some(since)) => now.saturating_duration_since(since),
            (State::Stalled(_), None) => now.saturating_duration_since(self.last_input),
            _ => Duration::ZERO,
        }
    }

    /// Takes in the facts of this tick; returns the new state when it changed.
    pub fn observe(&mut self, facts: &Facts, now: Instant) -> Option<State> {
        match (facts.oldest_buffered, self.head) {
            (Some(lsn), Some((head, _))) if lsn == head => {}
            (Some(lsn), _) => self.head = Some((lsn, now)),
            (None, _) => self.head = None,
        }
        if facts.assigned > facts.owned {
            self.unloaded_since.get_or_insert(now);
        } else {
            self.unloaded_since = None;
        }
        if facts.input_read {
            self.last_input = now;
        }
        if let Some(lsn) = facts.incomplete {
            self.incomplete = Some((lsn, now));
        }
        let next = self.decide(facts, now);
        (next != self.state).then(|| {
            self.state = next.clone();
            next
        })
    }

    fn decide(&self, facts: &Facts, now: Instant) -> State {
        let overdue = |since: Instant| now.saturating_duration_since(since) >= self.bound;
        // Details name what is wrong but no durations, so a lasting state is one state (one log line, one
        // row update); how long it lasts is in `since` and the gauge.
        if let Some((lsn, _)) = self.head.filter(|(_, since)| overdue(*since)) {
            return State::Stalled(format!(
                "transaction at commit LSN {lsn} incomplete: its END or some of its records have not arrived, and \
                 every later transaction waits behind it"
            ));
        }
        if self.unloaded_since.is_some_and(overdue) {
            let unloaded = facts.assigned.saturating_sub(facts.owned);
            return State::Stalled(format!(
                "{unloaded} of {} assigned partitions not loaded: no room there is emitted for",
                facts.assigned
            ));
        }
        if !facts.caught_up {
            if facts.oldest_buffered.is_none() && overdue(self.last_input) {
                return State::Stalled(
                    "catching up, but no input read while partitions are below their start watermark".to_owned(),
                );
            }
            return State::CatchingUp;
        }
        if let Some((lsn, _)) = self.incomplete.filter(|(_, since)| !overdue(*since)) {
            return State::Degraded(format!(
                "transaction at commit LSN {lsn} was applied before all its records arrived; records arriving \
                 later are applied late (roomsync_resolver_late_records_total)"
            ));
        }
        State::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUND: Duration = Duration::from_secs(120);

    fn after(start: Instant, seconds: u64) -> Instant {
        start + Duration::from_secs(seconds)
    }

    fn working() -> Facts {
        Facts { caught_up: true, assigned: 1, owned: 1, ..Facts::default() }
    }

    #[test]
    fn assigned_partitions_that_never_load_are_a_stall_after_the_bound() {
        let start = Instant::now();
        let mut liveness = Liveness::new(BOUND, start);
        let unloaded = Facts { owned: 0, ..working() };
        assert_eq!(liveness.observe(&unloaded, after(start, 1)), Some(State::Ok), "loading takes a moment");
        assert_eq!(liveness.observe(&unloaded, after(start, 100)), None);
        let stalled = liveness.observe(&unloaded, after(start, 122));
        assert!(matches!(&stalled, Some(State::Stalled(d)) if d.contains("1 of 1 assigned partitions")), "{stalled:?}");
        assert_eq!(liveness.observe(&unloaded, after(start, 130)), None, "a lasting stall is one change");
        assert_eq!(liveness.stalled_for(after(start, 131)), Duration::from_secs(130));
        assert_eq!(liveness.observe(&working(), after(start, 132)), Some(State::Ok), "loaded at last");
        assert_eq!(liveness.stalled_for(after(start, 133)), Duration::ZERO);
    }

    #[test]
    fn a_transaction_that_never_completes_is_a_stall_naming_its_lsn() {
        let start = Instant::now();
        let mut liveness = Liveness::new(BOUND, start);
        liveness.observe(&working(), start);
        let waiting = Facts { oldest_buffered: Some(4242), ..working() };
        assert_eq!(liveness.observe(&waiting, after(start, 60)), None);
        let moved_on = Facts { oldest_buffered: Some(4343), ..working() };
        assert_eq!(liveness.observe(&moved_on, after(start, 150)), None, "a new head starts its own clock");
        let stalled = liveness.observe(&moved_on, after(start, 271));
        assert!(matches!(&stalled, Some(State::Stalled(d)) if d.contains("4343")), "{stalled:?}");
    }

    #[test]
    fn a_catch_up_that_reads_nothing_is_a_stall_but_a_slow_one_is_not() {
        let start = Instant::now();
        let mut liveness = Liveness::new(BOUND, start);
        let reading = Facts { caught_up: false, input_read: true, ..Facts::default() };
        assert_eq!(liveness.observe(&reading, after(start, 200)), None, "still catching up");
        let silent = Facts { caught_up: false, ..Facts::default() };
        assert_eq!(liveness.observe(&silent, after(start, 300)), None);
        assert!(matches!(liveness.observe(&silent, after(start, 321)), Some(State::Stalled(_))));
    }

    #[test]
    fn a_transaction_applied_incomplete_degrades_for_the_bound() {
        let start = Instant::now();
        let mut liveness = Liveness::new(BOUND, start);
        liveness.observe(&working(), start);
        let incomplete = Facts { incomplete: Some(77), ..working() };
        let degraded = liveness.observe(&incomplete, after(start, 1));
        assert!(matches!(&degraded, Some(State::Degraded(d)) if d.contains("77")), "{degraded:?}");
        assert_eq!(liveness.observe(&working(), after(start, 100)), None);
        assert_eq!(liveness.observe(&working(), after(start, 122)), Some(State::Ok));
    }
}
