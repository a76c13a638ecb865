//! Imports of Outlook-origin bookings: a mapping row and, when enabled, a bb_event shaped as the booking
//! system writes one, in the same transaction as the offsets; a cancel deactivates the bb_event.

use std::time::Duration;

use anyhow::Result;
use chrono::NaiveDateTime;
use testkit::wait_until;
use vocabulary::records::{ImportOp, ImportRecord};

use crate::harness::{micros, Harness, ROOM_A};

fn import(op: ImportOp, subject: &str) -> ImportRecord {
    ImportRecord {
        op,
        mailbox: ROOM_A.into(),
        resource_id: 4,
        event_id: "AAMkOutlook1".into(),
        change_key: Some(format!("ck-{subject}")),
        ical_uid: Some("uid-1".into()),
        subject: Some(subject.into()),
        // 2030-06-01 10:00Z is 12:00 in Oslo (summer time).
        start: micros("2030-06-01T10:00:00Z"),
        end: micros("2030-06-01T11:00:00Z"),
        is_all_day: false,
        organizer_name: Some("Kari".into()),
        organizer_address: Some("kari@example.org".into()),
    }
}

async fn send(h: &Harness, record: &ImportRecord) -> Result<i64> {
    let key = format!("{}/{}", record.mailbox, record.event_id);
    let (_, offset) = h.producer.send(&h.topics.imports(), &key, Some(0), Some(record)).await?;
    Ok(offset)
}

async fn wait_imported(h: &Harness, offset: i64) -> Result<()> {
    let topic = h.topics.imports();
    wait_until("the import to be applied", Duration::from_secs(60), || {
        let topic = topic.clone();
        async move {
            let row =
                h.pg.query_opt(
                    "select next_offset from roomsync_consumer_offsets where consumer_group = $1 and topic = $2",
                    &[&h.group, &topic],
                )
                .await?;
            Ok(row.map(|r| r.get::<_, i64>(0)).filter(|n| *n > offset))
        }
    })
    .await?;
    Ok(())
}

fn at(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").expect("time")
}

#[tokio::test]
async fn an_outlook_booking_is_imported_as_a_mapping_row_and_a_bb_event_and_a_cancel_deactivates_it() -> Result<()> {
    let h = Harness::start().await?;
    let mut config = h.config();
    config.imports_enabled = true;
    config.import_bb_events = true;
    let sink = h.spawn(config);
    let offset = send(&h, &import(ImportOp::Upsert, "Styremøte")).await?;
    wait_imported(&h, offset).await?;

    let row =
        h.pg.query_one(
            "select reservation_type, reservation_id, sync_direction, sync_status, outlook_event_id, change_key,
                    priority_level, starts_at, ends_at
             from outlook_calendar_mapping where outlook_item_id = $1 and item_key = 'outlook:AAMkOutlook1'",
            &[&ROOM_A],
        )
        .await?;
    assert_eq!(row.get::<_, String>(0), "outlook");
    let event_id: i32 = row.get(1);
    assert_eq!(row.get::<_, String>(2), "from_outlook");
    assert_eq!(row.get::<_, String>(3), "synced");
    assert_eq!(row.get::<_, Option<String>>(4).as_deref(), Some("AAMkOutlook1"));
    assert_eq!(row.get::<_, Option<String>>(5).as_deref(), Some("ck-Styremøte"));
    assert_eq!(row.get::<_, i16>(6), 0);
    // The booking's own times stay on the row: the resolver keeps an import that is over (never cancels it).
    let instant = |text: &str| chrono::DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&chrono::Utc));
    assert_eq!(row.get::<_, Option<chrono::DateTime<chrono::Utc>>>(7), Some(instant("2030-06-01T10:00:00Z")?));
    assert_eq!(row.get::<_, Option<chrono::DateTime<chrono::Utc>>>(8), Some(instant("2030-06-01T11:00:00Z")?));

    let event =
        h.pg.query_one(
            "select name, from_, to_, active, id_string, building_name, contact_email from bb_event where id = $1",
            &[&event_id],
        )
        .await?;
    assert_eq!(event.get::<_, Option<String>>(0).as_deref(), Some("Styremøte"));
    assert_eq!(event.get::<_, NaiveDateTime>(1), at("2030-06-01 12:00:00"), "Oslo wall clock");
    assert_eq!(event.get::<_, NaiveDateTime>(2), at("2030-06-01 13:00:00"));
    assert_eq!(event.get::<_, i32>(3), 1);
    assert_eq!(event.get::<_, String>(4), event_id.to_string());
    assert!(!event.get::<_, String>(5).is_empty(), "building name copied from the resource's building");
    assert_eq!(event.get::<_, String>(6), "kari@example.org");
    let links: i64 =
        h.pg.query_one("select count(*) from bb_event_resource where event_id = $1 and resource_id = 4", &[&event_id])
            .await?
            .get(0);
    assert_eq!(links, 1);
    let dates: i64 =
        h.pg.query_one("select count(*) from bb_event_date where event_id = $1", &[&event_id]).await?.get(0);
    assert_eq!(dates, 1);

    // Replaying the same import (e.g. after a crash before the Kafka commit) changes nothing.
    let offset = send(&h, &import(ImportOp::Upsert, "Styremøte")).await?;
    wait_imported(&h, offset).await?;
    let count: i64 = h.pg.query_one("select count(*) from bb_event where name = 'Styremøte'", &[]).await?.get(0);
    assert_eq!(count, 1);

    let offset = send(&h, &import(ImportOp::Cancel, "Styremøte")).await?;
    wait_imported(&h, offset).await?;
    sink.stop().await?;
    let active: i32 = h.pg.query_one("select active from bb_event where id = $1", &[&event_id]).await?.get(0);
    assert_eq!(active, 0);
    let status: String =
        h.pg.query_one("select sync_status from outlook_calendar_mapping where item_key = 'outlook:AAMkOutlook1'", &[])
            .await?
            .get(0);
    assert_eq!(status, "deleted");
    assert!(h.emu.requests().is_empty(), "imports never write to Graph");
    Ok(())
}

