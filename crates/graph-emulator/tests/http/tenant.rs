//! A fresh emulator per test and a tiny raw Graph caller.

use graph_emulator::{serve, Emulator, RoomConfig, TenantConfig};
use reqwest::Method;
use serde_json::Value;
use tokio::sync::oneshot;

pub const ROOM: &str = "6f1c2d1e-8a4b-4c55-9d2e-1a2b3c4d5e01";
pub const OTHER_ROOM: &str = "6f1c2d1e-8a4b-4c55-9d2e-1a2b3c4d5e02";
pub const TENANT: &str = "00000000-0000-0000-0000-0000000000aa";

pub struct Graph {
    pub emu: Emulator,
    pub base: String,
    pub http: reqwest::Client,
    pub token: String,
    _stop: oneshot::Sender<()>,
}

/// An answer: status, Retry-After, JSON body (Null when empty).
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

fn room(id: &str, email: &str, allow_conflicts: bool) -> RoomConfig {
    RoomConfig {
        id: id.into(),
        email: email.into(),
        display_name: email.into(),
        capacity: Some(6),
        building: Some("Main".into()),
        floor_number: None,
        room_list: None,
        auto_accept: true,
        allow_conflicts,
    }
}

pub async fn start() -> Graph {
    start_with(|_| {}).await
}

pub async fn start_with(configure: impl FnOnce(&mut TenantConfig)) -> Graph {
    let mut config = TenantConfig::default();
    config.rooms.push(room(ROOM, "room@example.org", false));
    config.rooms.push(room(OTHER_ROOM, "other@example.org", true));
    configure(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let emu = Emulator::new(config);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, emu.clone(), async move {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let reply: Value = http
        .post(format!("{base}/{TENANT}/oauth2/v2.0/token"))
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
    let token = reply["access_token"].as_str().expect("token").to_string();
    Graph { emu, base, http, token, _stop: stop }
}

impl Graph {
    /// Calls `/v1.0{path}` with the bearer token and optional extra headers.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>, headers: &[(&str, &str)]) -> Answer {
        let mut request = self.http.request(method, format!("{}/v1.0{path}", self.base)).bearer_auth(&self.token);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        if let Some(b) = body {
            request = request.json(&b);
        }
        let response = request.send().await.expect("send");
        let status = response.status().as_u16();
        let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        Answer { status, retry_after, headers, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body), &[]).await
    }

    /// POSTs an admin request (no token) and returns the JSON answer.
    pub async fn admin(&self, path: &str, body: Value) -> Answer {
        let response = self.http.post(format!("{}/_emulator{path}", self.base)).json(&body).send().await.expect("send");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        Answer { status, retry_after: None, headers, body: response.json().await.unwrap_or(Value::Null) }
    }
}

/// An event body in UTC.
pub fn event(subject: &str, start: &str, end: &str) -> Value {
    serde_json::json!({
        "subject": subject,
        "start": {"dateTime": start, "timeZone": "UTC"},
        "end": {"dateTime": end, "timeZone": "UTC"},
    })
}
