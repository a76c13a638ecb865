//! Conflict policy "decline": conflict rows with status `declined` make the sink decline the Outlook booking in
//! the room calendar, with the comment, once; `open` rows (policy record) are never declined.

use std::time::Duration;

use anyhow::{Context, Result};
use graph_emulator::FaultConfig;
use graph_sink::{decline_pending, DeclineReport, DEFAULT_DECLINE_COMMENT};
use serde_json::{json, Value};
use testkit::wait_until;

use crate::harness::{Harness, ROOM_A};

/// A person books the room in Outlook; returns the event id.
async fn outlook_booking(h: &Harness, subject: &str, hour: u32) -> Result<String> {
    let body = json!({
        "subject": subject,
        "start": {"dateTime": format!("2030-05-06T{hour:02}:00:00"), "timeZone": "UTC"},
        "end": {"dateTime": format!("2030-05-06T{:02}:00:00", hour + 1), "timeZone": "UTC"},
        "organizer": {"emailAddress": {"name": "Kari", "address": "kari@example.org"}},
    });
    let created: Value = reqwest::Client::new()
        .post(format!("{}/_emulator/mailboxes/{ROOM_A}/bookings", h.base))
        .json(&body)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(created["id"].as_str().context("event id")?.to_owned())
}

/// A conflict row as the resolver writes it; returns its id.
async fn conflict(h: &Harness, event_id: &str, reservation_id: i32, status: &str) -> Result<i64> {
    let row =
        h.pg.query_one(
            "insert into roomsync_conflicts (outlook_item_id, resource_id, outlook_event_id, reservation_type,
                                             reservation_id, starts_at, ends_at, status)
             values ($1, 1, $2, 'event', $3, '2030-05-06 08:00Z', '2030-05-06 09:00Z', $4) returning id",
            &[&ROOM_A, &event_id, &reservation_id, &status],
        )
        .await?;
    Ok(row.get(0))
}

/// (declined_at is set, decline_error) of a conflict row.
async fn state(h: &Harness, id: i64) -> Result<(bool, Option<String>)> {
    let row =
        h.pg.query_one("select declined_at is not null, decline_error from roomsync_conflicts where id = $1", &[&id])
            .await?;
    Ok((row.get(0), row.get(1)))
}

fn event_ids(h: &Harness) -> Vec<String> {
    h.events(ROOM_A).iter().filter_map(|e| e["id"].as_str().map(str::to_owned)).collect()
}

