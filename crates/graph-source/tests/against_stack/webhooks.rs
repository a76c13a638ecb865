//! The webhook path: validation, notifications, forged and malformed bodies, subscriptions and lifecycle events.
//! Polling is set to an hour here, so anything that arrives in time arrived through a notification.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use graph_client::Event;
use graph_emulator::FaultConfig;
use serde_json::json;
use testkit::wait_until;

use crate::harness::{Options, World, PATIENCE, ROOM_A, ROOM_B};

fn webhook_options() -> Options {
    Options { webhook: true, poll_interval: Duration::from_secs(3600), ..Options::default() }
}

/// Starts a world with webhooks and waits until room A's subscription exists and its first round is done.
async fn started(options: Options) -> Result<World> {
    let world = World::start(options).await?;
    world.wait_for_subscription(ROOM_A, None).await?;
    wait_until("room A's first round", PATIENCE, || async {
        let row = world.pg.query_opt("select 1 from roomsync_delta_state where mailbox = $1", &[&ROOM_A]).await?;
        Ok(row.map(|_| ()))
    })
    .await?;
    Ok(world)
}

#[tokio::test]
async fn a_notification_brings_a_change_without_waiting_for_the_poll() -> Result<()> {
    let world = started(webhook_options()).await?;
    let id = world.create(ROOM_A, "Pushed", 9).await?;
    world.wait_for_upsert(&id, "Pushed").await?;
    world.graph.delete_event(ROOM_A, &id).await?;
    world.wait_for_delete(&id).await?;
    Ok(())
}

#[tokio::test]
async fn the_validation_handshake_echoes_the_token_as_plain_text() -> Result<()> {
    let world = World::start(webhook_options()).await?;
    let base = world.webhook_url.clone().context("webhook url")?;
    for path in ["notifications", "lifecycle"] {
        let response = reqwest::Client::new()
            .post(format!("{base}/{path}?validationToken=Validation%3A%20Testing%20client%20%26%20more"))
            .send()
            .await?;
        ensure!(response.status() == 200);
        let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
        ensure!(content_type.starts_with("text/plain"), "{content_type}");
        ensure!(response.text().await? == "Validation: Testing client & more");
    }
    Ok(())
}

#[tokio::test]
async fn malformed_and_forged_notifications_are_refused_and_change_nothing() -> Result<()> {
    let world = started(webhook_options()).await?;
    let base = world.webhook_url.clone().context("webhook url")?;
    let http = reqwest::Client::new();
    let rounds_before = world.requests("GET").iter().filter(|p| p.contains("calendarView/delta")).count();
    for junk in ["", "{", "[]", "{\"value\":5}", "{\"value\":[{}]}", "\u{fffd}"] {
        for path in ["notifications", "lifecycle"] {
            let status = http.post(format!("{base}/{path}")).body(junk).send().await?.status();
            ensure!(status == 400, "{path} {junk:?} -> {status}");
        }
    }
    let (subscription, _) = world.subscriptions().await?.get(ROOM_A).cloned().context("subscription")?;
    let forged = json!({"value": [{
        "subscriptionId": subscription, "clientState": "guess", "changeType": "created",
        "resource": "Users/x/Events/y", "resourceData": {"id": "y"}
    }]});
    let status = http.post(format!("{base}/notifications")).json(&forged).send().await?.status();
    ensure!(status == 403, "forged clientState -> {status}");
    let lifecycle = json!({"value": [{"subscriptionId": subscription, "clientState": "guess",
                                      "lifecycleEvent": "subscriptionRemoved"}]});
    let status = http.post(format!("{base}/lifecycle")).json(&lifecycle).send().await?.status();
    ensure!(status == 403, "forged lifecycle -> {status}");

    // A real change afterwards still flows, and nothing above caused a round or a new subscription.
    let id = world.create(ROOM_A, "Real", 9).await?;
    world.wait_for_upsert(&id, "Real").await?;
    let rounds = world.requests("GET").iter().filter(|p| p.contains("calendarView/delta")).count();
    ensure!(rounds <= rounds_before + 2, "{rounds_before} -> {rounds}");
    ensure!(world.subscriptions().await?.get(ROOM_A).map(|s| s.0.clone()) == Some(subscription));
    ensure!(world.records().iter().all(|s| s.record.event_id == id));
    Ok(())
}

#[tokio::test]
async fn duplicate_and_out_of_order_notifications_produce_no_duplicate_records() -> Result<()> {
    let faults = FaultConfig { notification_duplicates: true, notification_hold: true, ..FaultConfig::default() };
    let world = started(Options { faults, ..webhook_options() }).await?;
    let id = world.create(ROOM_A, "v1", 9).await?;
    for subject in ["v2", "v3"] {
        let patch = Event { subject: Some(subject.into()), ..Event::default() };
        world.graph.update_event(ROOM_A, &id, &patch, None).await?;
    }
    let flushed = graph_emulator::subscriptions::flush_held(&world.emu);
    ensure!(flushed == 3, "{flushed} held notifications");
    world.wait_for_upsert(&id, "v3").await?;
    // Late duplicates may still trigger rounds: let them run, then check.
    let another = world.create(ROOM_A, "after", 12).await?;
    graph_emulator::subscriptions::flush_held(&world.emu);
    world.wait_for_upsert(&another, "after").await?;
    let mut change_keys: Vec<String> =
        world.records_of(&id).into_iter().filter_map(|r| r.event.and_then(|e| e.change_key)).collect();
    let total = change_keys.len();
    change_keys.sort();
    change_keys.dedup();
    ensure!(change_keys.len() == total, "a change key was published twice");
    Ok(())
}

