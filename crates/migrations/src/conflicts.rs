//! The one writer of `roomsync_conflicts` (migrations 0004 and 0006): Outlook-origin bookings that overlap a
//! booking-system reservation, recorded for review.
//!
//! Three parties write the table, all through this module: the resolver, when it finds an overlap in its view;
//! the graph sink, when an import overlaps what the booking database holds at commit time; and the operator
//! (`roomsync conflicts resolve`, the admin API), who closes one. The decline worker records what it did.
//!
//! Invariants:
//! - recording is idempotent: one row per (mailbox, Outlook event, reservation), so a replay after a restart
//!   adds nothing;
//! - only an `open` conflict follows the overlap (its span and changeKey are brought up to date); a conflict a
//!   person resolved, or one declined in the room calendar, stays exactly as it was left;
//! - a new conflict takes its status from the [`ConflictPolicy`], whoever finds it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_postgres::GenericClient;

/// What to do with an Outlook-origin booking that overlaps a booking-system reservation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictPolicy {
    /// Record it in `roomsync_conflicts` with status `open` for review.
    #[default]
    Record,
    /// Record it with status `declined`: the graph sink's decline worker declines it in the room calendar.
    Decline,
}

impl ConflictPolicy {
    /// The status a newly found conflict is recorded with.
    pub fn status(self) -> &'static str {
        match self {
            ConflictPolicy::Record => "open",
            ConflictPolicy::Decline => "declined",
        }
    }
}

/// One overlap of an Outlook-origin booking with a booking-system reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap<'a> {
    /// The room mailbox.
    pub mailbox: &'a str,
    /// The room's resource.
    pub resource_id: i32,
    /// The Outlook event.
    pub event_id: &'a str,
    /// Its changeKey.
    pub change_key: Option<&'a str>,
    /// The reservation it overlaps: `event`, `booking` or `allocation`.
    pub reservation_type: &'a str,
    /// Its id.
    pub reservation_id: i32,
    /// Start of the span recorded.
    pub starts_at: DateTime<Utc>,
    /// End of the span recorded.
    pub ends_at: DateTime<Utc>,
}

/// Records `overlap` as a conflict under `policy`; an existing record of the same pair is brought up to date
/// only while it is open.
pub async fn record(
    db: &impl GenericClient,
    overlap: &Overlap<'_>,
    policy: ConflictPolicy,
) -> Result<(), tokio_postgres::Error> {
    db.execute(
        "insert into roomsync_conflicts (outlook_item_id, resource_id, outlook_event_id, outlook_change_key, \
             reservation_type, reservation_id, starts_at, ends_at, status) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         on conflict (outlook_item_id, outlook_event_id, reservation_type, reservation_id) do update \
         set starts_at = excluded.starts_at, ends_at = excluded.ends_at, \
             outlook_change_key = excluded.outlook_change_key \
         where roomsync_conflicts.status = 'open'",
        &[
            &overlap.mailbox,
            &overlap.resource_id,
            &overlap.event_id,
            &overlap.change_key,
            &overlap.reservation_type,
            &overlap.reservation_id,
            &overlap.starts_at,
            &overlap.ends_at,
            &policy.status(),
        ],
    )
    .await?;
    Ok(())
}

/// Marks conflict `id` resolved with the reviewer's `note`; false when there is no unresolved conflict `id`.
pub async fn resolve(db: &impl GenericClient, id: i64, note: &str) -> Result<bool, tokio_postgres::Error> {
    let updated = db
        .execute(
            "update roomsync_conflicts set status = 'resolved', resolution = $2, resolved_at = now() \
             where id = $1 and status <> 'resolved'",
            &[&id, &note],
        )
        .await?;
    Ok(updated == 1)
}

/// Records that the Outlook event of conflict rows `ids` was declined (or was already gone).
pub async fn declined(db: &impl GenericClient, ids: &[i64]) -> Result<(), tokio_postgres::Error> {
    db.execute("update roomsync_conflicts set declined_at = now() where id = any($1) and declined_at is null", &[&ids])
        .await?;
    Ok(())
}

/// Records why Graph refused to decline the Outlook event of conflict rows `ids` (an operator clears
/// `decline_error` to have it tried again).
pub async fn decline_refused(db: &impl GenericClient, ids: &[i64], reason: &str) -> Result<(), tokio_postgres::Error> {
    db.execute(
        "update roomsync_conflicts set decline_error = $2 where id = any($1) and declined_at is null",
        &[&ids, &reason],
    )
    .await?;
    Ok(())
}
