//! The three kinds of booking-system reservation and their priority in a room's time slot:
//! Event (1) > Booking (2) > Allocation (3). A lower number wins the slot.

use serde::{Deserialize, Serialize};

/// The kind of a booking-system reservation, which is also its priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReservationKind {
    /// A one-off reservation (`bb_event`): priority 1.
    Event,
    /// A group's use of (part of) an allocation (`bb_booking`): priority 2.
    Booking,
    /// A time slot given to an organization in a season (`bb_allocation`): priority 3.
    Allocation,
}

impl ReservationKind {
    /// All kinds, highest priority first.
    pub const ALL: [ReservationKind; 3] =
        [ReservationKind::Event, ReservationKind::Booking, ReservationKind::Allocation];

    /// The priority level: 1 (highest) to 3, as in the mapping table's `priority_level`.
    pub fn priority(self) -> i16 {
        match self {
            ReservationKind::Event => 1,
            ReservationKind::Booking => 2,
            ReservationKind::Allocation => 3,
        }
    }

    /// Whether `self` takes a time slot from `other`.
    pub fn outranks(self, other: ReservationKind) -> bool {
        self.priority() < other.priority()
    }

    /// The name used in the mapping table and the BookingSystemType property: event, booking, allocation.
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationKind::Event => "event",
            ReservationKind::Booking => "booking",
            ReservationKind::Allocation => "allocation",
        }
    }

    /// The kind named `name` (as written by [`as_str`](Self::as_str)).
    pub fn parse(name: &str) -> Option<Self> {
        ReservationKind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// The booking-system table holding reservations of this kind ([`crate::tables`]).
    pub fn table(self) -> &'static str {
        crate::tables::main_of(self).name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_outranks_booking_outranks_allocation() {
        assert!(ReservationKind::Event.outranks(ReservationKind::Booking));
        assert!(ReservationKind::Booking.outranks(ReservationKind::Allocation));
        assert!(!ReservationKind::Allocation.outranks(ReservationKind::Event));
        assert!(!ReservationKind::Booking.outranks(ReservationKind::Booking));
    }

    #[test]
    fn names_round_trip() {
        for kind in ReservationKind::ALL {
            assert_eq!(ReservationKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ReservationKind::parse("outlook"), None);
    }
}