#[tokio::test]
async fn subscriptions_are_renewed_before_they_expire() -> Result<()> {
    let options = Options {
        subscription_lifetime: Duration::from_secs(600),
        renew_before: Duration::from_secs(599),
        ..webhook_options()
    };
    let world = World::start(options).await?;
    let subscription = world.wait_for_subscription(ROOM_A, None).await?;
    wait_until("a renewal", PATIENCE, || async {
        Ok(world.subscriptions().await?.get(ROOM_A).and_then(|(_, renewed)| *renewed))
    })
    .await?;
    let patched = world.requests("PATCH");
    ensure!(patched.iter().any(|p| p.contains(&subscription)), "{patched:?}");
    Ok(())
}

#[tokio::test]
async fn a_removed_subscription_is_recreated_and_followed_by_a_full_round() -> Result<()> {
    let world = started(webhook_options()).await?;
    let old = world.wait_for_subscription(ROOM_A, None).await?;
    let full_rounds =
        || world.requests("GET").iter().filter(|p| p.contains("calendarView/delta?startDateTime")).count();
    let before = full_rounds();
    graph_emulator::subscriptions::lifecycle(&world.emu, &old, "subscriptionRemoved")
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let new = world.wait_for_subscription(ROOM_A, Some(&old)).await?;
    ensure!(new != old);
    wait_until("a full round after the removal", PATIENCE, || async { Ok((full_rounds() > before).then_some(())) })
        .await?;
    let id = world.create(ROOM_A, "Through the new subscription", 9).await?;
    world.wait_for_upsert(&id, "Through the new subscription").await?;
    Ok(())
}

#[tokio::test]
async fn missed_and_reauthorization_lifecycle_events_are_handled() -> Result<()> {
    let world = started(webhook_options()).await?;
    let subscription = world.wait_for_subscription(ROOM_A, None).await?;
    let full_rounds =
        || world.requests("GET").iter().filter(|p| p.contains("calendarView/delta?startDateTime")).count();
    let before = full_rounds();
    graph_emulator::subscriptions::lifecycle(&world.emu, &subscription, "missed")
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    wait_until("a full round after missed", PATIENCE, || async { Ok((full_rounds() > before).then_some(())) }).await?;
    graph_emulator::subscriptions::lifecycle(&world.emu, &subscription, "reauthorizationRequired")
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    wait_until("a reauthorization", PATIENCE, || async {
        Ok(world.requests("POST").iter().any(|p| p.contains(&format!("{subscription}/reauthorize"))).then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_deactivated_room_loses_its_subscription_and_produces_nothing_more() -> Result<()> {
    let world = started(webhook_options()).await?;
    world.wait_for_subscription(ROOM_B, None).await?;
    world.pg.execute("update bb_resource_outlook_item set active = 0 where outlook_item_id = $1", &[&ROOM_B]).await?;
    wait_until("room B's subscription deleted", PATIENCE, || async {
        Ok((!world.subscriptions().await?.contains_key(ROOM_B)).then_some(()))
    })
    .await?;
    let ignored = world.create(ROOM_B, "Not watched", 9).await?;
    let marker = world.create(ROOM_A, "Marker", 9).await?;
    world.wait_for_upsert(&marker, "Marker").await?;
    ensure!(world.records_of(&ignored).is_empty(), "a deactivated room produced records");
    ensure!(world.requests("DELETE").iter().any(|p| p.contains("/subscriptions/")));
    Ok(())
}

#[tokio::test]
async fn a_restart_keeps_the_stored_subscriptions_instead_of_recreating_them() -> Result<()> {
    let options = Options {
        subscription_lifetime: Duration::from_secs(600),
        renew_before: Duration::from_secs(599),
        ..webhook_options()
    };
    let mut world = World::start(options).await?;
    let a = world.wait_for_subscription(ROOM_A, None).await?;
    let b = world.wait_for_subscription(ROOM_B, None).await?;
    world.stop_source().await?;
    world.emu.reset_requests();
    world.run_source().await?;
    // A renewal of the old subscription shows the restarted manager has checked it.
    wait_until("a renewal after the restart", PATIENCE, || async {
        Ok(world.requests("PATCH").iter().any(|p| p.contains(&a)).then_some(()))
    })
    .await?;
    ensure!(world.requests("DELETE").is_empty(), "{:?}", world.requests("DELETE"));
    let stored = world.subscriptions().await?;
    ensure!(stored.get(ROOM_A).map(|s| &s.0) == Some(&a) && stored.get(ROOM_B).map(|s| &s.0) == Some(&b));
    let id = world.create(ROOM_A, "After restart", 9).await?;
    world.wait_for_upsert(&id, "After restart").await?;
    world.stop_source().await?;
    Ok(())
}
