//! Readiness probes of the dependencies: each answers "ok" or the reason, within a short deadline, so a slow
//! dependency makes the probe fail instead of hang.

use std::time::Duration;

use rdkafka::producer::{BaseProducer, Producer};

/// How long one probe may take.
const DEADLINE: Duration = Duration::from_secs(3);

/// The schema registry answers `GET /subjects`.
pub async fn registry(url: &str) -> String {
    let request = reqwest::Client::new().get(format!("{}/subjects", url.trim_end_matches('/'))).timeout(DEADLINE);
    match request.send().await {
        Ok(response) if response.status().is_success() => "ok".into(),
        Ok(response) => format!("error: answered {}", response.status()),
        Err(err) => format!("error: {err}"),
    }
}

/// The Kafka cluster answers a metadata request.
pub async fn kafka(settings: &streams::KafkaSettings) -> String {
    let config = settings.client_config();
    // librdkafka's metadata call blocks: keep it off the async executor.
    let outcome = tokio::task::spawn_blocking(move || {
        let producer: BaseProducer = config.create().map_err(|err| err.to_string())?;
        producer.client().fetch_metadata(None, DEADLINE).map(|_| ()).map_err(|err| err.to_string())
    })
    .await;
    match outcome {
        Ok(Ok(())) => "ok".into(),
        Ok(Err(err)) => format!("error: {err}"),
        Err(err) => format!("error: probe task failed: {err}"),
    }
}
