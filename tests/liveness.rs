//! A stalled resolver is never mistaken for a quiet one (issue #18): a source transaction whose records never
//! arrive holds back every later one; after `sync.stall_after` the resolver says so in `/health/ready`,
//! `roomsync status` (the `roomsync_stage_health` row) and `roomsync_resolver_stalled_seconds`.

mod support;

use std::time::Duration;

use cdc_reader::transaction::TransactionMetadata;
use rdkafka::producer::{FutureProducer, FutureRecord};
use roomsync::admin::{self, AdminState};
use roomsync::cli::Stage;
use roomsync::ops::status;
use roomsync::stages;
use schema_registry::{AvroCodec, RegistryClient};
use serde_json::Value;
use streams::{ensure_topics, KafkaSettings, TopicSpec};
use testkit::{unique_name, wait_until, Stack, TestDatabase};
use vocabulary::records::AvroRecord;
use vocabulary::topics::{value_subject, Topics};

/// The commit LSN of the transaction that never completes.
const STUCK_LSN: i64 = 4242;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_that_never_completes_is_a_stall_in_health_status_and_metrics() -> anyhow::Result<()> {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    let db = TestDatabase::create().await?;
    migrations::apply(&mut db.connect().await?).await?;
    let stack = Stack::from_env();
    let name = unique_name("liveness");
    let extra = [("ROOMSYNC__SYNC__STALL_AFTER", "2s".to_owned())];
    let config = support::pipeline_config(db.url(), &stack.kafka, "http://127.0.0.1:9", &name, &extra)?;

    // The END of a transaction that counts one bb_event record, which never comes.
    let topic = Topics::new(name.clone()).transactions();
    let settings = KafkaSettings::new(stack.kafka.clone());
    ensure_topics(&settings, &[TopicSpec::log(&topic)]).await?;
    let counts = [(format!("{name}.cdc.public.bb_event"), 1)].into_iter().collect();
    let end = TransactionMetadata::end(Some(1), STUCK_LSN, 0, counts);
    let codec = AvroCodec::new(RegistryClient::new(&stack.registry_url));
    let bytes = codec.encode(&value_subject(&topic), TransactionMetadata::schema(), end.to_avro()?).await?;
    let producer: FutureProducer = settings.client_config().create()?;
    producer
        .send(FutureRecord::to(&topic).key(end.id.as_bytes()).payload(&bytes), Duration::from_secs(10))
        .await
        .map_err(|(e, _)| e)?;

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let resolver = stages::start(&config, Stage::Resolver, async move {
        let _ = stopped.await;
    })?;
    let resolver = tokio::spawn(resolver);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let state = AdminState {
        database: db.connect().await?,
        slot: name.clone(),
        metrics: Some(recorder),
        graph: None,
        kafka: None,
        registry_url: None,
        reconcile: None,
        captured_tables: Vec::new(),
        captured_schema: "public".into(),
    };
    tokio::spawn(admin::serve(listener, state, None, std::future::pending()));

    let http = reqwest::Client::new();
    let ready: Value = wait_until("the stall to show in /health/ready", Duration::from_secs(90), || {
        let (http, url) = (http.clone(), format!("{base}/health/ready"));
        async move {
            let response = http.get(url).send().await?;
            let stalled = response.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE;
            let body: Value = response.json().await?;
            Ok(stalled.then_some(body))
        }
    })
    .await?;
    assert_eq!(ready["status"], "not_ready");
    let checks = ready["checks"].as_object().cloned().unwrap_or_default();
    let resolver_check = checks.iter().find(|(name, _)| name.starts_with("resolver ")).map(|(_, v)| v.to_string());
    assert!(
        resolver_check.as_deref().is_some_and(|c| c.contains("stalled") && c.contains(&STUCK_LSN.to_string())),
        "{ready}"
    );

    let status = status::read(&db.connect().await?, &name).await?;
    let stage = status.stages.iter().find(|s| s.stage == "resolver").expect("the resolver's row");
    assert_eq!(stage.state, "stalled");
    assert!(!stage.gone);
    assert!(stage.detail.as_deref().is_some_and(|d| d.contains("4242")), "{stage:?}");

    let metrics = http.get(format!("{base}/metrics")).send().await?.text().await?;
    let stalled_seconds = metrics
        .lines()
        .find_map(|l| l.strip_prefix("roomsync_resolver_stalled_seconds "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert!(stalled_seconds.is_some_and(|s| s > 0.0), "{stalled_seconds:?}");

    let _ = stop.send(());
    resolver.await??;
    let rows = db.connect().await?.query("select 1 from roomsync_stage_health", &[]).await?;
    assert!(rows.is_empty(), "a stopped resolver removes its row");
    Ok(())
}
