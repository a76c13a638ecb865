//! The admin API against a real database (and the Graph emulator for room discovery): bearer auth, room
//! mappings, conflicts, status, and the OpenAPI document.

use graph_emulator::{serve as serve_emulator, Emulator, TenantConfig};
use reqwest::StatusCode;
use roomsync::admin::{self, AdminState};
use roomsync::secret::Secret;
use serde_json::{json, Value};
use testkit::TestDatabase;

const TOKEN: &str = "admin-token-for-tests";

struct Api {
    base: String,
    http: reqwest::Client,
    db: TestDatabase,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Api {
    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.base)).bearer_auth(TOKEN)
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.base)).bearer_auth(TOKEN)
    }
}

async fn start(graph: Option<graph_client::GraphClient>) -> anyhow::Result<Api> {
    start_with(graph, |_| None).await
}

/// The API on a fresh database; `reconcile` may give it reconciliation settings for that database.
async fn start_with(
    graph: Option<graph_client::GraphClient>,
    reconcile: impl FnOnce(&TestDatabase) -> Option<reconcile::Config>,
) -> anyhow::Result<Api> {
    let db = TestDatabase::create().await?;
    let mut client = db.connect().await?;
    migrations::apply(&mut client).await?;
    let stack = testkit::Stack::from_env();
    let reconcile = reconcile(&db);
    let state = AdminState {
        database: client,
        // Slot names are cluster-wide: the default name may belong to a local pipeline on the same server.
        slot: testkit::unique_name("admin_api_slot"),
        metrics: None,
        graph,
        kafka: Some(streams::KafkaSettings::new(stack.kafka)),
        registry_url: Some(stack.registry_url),
        reconcile,
        captured_tables: vec!["bb_event".into(), "bb_event_resource".into()],
        captured_schema: "public".into(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(admin::serve(listener, state, Some(Secret::new(TOKEN)), async move {
        let _ = stopped.await;
    }));
    Ok(Api { base, http: reqwest::Client::new(), db, _stop: stop })
}

#[tokio::test]
async fn api_calls_need_the_right_bearer_token() -> anyhow::Result<()> {
    let api = start(None).await?;
    let url = format!("{}/api/status", api.base);
    let none = api.http.get(&url).send().await?;
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(none.headers().get("www-authenticate").map(|v| v.as_bytes()), Some(&b"Bearer"[..]));
    let wrong = api.http.get(&url).bearer_auth("admin-token-for-testz").send().await?;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let body: Value = wrong.json().await?;
    assert_eq!(body["error"], "unauthorized");
    let right = api.get("/api/status").send().await?;
    assert_eq!(right.status(), StatusCode::OK);
    let status: Value = right.json().await?;
    assert_eq!(status["open_conflicts"], 0);
    assert!(status["slot"].is_null(), "the configured slot does not exist yet");
    Ok(())
}

#[tokio::test]
async fn probes_and_the_openapi_document_need_no_token() -> anyhow::Result<()> {
    let api = start(None).await?;
    for path in ["/health/live", "/health/ready", "/metrics", "/openapi.json"] {
        let response = api.http.get(format!("{}{path}", api.base)).send().await?;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    let ready: Value = api.http.get(format!("{}/health/ready", api.base)).send().await?.json().await?;
    assert_eq!(ready["checks"], json!({"database": "ok", "schema_registry": "ok", "kafka": "ok"}));
    let doc: Value = api.http.get(format!("{}/openapi.json", api.base)).send().await?.json().await?;
    assert_eq!(doc["openapi"], "3.0.3");
    for path in [
        "/api/status",
        "/api/mappings",
        "/api/mappings/retry",
        "/api/reconcile",
        "/api/resource-mappings/{resource_id}",
        "/api/conflicts/{id}/resolve",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
    Ok(())
}

#[tokio::test]
async fn resource_mappings_can_be_added_changed_and_deactivated() -> anyhow::Result<()> {
    let api = start(None).await?;
    let put = |resource: i32, body: Value| {
        api.http.put(format!("{}/api/resource-mappings/{resource}", api.base)).bearer_auth(TOKEN).json(&body).send()
    };
    let added = put(1, json!({"mailbox": "hall-a@fjordvik.kommune.no", "name": "Hall A"})).await?;
    assert_eq!(added.status(), StatusCode::OK);
    let added: Value = added.json().await?;
    assert_eq!(added["active"], true);
    assert_eq!(added["resource_name"], "Hall A (hel hall)");

    assert_eq!(put(999, json!({"mailbox": "x@y.no"})).await?.status(), StatusCode::NOT_FOUND);
    assert_eq!(put(2, json!({"mailbox": "not a mailbox"})).await?.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let disabled = api.http.delete(format!("{}/api/resource-mappings/1", api.base)).bearer_auth(TOKEN).send().await?;
    assert_eq!(disabled.status(), StatusCode::OK);
    let listed: Value = api.get("/api/resource-mappings").send().await?.json().await?;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["active"], false);

    let again: Value = put(1, json!({"mailbox": "hall-a2@fjordvik.kommune.no"})).await?.json().await?;
    assert_eq!(again["active"], true, "putting again reactivates");
    assert_eq!(again["mailbox"], "hall-a2@fjordvik.kommune.no");
    assert_eq!(again["name"], "Hall A", "the name is kept when not given");
    Ok(())
}

#[tokio::test]
async fn conflicts_are_listed_and_resolved_once() -> anyhow::Result<()> {
    let api = start(None).await?;
    let db = api.db.connect().await?;
    db.execute(
        "insert into roomsync_conflicts (outlook_item_id, resource_id, outlook_event_id, reservation_type,
             reservation_id, starts_at, ends_at)
         values ('hall-a@fjordvik.kommune.no', 1, 'AAMk1', 'event', 301, now(), now() + interval '1 hour')",
        &[],
    )
    .await?;
    let open: Value = api.get("/api/conflicts").send().await?.json().await?;
    assert_eq!(open.as_array().map(Vec::len), Some(1));
    let id = open[0]["id"].as_i64().unwrap_or_default();
    let resolve = |id: i64| {
        api.http
            .post(format!("{}/api/conflicts/{id}/resolve", api.base))
            .bearer_auth(TOKEN)
            .json(&json!({"note": "the hall was free after all"}))
            .send()
    };
    assert_eq!(resolve(id).await?.status(), StatusCode::OK);
    assert_eq!(resolve(id).await?.status(), StatusCode::NOT_FOUND, "resolving twice is refused");
    let open: Value = api.get("/api/conflicts").send().await?.json().await?;
    assert_eq!(open.as_array().map(Vec::len), Some(0));
    let all: Value = api.get("/api/conflicts?all=true").send().await?.json().await?;
    assert_eq!(all[0]["status"], "resolved");
    assert_eq!(all[0]["resolution"], "the hall was free after all");
    Ok(())
}

#[tokio::test]
async fn rooms_are_discovered_through_graph_places() -> anyhow::Result<()> {
    let tenant = TenantConfig::load(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/emulator/tenant.toml"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve_emulator(listener, Emulator::new(tenant), async move {
        let _ = stopped.await;
    }));
    let config = graph_client::ClientConfig::new(
        "00000000-0000-0000-0000-00000000f00d",
        "roomsync-local",
        graph_client::Secret::new("roomsync-local-secret"),
    )
    .with_base_urls(&base, format!("{base}/v1.0"));
    let api = start(Some(graph_client::GraphClient::new(config)?)).await?;
    let rooms: Value = api.get("/api/rooms").send().await?.json().await?;
    let emails: Vec<&str> = rooms.as_array().into_iter().flatten().filter_map(|r| r["emailAddress"].as_str()).collect();
    assert_eq!(emails.len(), 6, "{rooms}");
    assert!(emails.contains(&"hall-a@fjordvik.kommune.no"));
    Ok(())
}

#[tokio::test]
async fn readiness_names_the_dependency_that_is_down() -> anyhow::Result<()> {
    let db = TestDatabase::create_empty().await?;
    let state = AdminState {
        database: db.connect().await?,
        slot: "roomsync".into(),
        metrics: None,
        graph: None,
        kafka: None,
        // Port 9 (discard) on loopback: nothing listens there.
        registry_url: Some("http://127.0.0.1:9".into()),
        reconcile: None,
        captured_tables: Vec::new(),
        captured_schema: "public".into(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(admin::serve(listener, state, None, async move {
        let _ = stopped.await;
    }));
    let response = reqwest::get(format!("{base}/health/ready")).await?;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await?;
    assert_eq!(body["checks"]["database"], "ok");
    assert!(body["checks"]["schema_registry"].as_str().unwrap_or_default().starts_with("error"), "{body}");
    Ok(())
}

#[tokio::test]
async fn parked_items_are_listed_by_a_dry_run_retry() -> anyhow::Result<()> {
    let stack = testkit::Stack::from_env();
    let prefix = testkit::unique_name("retry_api");
    let kafka = streams::KafkaSettings::new(stack.kafka.clone());
    streams::ensure_topics(
        &kafka,
        &[streams::TopicSpec::compacted(vocabulary::topics::Topics::new(prefix.clone()).desired())],
    )
    .await?;
    let api = start_with(None, |db| {
        let graph = graph_client::ClientConfig::new("t", "c", graph_client::Secret::new("s"));
        Some(reconcile::Config::new(db.connections(&prefix), graph))
    })
    .await?;
    let db = api.db.connect().await?;
    db.execute(
        "insert into outlook_calendar_mapping (reservation_type, reservation_id, resource_id, outlook_item_id,
             sync_status, error_message, priority_level, item_key, transaction_id, content_hash)
         values ('booking', 201, 2, 'hall-b@x', 'parked', 'ErrorAccessDenied: no access', 2, 'booking:201',
             gen_random_uuid(), 'h1')",
        &[],
    )
    .await?;
    let answer = api.post("/api/mappings/retry").json(&json!({"dry_run": true})).send().await?;
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = answer.json().await?;
    assert_eq!(body["dry_run"], true);
    assert_eq!(body["retried"], 0);
    assert_eq!(
        body["items"],
        json!([{"mailbox": "hall-b@x", "item_key": "booking:201", "status": "parked",
                "error": "ErrorAccessDenied: no access", "outcome": null}])
    );
    Ok(())
}

#[tokio::test]
async fn a_backfill_is_requested_and_read_back_and_bad_requests_say_what_is_wrong() -> anyhow::Result<()> {
    let api = start(None).await?;
    let unknown = api.post("/api/backfill").json(&json!({"tables": ["bb_secret"]})).send().await?;
    assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let message = unknown.json::<Value>().await?["message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("not captured, cannot backfill: bb_secret") && message.contains("bb_event"), "{message}");
    let no_resource = api.post("/api/backfill").json(&json!({"resources": [999]})).send().await?;
    assert_eq!(no_resource.status(), StatusCode::NOT_FOUND);

    let accepted = api.post("/api/backfill").json(&json!({"tables": ["bb_event"], "resources": [2]})).send().await?;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let request: Value = accepted.json().await?;
    assert_eq!((request["tables"].clone(), request["resources"].clone()), (json!(["bb_event"]), json!([2])));
    assert!(request["done_at"].is_null(), "no CDC reader runs here: {request}");
    let read: Value = api.get(&format!("/api/backfill/{}", request["id"])).send().await?.json().await?;
    assert_eq!(read, request);
    assert_eq!(api.get("/api/backfill/424242").send().await?.status(), StatusCode::NOT_FOUND);
    Ok(())
}
