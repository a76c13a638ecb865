//! Joins booking-system reservations and Outlook events into the desired state of each room calendar.
