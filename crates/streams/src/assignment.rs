//! Noticing a consumer-group member that has had no partitions for long.
//!
//! A member without partitions does nothing, and nothing fails: with several instances and fewer partitions
//! that is normal, but with one instance it means the group never completed its rebalance (seen with tansu
//! after a broker crash: the new members' join did not complete until they were restarted). The watch says
//! so, in a log line the stage writes and a gauge, instead of leaving an idle pipeline silent.

use std::time::{Duration, Instant};

/// How long a member may go without partitions before it is reported, and how often the report repeats.
pub const UNASSIGNED_REPORT_AFTER: Duration = Duration::from_secs(120);

/// Tracks how long a member has had no partitions.
#[derive(Debug)]
pub struct AssignmentWatch {
    unassigned_since: Option<Instant>,
    reported_at: Option<Instant>,
    after: Duration,
    rejoin_after: Option<Duration>,
}

impl AssignmentWatch {
    /// A watch for a member that just joined (unassigned from `now`), reporting after `after`.
    pub fn new(now: Instant, after: Duration) -> Self {
        AssignmentWatch { unassigned_since: Some(now), reported_at: None, after, rejoin_after: None }
    }

    /// Notes that the member joined its group anew at `now` (a new consumer): unassigned from then on.
    pub fn joined(&mut self, now: Instant) {
        self.unassigned_since = Some(now);
        self.reported_at = None;
    }

    /// The same watch, also saying when the member should leave and rejoin its group (`None`: never).
    pub fn with_rejoin(mut self, after: Option<Duration>) -> Self {
        self.rejoin_after = after;
        self
    }

    /// How long the member has been without partitions, once that reaches the rejoin delay: it should then drop
    /// its consumer and join again with a new one (see [`KafkaSettings::rejoin_unassigned_after`]).
    ///
    /// [`KafkaSettings::rejoin_unassigned_after`]: crate::KafkaSettings::rejoin_unassigned_after
    pub fn rejoin_due(&self, now: Instant) -> Option<Duration> {
        let idle = now.saturating_duration_since(self.unassigned_since?);
        self.rejoin_after.filter(|after| idle >= *after).map(|_| idle)
    }

    /// Notes the number of partitions assigned at `now`; returns how long the member has been without any
    /// when that is worth reporting (first after `after`, then every `after` again).
    pub fn observe(&mut self, assigned: usize, now: Instant) -> Option<Duration> {
        if assigned > 0 {
            self.unassigned_since = None;
            self.reported_at = None;
            return None;
        }
        let since = *self.unassigned_since.get_or_insert(now);
        let idle = now.saturating_duration_since(since);
        let due = match self.reported_at {
            None => idle >= self.after,
            Some(last) => now.saturating_duration_since(last) >= self.after,
        };
        if due {
            self.reported_at = Some(now);
            Some(idle)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_without_partitions_is_reported_after_the_delay_and_then_periodically() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut watch = AssignmentWatch::new(start, Duration::from_secs(120));
        assert_eq!(watch.observe(0, at(60)), None);
        assert_eq!(watch.observe(0, at(121)), Some(Duration::from_secs(121)));
        assert_eq!(watch.observe(0, at(200)), None, "not again at once");
        assert_eq!(watch.observe(0, at(241)), Some(Duration::from_secs(241)));
        assert_eq!(watch.observe(2, at(250)), None, "assigned");
        assert_eq!(watch.observe(0, at(300)), None, "unassigned again: a new delay");
        assert_eq!(watch.observe(0, at(420)), Some(Duration::from_secs(120)));
        assert_eq!(watch.rejoin_due(at(10_000)), None, "no rejoin unless asked for");
    }

    #[test]
    fn a_rejoin_is_due_after_its_delay_without_partitions_and_never_while_assigned() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut watch =
            AssignmentWatch::new(start, Duration::from_secs(120)).with_rejoin(Some(Duration::from_secs(30)));
        assert_eq!(watch.rejoin_due(at(29)), None);
        assert_eq!(watch.rejoin_due(at(31)), Some(Duration::from_secs(31)));
        watch.observe(1, at(32));
        assert_eq!(watch.rejoin_due(at(100)), None, "assigned");
        watch.observe(0, at(101));
        assert_eq!(watch.rejoin_due(at(120)), None);
        assert_eq!(watch.rejoin_due(at(131)), Some(Duration::from_secs(30)));
        watch.joined(at(131));
        assert_eq!(watch.rejoin_due(at(150)), None, "a new member waits the whole delay again");
        assert_eq!(watch.rejoin_due(at(161)), Some(Duration::from_secs(30)));
    }
}