#[tokio::test]
async fn a_declined_conflict_is_declined_in_the_room_calendar_once_and_an_open_one_never() -> Result<()> {
    let h = Harness::start().await?;
    let clash = outlook_booking(&h, "Clash", 8).await?;
    let reviewed = outlook_booking(&h, "For review", 10).await?;
    // The clash overlaps two reservations: two rows, one decline.
    let first = conflict(&h, &clash, 11, "declined").await?;
    let second = conflict(&h, &clash, 12, "declined").await?;
    let open = conflict(&h, &reviewed, 13, "open").await?;

    let graph = h.graph();
    let report = decline_pending(&h.pg, &graph, DEFAULT_DECLINE_COMMENT).await?;
    assert_eq!(report, DeclineReport { declined: 1, ..DeclineReport::default() });
    assert_eq!(event_ids(&h), vec![reviewed.clone()], "the clash is gone, the open conflict's booking stays");
    let responses = h.emu.mailbox_responses(ROOM_A).context("mailbox")?;
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0]["eventId"], clash.as_str());
    assert_eq!(responses[0]["response"], "declined");
    assert_eq!(responses[0]["comment"], DEFAULT_DECLINE_COMMENT);
    assert_eq!(responses[0]["sendResponse"], true);
    assert_eq!(state(&h, first).await?, (true, None));
    assert_eq!(state(&h, second).await?, (true, None));
    assert_eq!(state(&h, open).await?, (false, None));

    let requests = h.emu.requests().len();
    let again = decline_pending(&h.pg, &graph, DEFAULT_DECLINE_COMMENT).await?;
    assert_eq!(again, DeclineReport::default());
    assert_eq!(h.emu.requests().len(), requests, "nothing left to do: no Graph request");
    assert_eq!(h.emu.mailbox_responses(ROOM_A).context("mailbox")?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn an_event_already_gone_counts_as_declined() -> Result<()> {
    let h = Harness::start().await?;
    let gone = outlook_booking(&h, "Cancelled in Outlook", 8).await?;
    h.graph().delete_event(ROOM_A, &gone).await?;
    let row = conflict(&h, &gone, 11, "declined").await?;
    let report = decline_pending(&h.pg, &h.graph(), "x").await?;
    assert_eq!(report, DeclineReport { already_gone: 1, ..DeclineReport::default() });
    assert_eq!(state(&h, row).await?, (true, None));
    assert!(h.emu.mailbox_responses(ROOM_A).context("mailbox")?.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_definite_refusal_is_recorded_and_not_retried_until_an_operator_clears_it() -> Result<()> {
    let h = Harness::start().await?;
    let clash = outlook_booking(&h, "Clash", 8).await?;
    let row = conflict(&h, &clash, 11, "declined").await?;
    h.emu.set_faults(FaultConfig { denied_mailboxes: vec![ROOM_A.into()], ..FaultConfig::default() });
    let graph = h.graph();
    let report = decline_pending(&h.pg, &graph, "x").await?;
    assert_eq!(report, DeclineReport { failed: 1, ..DeclineReport::default() });
    let (declined, error) = state(&h, row).await?;
    assert!(!declined);
    assert!(error.as_deref().is_some_and(|e| e.contains("ErrorAccessDenied")), "{error:?}");

    let requests = h.emu.requests().len();
    assert_eq!(decline_pending(&h.pg, &graph, "x").await?, DeclineReport::default());
    assert_eq!(h.emu.requests().len(), requests, "a recorded refusal is not retried");

    h.emu.set_faults(FaultConfig::default());
    h.pg.execute("update roomsync_conflicts set decline_error = null where id = $1", &[&row]).await?;
    let report = decline_pending(&h.pg, &graph, "x").await?;
    assert_eq!(report, DeclineReport { declined: 1, ..DeclineReport::default() });
    assert_eq!(state(&h, row).await?, (true, None));
    Ok(())
}

#[tokio::test]
async fn transient_failures_leave_the_row_for_the_next_pass() -> Result<()> {
    let h = Harness::start().await?;
    let clash = outlook_booking(&h, "Clash", 8).await?;
    let row = conflict(&h, &clash, 11, "declined").await?;
    h.emu.set_faults(FaultConfig {
        random_error_rate: 1.0,
        random_error_statuses: vec![503],
        random_retry_after: "0.01".into(),
        ..FaultConfig::default()
    });
    let graph = h.graph();
    let report = decline_pending(&h.pg, &graph, "x").await?;
    assert_eq!(report, DeclineReport { deferred: 1, ..DeclineReport::default() });
    assert_eq!(state(&h, row).await?, (false, None));
    h.emu.set_faults(FaultConfig::default());
    assert_eq!(decline_pending(&h.pg, &graph, "x").await?.declined, 1);
    assert_eq!(state(&h, row).await?, (true, None));
    Ok(())
}

#[tokio::test]
async fn the_running_sink_declines_on_its_interval() -> Result<()> {
    let h = Harness::start().await?;
    let clash = outlook_booking(&h, "Clash", 8).await?;
    let mut config = h.config();
    config.decline_interval = Duration::from_millis(200);
    config.decline_comment = "Opptatt.".into();
    let sink = h.spawn(config);
    let row = conflict(&h, &clash, 11, "declined").await?;
    let world = &h;
    wait_until("the sink to decline the clash", Duration::from_secs(30), || async move {
        Ok(state(world, row).await?.0.then_some(()))
    })
    .await?;
    assert!(event_ids(&h).is_empty());
    let responses = h.emu.mailbox_responses(ROOM_A).context("mailbox")?;
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0]["comment"], "Opptatt.");
    sink.stop().await
}
