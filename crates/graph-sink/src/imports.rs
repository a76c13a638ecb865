//! Outlook-origin bookings from `<prefix>.sync.imports`, written into PostgreSQL in the unit's result
//! transaction (together with the offsets), so each import is applied exactly once.
//!
//! Every import gets a mapping row (`reservation_type 'outlook'`, `sync_direction 'from_outlook'`, item key
//! `outlook:<event id>`). With `import_bb_events`, it also gets a `bb_event` shaped as the booking system writes
//! one (INSERT, then `id_string = id`; one `bb_event_resource` link; one `bb_event_date` row mirroring
//! `from_`/`to_`, in Europe/Oslo wall clock); the row's `reservation_id` is that event's id, which is how the
//! CDC side recognises the event as roomsync's own. A cancel sets the imported `bb_event` to `active = 0`.
//! The row keeps the booking's `starts_at`/`ends_at`: the resolver never cancels an import whose booking is
//! over before the sync window (migration 0009).

use chrono::{DateTime, NaiveDateTime, Utc};
use migrations::conflicts::ConflictPolicy;
use schema_registry::AvroCodec;
use tokio_postgres::GenericClient;
use vocabulary::records::{ImportOp, ImportRecord};

use crate::error::SinkError;
use crate::identity::first_transaction_id;
use crate::work::Source;

/// An import record.
pub type Import = ImportRecord;

/// Decodes an import record (`None` for a tombstone).
pub async fn decode(codec: &AvroCodec, record: &Source) -> Result<Option<Import>, streams::StreamError> {
    record.decode::<ImportRecord>(codec).await
}

/// The mapping item key of an Outlook-origin event.
pub fn item_key(event_id: &str) -> String {
    format!("outlook:{event_id}")
}

fn oslo_wall_clock(instant: DateTime<Utc>) -> NaiveDateTime {
    instant.with_timezone(&chrono_tz::Europe::Oslo).naive_local()
}

/// Applies one import inside the caller's transaction. With `conflicts`, an import that overlaps an active
/// reservation is recorded as a conflict under that policy instead of imported.
pub async fn apply(
    db: &impl GenericClient,
    import: &Import,
    bb_events: bool,
    conflicts: Option<ConflictPolicy>,
) -> Result<(), SinkError> {
    let key = item_key(&import.event_id);
    let existing = db
        .query_opt(
            "select reservation_id from outlook_calendar_mapping where outlook_item_id = $1 and item_key = $2",
            &[&import.mailbox, &key],
        )
        .await
        .map_err(SinkError::pg("loading an import's mapping row"))?
        .map(|row| row.get::<_, i32>(0));
    let (Some(starts), Some(ends)) =
        (DateTime::<Utc>::from_timestamp_micros(import.start), DateTime::<Utc>::from_timestamp_micros(import.end))
    else {
        tracing::warn!(mailbox = %import.mailbox, event_id = %import.event_id, start = import.start, end = import.end,
            "import with times out of range: skipped");
        metrics::counter!(crate::metrics::IMPORTS_APPLIED, "op" => "skipped").increment(1);
        return Ok(());
    };
    let (from, to) = (oslo_wall_clock(starts), oslo_wall_clock(ends));
    let op = match import.op {
        ImportOp::Upsert => "upsert",
        ImportOp::Cancel => "cancel",
    };
    metrics::counter!(crate::metrics::IMPORTS_APPLIED, "op" => op).increment(1);
    tracing::debug!(mailbox = %import.mailbox, event_id = %import.event_id, op, known = existing.is_some(), "applying an import");
    match import.op {
        ImportOp::Cancel => {
            if let (true, Some(event)) = (bb_events, existing.filter(|id| *id > 0)) {
                db.execute("update bb_event set active = 0 where id = $1", &[&event])
                    .await
                    .map_err(SinkError::pg("cancelling an imported bb_event"))?;
            }
            if existing.is_some() {
                crate::mapping::cancel_import(db, &import.mailbox, &key, import.change_key.as_deref()).await?;
            }
            Ok(())
        }
        ImportOp::Upsert => {
            if let Some(policy) = conflicts {
                let overlaps = crate::conflicts::overlapping(db, import.resource_id, from, to).await?;
                if !overlaps.is_empty() {
                    crate::conflicts::record(db, import, &overlaps, policy).await?;
                    // The booking system owns the room: an earlier import of this booking steps aside.
                    if let (true, Some(event)) = (bb_events, existing.filter(|id| *id > 0)) {
                        db.execute("update bb_event set active = 0 where id = $1", &[&event])
                            .await
                            .map_err(SinkError::pg("deactivating a conflicting import"))?;
                    }
                    return upsert_row(db, import, existing.unwrap_or(0), "conflict", (starts, ends)).await;
                }
            }
            let reservation_id = match (bb_events, existing.filter(|id| *id > 0)) {
                (true, Some(event)) => {
                    update_bb_event(db, event, import, from, to).await?;
                    event
                }
                (true, None) => insert_bb_event(db, import, from, to).await?,
                (false, id) => id.unwrap_or(0),
            };
            upsert_row(db, import, reservation_id, "synced", (starts, ends)).await
        }
    }
}