#[tokio::test]
async fn an_outlook_booking_over_an_active_reservation_is_recorded_as_a_conflict_not_imported() -> Result<()> {
    let h = Harness::start().await?;
    let taken = take_resource_4(&h).await?;
    let before: i64 = h.pg.query_one("select count(*) from bb_event", &[]).await?.get(0);

    let mut config = h.config();
    config.imports_enabled = true;
    config.import_bb_events = true;
    let sink = h.spawn(config);
    let offset = send(&h, &import(ImportOp::Upsert, "Overlapping")).await?;
    wait_imported(&h, offset).await?;
    sink.stop().await?;

    let after: i64 = h.pg.query_one("select count(*) from bb_event", &[]).await?.get(0);
    assert_eq!(after, before, "nothing was imported into the booking system");
    let status: String =
        h.pg.query_one("select sync_status from outlook_calendar_mapping where item_key = 'outlook:AAMkOutlook1'", &[])
            .await?
            .get(0);
    assert_eq!(status, "conflict");
    let conflict =
        h.pg.query_one(
            "select reservation_type, reservation_id, status, outlook_event_id, resource_id from roomsync_conflicts",
            &[],
        )
        .await?;
    assert_eq!(conflict.get::<_, String>(0), "event");
    assert_eq!(conflict.get::<_, i32>(1), taken);
    assert_eq!(conflict.get::<_, String>(2), "open");
    assert_eq!(conflict.get::<_, String>(3), "AAMkOutlook1");
    assert_eq!(conflict.get::<_, Option<i32>>(4), Some(4));
    Ok(())
}

/// Inserts a booking-system event holding resource 4 from 11:30 to 12:30 Oslo time on 2030-06-01.
async fn take_resource_4(h: &Harness) -> Result<i32> {
    let taken: i32 =
        h.pg.query_one(
            "insert into bb_event (activity_id, name, from_, to_, building_name, contact_name, contact_email,
                                   contact_phone, secret)
             select activity_id, 'Konsert', '2030-06-01 11:30:00', '2030-06-01 12:30:00', 'Kulturhus', '', '', '', 's'
             from bb_resource where id = 4
             returning id",
            &[],
        )
        .await?
        .get(0);
    h.pg.execute("insert into bb_event_resource (event_id, resource_id) values ($1, 4)", &[&taken]).await?;
    Ok(taken)
}

#[tokio::test]
async fn a_conflict_a_person_resolved_stays_as_they_left_it_when_the_outlook_booking_changes() -> Result<()> {
    let h = Harness::start().await?;
    take_resource_4(&h).await?;
    let mut config = h.config();
    config.imports_enabled = true;
    let sink = h.spawn(config);
    let offset = send(&h, &import(ImportOp::Upsert, "Overlapping")).await?;
    wait_imported(&h, offset).await?;
    let resolved =
        h.pg.execute("update roomsync_conflicts set status = 'resolved', resolution = 'talked to Kari'", &[]).await?;
    assert_eq!(resolved, 1, "the import was recorded as one conflict");
    let span = "select status, resolution, starts_at, outlook_change_key from roomsync_conflicts";
    let before = h.pg.query_one(span, &[]).await?;

    // Kari moves her booking a quarter of an hour; it still overlaps.
    let mut moved = import(ImportOp::Upsert, "Moved");
    moved.start += 15 * 60 * 1_000_000;
    moved.end += 15 * 60 * 1_000_000;
    let offset = send(&h, &moved).await?;
    wait_imported(&h, offset).await?;
    sink.stop().await?;

    let after = h.pg.query_one(span, &[]).await?;
    assert_eq!(after.get::<_, String>(0), "resolved");
    assert_eq!(after.get::<_, Option<String>>(1).as_deref(), Some("talked to Kari"));
    assert_eq!(
        after.get::<_, chrono::DateTime<chrono::Utc>>(2),
        before.get::<_, chrono::DateTime<chrono::Utc>>(2),
        "a resolved conflict keeps the span the person saw"
    );
    assert_eq!(after.get::<_, Option<String>>(3), before.get::<_, Option<String>>(3));
    Ok(())
}

#[tokio::test]
async fn with_the_decline_policy_a_conflict_found_at_import_is_recorded_declined() -> Result<()> {
    let h = Harness::start().await?;
    take_resource_4(&h).await?;
    let mut config = h.config();
    config.imports_enabled = true;
    config.conflict_policy = migrations::conflicts::ConflictPolicy::Decline;
    let sink = h.spawn(config);
    let offset = send(&h, &import(ImportOp::Upsert, "Overlapping")).await?;
    wait_imported(&h, offset).await?;
    sink.stop().await?;

    let status: String = h.pg.query_one("select status from roomsync_conflicts", &[]).await?.get(0);
    assert_eq!(status, "declined", "the import-time check follows the same policy as the resolver");
    Ok(())
}
