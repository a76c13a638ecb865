//! The resource booking assistant path versus direct writes, and Outlook-side bookings.

use serde_json::json;

use crate::tenant::{event, start, OTHER_ROOM, ROOM};

#[tokio::test]
async fn a_meeting_request_is_accepted_when_free_and_declined_when_busy_unless_conflicts_are_allowed() {
    let g = start().await;
    let mut request = event("Team", "2030-01-07T08:00:00", "2030-01-07T09:00:00");
    request["organizer"] = json!({"emailAddress": {"name": "Kari", "address": "kari@example.org"}});
    let first = g.admin(&format!("/mailboxes/{ROOM}/meeting-requests"), request.clone()).await;
    assert_eq!(first.body["response"], "accepted");
    let second = g.admin(&format!("/mailboxes/{ROOM}/meeting-requests"), request.clone()).await;
    assert_eq!(second.body["response"], "declined");
    assert_eq!(g.emu.mailbox_events(ROOM).expect("mailbox").len(), 1);

    for _ in 0..2 {
        let a = g.admin(&format!("/mailboxes/{OTHER_ROOM}/meeting-requests"), request.clone()).await;
        assert_eq!(a.body["response"], "accepted");
    }
    assert_eq!(g.emu.mailbox_events(OTHER_ROOM).expect("mailbox").len(), 2);
}

#[tokio::test]
async fn direct_writes_skip_the_assistant_so_double_booking_is_possible() {
    let g = start().await;
    for _ in 0..2 {
        let a =
            g.post(&format!("/users/{ROOM}/events"), event("x", "2030-01-07T08:00:00", "2030-01-07T09:00:00")).await;
        assert_eq!(a.status, 201);
    }
    assert_eq!(g.emu.mailbox_events(ROOM).expect("mailbox").len(), 2);
}

#[tokio::test]
async fn a_user_booking_carries_no_roomsync_tags() {
    let g = start().await;
    let mut booking = event("Booked in Outlook", "2030-01-07T08:00:00", "2030-01-07T09:00:00");
    booking["singleValueExtendedProperties"] =
        json!([{"id": "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name X", "value": "1"}]);
    let a = g.admin(&format!("/mailboxes/{ROOM}/bookings"), booking).await;
    assert_eq!(a.status, 201);
    let stored = g.emu.mailbox_events(ROOM).expect("mailbox");
    assert_eq!(stored.len(), 1);
    assert!(stored[0].get("singleValueExtendedProperties").is_none());
    assert_eq!(stored[0]["subject"], "Booked in Outlook");
}