async fn upsert_row(
    db: &impl GenericClient,
    import: &Import,
    reservation_id: i32,
    status: &str,
    span: (DateTime<Utc>, DateTime<Utc>),
) -> Result<(), SinkError> {
    let key = item_key(&import.event_id);
    let transaction_id = first_transaction_id(&import.mailbox, &key);
    crate::mapping::upsert_import(db, import, &key, transaction_id, reservation_id, status, span).await
}

fn title(import: &Import) -> String {
    import.subject.clone().filter(|s| !s.trim().is_empty()).unwrap_or_else(|| "Outlook".to_owned())
}

async fn insert_bb_event(
    db: &impl GenericClient,
    import: &Import,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Result<i32, SinkError> {
    let err = SinkError::pg("inserting an imported bb_event");
    let contact_name = import.organizer_name.clone().unwrap_or_default();
    let contact_email = import.organizer_address.clone().unwrap_or_default();
    // The activity and building come from the resource, as the booking system fills them from the form.
    let row = db
        .query_one(
            "insert into bb_event (active, activity_id, name, organizer, description, from_, to_, building_id,
                                   building_name, contact_name, contact_email, contact_phone, secret, is_public,
                                   include_in_list, customer_internal)
             select 1, r.activity_id, $2, $3, 'Booked in Outlook', $4, $5, b.id, coalesce(b.name, ''), $3, $6, '',
                    md5(random()::text || clock_timestamp()::text), 0, 0, 1
             from bb_resource r
             left join bb_building_resource br on br.resource_id = r.id
             left join bb_building b on b.id = br.building_id
             where r.id = $1
             order by b.id nulls last
             limit 1
             returning id",
            &[&import.resource_id, &title(import), &contact_name, &from, &to, &contact_email],
        )
        .await
        .map_err(&err)?;
    let id: i32 = row.get(0);
    db.execute("update bb_event set id_string = id::varchar where id = $1", &[&id]).await.map_err(&err)?;
    db.execute("insert into bb_event_resource (event_id, resource_id) values ($1, $2)", &[&id, &import.resource_id])
        .await
        .map_err(&err)?;
    db.execute("insert into bb_event_date (event_id, from_, to_) values ($1, $2, $3)", &[&id, &from, &to])
        .await
        .map_err(&err)?;
    Ok(id)
}

async fn update_bb_event(
    db: &impl GenericClient,
    id: i32,
    import: &Import,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Result<(), SinkError> {
    let err = SinkError::pg("updating an imported bb_event");
    db.execute(
        "update bb_event set name = $2, from_ = $3, to_ = $4, active = 1 where id = $1",
        &[&id, &title(import), &from, &to],
    )
    .await
    .map_err(&err)?;
    // As the booking system saves: the dates are deleted and inserted again.
    db.execute("delete from bb_event_date where event_id = $1", &[&id]).await.map_err(&err)?;
    db.execute("insert into bb_event_date (event_id, from_, to_) values ($1, $2, $3)", &[&id, &from, &to])
        .await
        .map_err(&err)?;
    Ok(())
}
