//! Conflicts of Outlook-origin bookings with the booking system, found at import time.
//!
//! The resolver sends only bookings it found free of conflicts, but it decides on a view that may be a moment
//! old; the import commits against the booking database itself, in the unit's transaction, so this check sees
//! exactly what the booking system shows. The booking system is the authority: an import that overlaps an
//! active reservation of the same resource (events with `active = 1`; bookings and allocations with
//! `active = 1` in an active, PUBLISHED season, the rule the public calendar uses) is not imported; each
//! overlap is recorded in `roomsync_conflicts` (once per pair, with the status the conflict policy gives it, as
//! the resolver records the conflicts it finds; [`migrations::conflicts`] is the table's one writer).

use chrono::{DateTime, NaiveDateTime, Utc};
use migrations::conflicts::{self, ConflictPolicy};
use tokio_postgres::GenericClient;

use crate::error::SinkError;
use crate::imports::Import;

/// A booking-system reservation an import overlaps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    /// event, booking, allocation.
    pub kind: String,
    /// Its id.
    pub id: i32,
}

/// Active reservations of `resource` overlapping `[from, to)` (Oslo wall clock), other than imports.
pub async fn overlapping(
    db: &impl GenericClient,
    resource: i32,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Result<Vec<Overlap>, SinkError> {
    let rows = db
        .query(
            "select 'event'::text, e.id from bb_event e join bb_event_resource r on r.event_id = e.id
              where r.resource_id = $1 and e.active = 1 and e.from_ < $3 and e.to_ > $2
                and not exists (select 1 from outlook_calendar_mapping m
                                where m.reservation_type = 'outlook' and m.reservation_id = e.id)
             union all
             select 'booking', b.id from bb_booking b join bb_booking_resource r on r.booking_id = b.id
                    join bb_season s on s.id = b.season_id
              where r.resource_id = $1 and b.active = 1 and s.active = 1 and s.status = 'PUBLISHED'
                and b.from_ < $3 and b.to_ > $2
             union all
             select 'allocation', a.id from bb_allocation a join bb_allocation_resource r on r.allocation_id = a.id
                    join bb_season s on s.id = a.season_id
              where r.resource_id = $1 and a.active = 1 and s.active = 1 and s.status = 'PUBLISHED'
                and a.from_ < $3 and a.to_ > $2
             order by 1, 2",
            &[&resource, &from, &to],
        )
        .await
        .map_err(SinkError::pg("looking for conflicting reservations"))?;
    Ok(rows.iter().map(|row| Overlap { kind: row.get(0), id: row.get(1) }).collect())
}

/// Records each overlap as a conflict under `policy` ([`migrations::conflicts::record`]: an existing record of
/// the same pair follows the import only while it is open).
pub async fn record(
    db: &impl GenericClient,
    import: &Import,
    overlaps: &[Overlap],
    policy: ConflictPolicy,
) -> Result<(), SinkError> {
    let instant = |micros: i64| DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_default();
    for overlap in overlaps {
        let conflict = conflicts::Overlap {
            mailbox: &import.mailbox,
            resource_id: import.resource_id,
            event_id: &import.event_id,
            change_key: import.change_key.as_deref(),
            reservation_type: &overlap.kind,
            reservation_id: overlap.id,
            starts_at: instant(import.start),
            ends_at: instant(import.end),
        };
        conflicts::record(db, &conflict, policy).await.map_err(SinkError::pg("recording a conflict"))?;
    }
    Ok(())
}
