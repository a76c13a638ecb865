//! Meeting responses: accept and decline, their 404 outcome, retries and definite errors.

use graph_client::{ErrorClass, ResponseOutcome};
use graph_emulator::FaultConfig;
use serde_json::Value;

use crate::events::meeting;
use crate::tenant::{start, start_with, ROOM_A, ROOM_A_EMAIL};

async fn booked(t: &crate::tenant::Tenant) -> String {
    let mut event = meeting("Outlook booking", "2030-03-04T09:00:00Z", "2030-03-04T10:00:00Z");
    let tx = format!("booking-{}", t.emu.mailbox_events(ROOM_A).map_or(0, |e| e.len()));
    event.transaction_id = Some(tx.clone());
    match t.client.create_event(ROOM_A, &event).await {
        Ok(created) => created.id.expect("id"),
        // Its answer was lost after Graph created it: the client hands that back instead of posting again, and
        // the caller looks the event up (here in the emulator's state).
        Err(err) if err.may_have_been_applied() => {
            let events = t.emu.mailbox_events(ROOM_A).expect("mailbox");
            let found =
                events.iter().find(|e| e["transactionId"] == tx.as_str()).expect("created before the answer was lost");
            found["id"].as_str().expect("id").to_owned()
        }
        Err(err) => panic!("create: {err}"),
    }
}

#[tokio::test]
async fn a_decline_removes_the_event_and_tells_the_organizer_and_a_second_decline_is_already_gone() {
    let t = start().await;
    let id = booked(&t).await;
    let outcome = t.client.decline_event(ROOM_A_EMAIL, &id, Some("Rommet er opptatt."), true).await.expect("decline");
    assert_eq!(outcome, ResponseOutcome::Sent);
    assert!(t.emu.mailbox_events(ROOM_A).expect("mailbox").is_empty());
    let responses = t.emu.mailbox_responses(ROOM_A).expect("mailbox");
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0]["eventId"], id.as_str());
    assert_eq!(responses[0]["response"], "declined");
    assert_eq!(responses[0]["comment"], "Rommet er opptatt.");
    assert_eq!(responses[0]["sendResponse"], true);

    let again = t.client.decline_event(ROOM_A, &id, None, true).await.expect("decline again");
    assert_eq!(again, ResponseOutcome::AlreadyGone);
    assert_eq!(t.statuses(), vec![201, 202, 404]);
}

#[tokio::test]
async fn an_accept_sets_the_response_status_and_changes_the_change_key() {
    let t = start().await;
    let id = booked(&t).await;
    let before = t.client.get_event(ROOM_A, &id, &[]).await.expect("get").change_key;
    let outcome = t.client.accept_event(ROOM_A, &id, None, false).await.expect("accept");
    assert_eq!(outcome, ResponseOutcome::Sent);
    let after = t.client.get_event(ROOM_A, &id, &[]).await.expect("get").change_key;
    assert_ne!(before, after);
    let stored = t.emu.mailbox_events(ROOM_A).expect("mailbox");
    assert_eq!(stored[0]["responseStatus"]["response"], "accepted");
    let responses = t.emu.mailbox_responses(ROOM_A).expect("mailbox");
    assert_eq!(responses[0]["sendResponse"], false);
    assert_eq!(responses[0]["comment"], Value::Null);
    let unknown = t.client.accept_event(ROOM_A, "AAMkADnothere", None, true).await.expect("accept");
    assert_eq!(unknown, ResponseOutcome::AlreadyGone);
}

#[tokio::test]
async fn a_decline_whose_answer_was_lost_is_retried_and_lands_once() {
    let lossy = FaultConfig {
        random_error_rate: 0.6,
        random_error_statuses: vec![504, 503, 429],
        random_retry_after: "0.01".into(),
        fail_after_apply: true,
        seed: 7,
        ..FaultConfig::default()
    };
    let t = start_with(|c| c.faults = lossy).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(booked(&t).await);
    }
    for id in &ids {
        let outcome = t.client.decline_event(ROOM_A, id, Some("x"), true).await.expect("decline");
        assert!(matches!(outcome, ResponseOutcome::Sent | ResponseOutcome::AlreadyGone));
    }
    assert!(t.emu.mailbox_events(ROOM_A).expect("mailbox").is_empty());
    assert_eq!(t.emu.mailbox_responses(ROOM_A).expect("mailbox").len(), 5, "each event was declined once");
    assert!(t.statuses().iter().any(|s| *s >= 429 && *s != 404), "faults were injected");
    assert!(t.emu.requests().iter().all(|r| !r.retried_early));
}

#[tokio::test]
async fn a_refused_decline_is_a_definite_error() {
    let t = start().await;
    let id = booked(&t).await;
    t.emu.set_faults(FaultConfig { denied_mailboxes: vec![ROOM_A.into()], ..FaultConfig::default() });
    let err = t.client.decline_event(ROOM_A, &id, None, true).await.expect_err("denied");
    assert_eq!(err.classify(), ErrorClass::Definite);
    assert_eq!(err.code(), Some("ErrorAccessDenied"));
    assert_eq!(t.emu.mailbox_events(ROOM_A).expect("mailbox").len(), 1);
}

#[tokio::test]
async fn a_decline_in_an_unknown_mailbox_is_an_error_not_already_gone() {
    let t = start().await;
    let err = t.client.decline_event("nobody@example.org", "AAMkADx", None, true).await.expect_err("unknown mailbox");
    assert_eq!(err.code(), Some("ErrorInvalidUser"));
}
