//! Conflicts of Outlook-origin bookings with the booking system, found at import time.
//!
//! The resolver sends only bookings it found free of conflicts, but it decides on a view that may be a moment
//! old; the import commits against the booking database itself, in the unit's transaction, so this check sees
//! exactly what the booking system shows. The booking system is the authority: an import that overlaps an
//! active reservation of the same resource (events with `active = 1`; bookings and allocations with
//! `active = 1` in an active, PUBLISHED season, the rule the public calendar uses) is not imported; each
//! overlap is recorded in `roomsync_conflicts` (status `open`, once per pair) for review.

use chrono::{DateTime, NaiveDateTime, Utc};
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

/// Records each overlap as an open conflict (an existing record of the same pair is kept as it is).
pub async fn record(db: &impl GenericClient, import: &Import, overlaps: &[Overlap]) -> Result<(), SinkError> {
    let instant = |micros: i64| DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_default();
    for overlap in overlaps {
        db.execute(
            "insert into roomsync_conflicts (outlook_item_id, resource_id, outlook_event_id, outlook_change_key,
                                             reservation_type, reservation_id, starts_at, ends_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8)
             on conflict (outlook_item_id, outlook_event_id, reservation_type, reservation_id) do update set
                 outlook_change_key = excluded.outlook_change_key,
                 starts_at = excluded.starts_at,
                 ends_at = excluded.ends_at",
            &[
                &import.mailbox,
                &import.resource_id,
                &import.event_id,
                &import.change_key,
                &overlap.kind,
                &overlap.id,
                &instant(import.start),
                &instant(import.end),
            ],
        )
        .await
        .map_err(SinkError::pg("recording a conflict"))?;
    }
    Ok(())
}
