//! `graph_client::paths` against the emulator: a room named by an address that needs escaping resolves to one
//! mailbox whichever request names it (the client's own calls or a stage's `$batch`), and the emulator logs,
//! throttles and injects faults per that mailbox.

use graph_client::properties::ROOMSYNC_PROPERTIES;
use graph_client::{paths, BatchRequest, Method, ResponseOutcome};

use crate::events::meeting;
use crate::tenant::{room, start_with};

/// A room whose address holds a `+`, which a path must escape (a form-decoded `+` reads as a space).
const HALL: &str = "6f1c2d1e-8a4b-4c55-9d2e-1a2b3c4d5e03";
const HALL_EMAIL: &str = "hall+a@example.org";

#[tokio::test]
async fn a_room_whose_address_needs_escaping_is_one_mailbox_for_direct_and_batched_requests() {
    let t = start_with(|c| c.rooms.push(room(HALL, HALL_EMAIL))).await;
    let event = meeting("Hall", "2030-05-02T08:00:00Z", "2030-05-02T09:00:00Z");
    let id = t.client.create_event(HALL_EMAIL, &event).await.expect("create").id.expect("id");
    let read =
        BatchRequest::new("read", Method::GET, paths::event(HALL_EMAIL, &id).expand_properties(&ROOMSYNC_PROPERTIES));
    let answers = t.client.batch(HALL_EMAIL, vec![read]).await.expect("batch");
    assert_eq!(answers.iter().map(|a| a.status).collect::<Vec<_>>(), vec![200]);
    let outcome = t.client.decline_event(HALL_EMAIL, &id, None, false).await.expect("decline");
    assert_eq!(outcome, ResponseOutcome::Sent);

    let log = t.emu.requests();
    let named: Vec<_> = log.iter().filter(|r| r.path != "/v1.0/$batch").collect();
    assert_eq!(named.len(), 3, "{log:?}");
    for r in named {
        assert!(r.path.starts_with("/v1.0/users/hall%2Ba@example.org/events"), "{}", r.path);
        assert_eq!(r.mailbox.as_deref(), Some(HALL), "{} resolved to the room", r.path);
    }
}
