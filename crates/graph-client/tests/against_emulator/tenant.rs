//! A fresh emulated tenant per test on 127.0.0.1:0, with a client pointed at it.

use std::time::Duration;

use graph_client::{ClientConfig, GraphClient, Secret};
use graph_emulator::{serve, Emulator, RoomConfig, TenantConfig, UserConfig};
use tokio::sync::oneshot;

/// Room A.
pub const ROOM_A: &str = "6f1c2d1e-8a4b-4c55-9d2e-1a2b3c4d5e01";
/// Room B.
pub const ROOM_B: &str = "6f1c2d1e-8a4b-4c55-9d2e-1a2b3c4d5e02";
/// Room A's address.
pub const ROOM_A_EMAIL: &str = "room-a@example.org";

/// A running emulator plus a client and a raw HTTP client.
pub struct Tenant {
    pub emu: Emulator,
    pub base: String,
    pub client: GraphClient,
    pub http: reqwest::Client,
    _stop: oneshot::Sender<()>,
}

/// A room mailbox with `id` and `email`.
pub fn room(id: &str, email: &str) -> RoomConfig {
    RoomConfig {
        id: id.into(),
        email: email.into(),
        display_name: format!("Room {email}"),
        capacity: Some(8),
        building: Some("Main".into()),
        floor_number: Some(1),
        room_list: Some("rooms@example.org".into()),
        auto_accept: true,
        allow_conflicts: false,
    }
}

pub async fn start() -> Tenant {
    start_with(|_| {}).await
}

pub async fn start_with(configure: impl FnOnce(&mut TenantConfig)) -> Tenant {
    let mut config = TenantConfig::default();
    config.rooms.push(room(ROOM_A, ROOM_A_EMAIL));
    config.rooms.push(room(ROOM_B, "room-b@example.org"));
    config.users.push(UserConfig {
        id: "6f1c2d1e-8a4b-4c55-9d2e-1a2b3c4d5eff".into(),
        email: "organizer@example.org".into(),
        display_name: "Organizer".into(),
    });
    configure(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let emu = Emulator::new(config);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, emu.clone(), async move {
        let _ = stopped.await;
    }));
    let client = GraphClient::new(client_config(&base)).expect("client");
    Tenant { emu, base, client, http: reqwest::Client::new(), _stop: stop }
}

/// Client config for the emulator with fast backoff so retry tests finish quickly.
pub fn client_config(base: &str) -> ClientConfig {
    let mut config = ClientConfig::new(
        "00000000-0000-0000-0000-0000000000aa",
        "roomsync-test-client",
        Secret::new("roomsync-test-secret"),
    )
    .with_base_urls(base, format!("{base}/v1.0"));
    config.base_backoff = Duration::from_millis(5);
    config.max_backoff = Duration::from_secs(2);
    config.max_attempts = 30;
    config
}

impl Tenant {
    /// A token fetched by hand, for raw requests.
    pub async fn token(&self) -> String {
        let reply: serde_json::Value = self
            .http
            .post(format!("{}/00000000-0000-0000-0000-0000000000aa/oauth2/v2.0/token", self.base))
            .form(&[
                ("client_id", "roomsync-test-client"),
                ("client_secret", "roomsync-test-secret"),
                ("scope", "https://graph.microsoft.com/.default"),
                ("grant_type", "client_credentials"),
            ])
            .send()
            .await
            .expect("token")
            .json()
            .await
            .expect("json");
        reply["access_token"].as_str().expect("token").to_string()
    }

    /// Statuses of the request log, in order.
    pub fn statuses(&self) -> Vec<u16> {
        self.emu.requests().iter().map(|r| r.status).collect()
    }
}
