//! Imports of Outlook-origin bookings (filled in below).
