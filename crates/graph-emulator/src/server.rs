//! Routing: which URL reaches which handler, and the `serve` loop.
//!
//! ```text
//!  /{tenant}/oauth2/v2.0/token  -> auth::token               (no gate)
//!  /_emulator/...               -> admin                     (no gate)
//!  /v1.0/...                    -> gate -> events/delta/places/batch/subscriptions
//! ```
//! Invariant: every `/v1.0` route, including unknown ones, passes the gate, so nothing Graph-like is reachable
//! without a bearer token and nothing escapes the request log.

use std::future::Future;

use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

use crate::error::{ApiError, EmulatorError};
use crate::state::Emulator;
use crate::{admin, auth, batch, delta, events, gate, places, responses, subscriptions};

async fn unknown_segment() -> ApiError {
    ApiError::new(axum::http::StatusCode::BAD_REQUEST, "BadRequest", "Resource not found for the segment.")
}

fn graph_routes(emu: &Emulator) -> Router<Emulator> {
    let event_item = get(events::get).patch(events::update).delete(events::delete);
    Router::new()
        .route("/v1.0/users/{user}/events", post(events::create).get(events::list))
        .route("/v1.0/users/{user}/calendar/events", post(events::create).get(events::list))
        .route("/v1.0/users/{user}/calendars/{calendar}/events", post(events::create))
        .route("/v1.0/users/{user}/events/{id}", event_item.clone())
        .route("/v1.0/users/{user}/calendar/events/{id}", event_item)
        .route("/v1.0/users/{user}/events/{id}/instances", get(events::instances))
        .route("/v1.0/users/{user}/events/{id}/accept", post(responses::accept))
        .route("/v1.0/users/{user}/events/{id}/tentativelyAccept", post(responses::tentatively_accept))
        .route("/v1.0/users/{user}/events/{id}/decline", post(responses::decline))
        .route("/v1.0/users/{user}/calendar/events/{id}/accept", post(responses::accept))
        .route("/v1.0/users/{user}/calendar/events/{id}/tentativelyAccept", post(responses::tentatively_accept))
        .route("/v1.0/users/{user}/calendar/events/{id}/decline", post(responses::decline))
        .route("/v1.0/users/{user}/calendarView", get(events::calendar_view))
        .route("/v1.0/users/{user}/calendar/calendarView", get(events::calendar_view))
        // Graph answers the delta function under every form clients use: the plain segment, the OData function
        // call Kiota-generated SDKs send (`delta()`) and the namespace-qualified call, also under /calendar.
        .route("/v1.0/users/{user}/calendarView/delta", get(delta::delta))
        .route("/v1.0/users/{user}/calendarView/delta()", get(delta::delta))
        .route("/v1.0/users/{user}/calendarView/microsoft.graph.delta()", get(delta::delta))
        .route("/v1.0/users/{user}/calendar/calendarView/delta", get(delta::delta))
        .route("/v1.0/users/{user}/calendar/calendarView/delta()", get(delta::delta))
        .route("/v1.0/users/{user}/calendar/calendarView/microsoft.graph.delta()", get(delta::delta))
        .route("/v1.0/places/microsoft.graph.room", get(places::rooms))
        .route("/v1.0/places/microsoft.graph.roomlist", get(places::room_lists))
        .route("/v1.0/places/{list}/microsoft.graph.roomlist/rooms", get(places::rooms_in_list))
        .route("/v1.0/$batch", post(batch::batch))
        .route("/v1.0/subscriptions", post(subscriptions::create))
        .route(
            "/v1.0/subscriptions/{id}",
            get(subscriptions::get).patch(subscriptions::renew).delete(subscriptions::delete),
        )
        .route("/v1.0/subscriptions/{id}/reauthorize", post(subscriptions::reauthorize))
        .fallback(unknown_segment)
        .layer(from_fn_with_state(emu.clone(), gate::gate))
}

fn admin_routes() -> Router<Emulator> {
    Router::new()
        .route("/_emulator/requests", get(admin::requests).delete(admin::reset_requests))
        .route("/_emulator/faults", get(admin::get_faults).put(admin::put_faults).patch(admin::patch_faults))
        .route("/_emulator/delta/expire", post(admin::expire_delta))
        .route("/_emulator/tokens/revoke", post(admin::revoke_tokens))
        .route("/_emulator/mailboxes/{id}/events", get(admin::mailbox_events))
        .route("/_emulator/mailboxes/{id}/bookings", post(admin::user_booking))
        .route("/_emulator/mailboxes/{id}/responses", get(admin::mailbox_responses))
        .route("/_emulator/mailboxes/{id}/meeting-requests", post(admin::meeting_request))
        .route("/_emulator/notifications/flush", post(admin::flush_notifications))
        .route("/_emulator/subscriptions/{id}/lifecycle/{event}", post(admin::lifecycle_event))
}

/// The complete router for `emu` (also stored in the emulator so `$batch` can dispatch through it).
pub fn router(emu: &Emulator) -> Router {
    if let Some(existing) = emu.shared.router.get() {
        return existing.clone();
    }
    let app = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(auth::token))
        .merge(admin_routes())
        .merge(graph_routes(emu))
        .with_state(emu.clone());
    // A concurrent caller may have won the race; either router is equivalent.
    let _ = emu.shared.router.set(app.clone());
    app
}

/// Serves `emu` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    emu: Emulator,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), EmulatorError> {
    let app = router(&emu);
    // The peer address tells a retry on the same connection from an identical request on another (retry_watch).
    let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service).with_graceful_shutdown(shutdown).await?;
    Ok(())
}
