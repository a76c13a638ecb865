//! `roomsync run`: the pipeline stages and the admin API in one process until Ctrl-C or SIGTERM.
//!
//! Migrations run first, so a fresh database is usable at once. Each stage is a named task that stops when
//! the shutdown signal fires; a stage that fails stops the process with its error, so a supervisor restarts
//! it (every stage resumes from durable progress: slot LSN, stored delta links, offsets in PostgreSQL).

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::admin::{self, AdminState};
use crate::cli::Stage;
use crate::config::Config;

/// Bucket bounds (seconds) of every `*_seconds` histogram: from a fast Graph write to a slow reconcile run.
pub const SECONDS_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// The Prometheus exporter: histograms with buckets (summaries' quantiles cannot be aggregated across
/// instances, and the end-to-end latency target is a bound: "share under 1 s" is one bucket).
fn prometheus() -> anyhow::Result<PrometheusBuilder> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .context("configuring histogram buckets")
}

/// The tables a backfill may name: what the CDC reader captures, without its signal table.
pub fn captured_tables(config: &Config) -> Vec<String> {
    config.cdc.tables.iter().filter(|t| *t != cdc_reader::backfill::SIGNAL_TABLE).cloned().collect()
}

/// Runs `stages` (all when empty) and the admin API until shutdown or until a stage fails.
pub async fn run(config: &Config, stages: &[Stage]) -> anyhow::Result<()> {
    let stages: Vec<Stage> = if stages.is_empty() { Stage::ALL.to_vec() } else { stages.to_vec() };
    let token = config.admin_token()?.cloned();
    super::migrate::run(config).await?;
    let metrics = prometheus()?.install_recorder().context("installing the metrics recorder")?;

    let (stop, stopped) = watch::channel(false);
    let shutdown = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    let mut tasks: JoinSet<(String, anyhow::Result<()>)> = JoinSet::new();

    let listener = tokio::net::TcpListener::bind(&config.admin.listen)
        .await
        .with_context(|| format!("binding the admin API to {} ([admin] listen)", config.admin.listen))?;
    let state = AdminState {
        database: super::connect_database(config).await?,
        slot: config.cdc.slot.clone(),
        metrics: Some(metrics),
        graph: super::graph_client(config).ok(),
        kafka: Some(crate::stages::kafka_settings(config)),
        registry_url: Some(config.registry.url.clone()),
        reconcile: crate::stages::reconcile(config).ok(),
        captured_tables: captured_tables(config),
        captured_schema: config.cdc.schema.clone(),
    };
    info!(listen = %config.admin.listen, auth = token.is_some(), "admin api listening");
    let admin_shutdown = shutdown();
    tasks.spawn(async move {
        ("admin-api".to_owned(), admin::serve(listener, state, token, admin_shutdown).await.map_err(Into::into))
    });

    for stage in &stages {
        let task = crate::stages::start(config, *stage, shutdown())?;
        let name = stage.name().to_owned();
        tasks.spawn(async move { (name, task.await) });
    }
    info!(stages = ?stages, "roomsync running; Ctrl-C stops it");

    let outcome = tokio::select! {
        () = shutdown_signal() => {
            info!("shutting down");
            Ok(())
        }
        Some(joined) = tasks.join_next() => match joined {
            Ok((name, Ok(()))) => Err(anyhow::anyhow!("{name} stopped unexpectedly")),
            Ok((name, Err(error))) => Err(error.context(format!("{name} failed"))),
            Err(join) => Err(anyhow::anyhow!("a task panicked: {join}")),
        },
    };
    let _ = stop.send(true);
    while let Some(joined) = tasks.join_next().await {
        if let Ok((name, Err(error))) = joined {
            warn!(task = %name, error = format!("{error:#}"), "task ended with an error while stopping");
        }
    }
    outcome
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            warn!(error = %error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                warn!(error = %error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_to_end_latency_is_exported_as_a_histogram_with_buckets() -> anyhow::Result<()> {
        let recorder = prometheus()?.build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            metrics::histogram!(graph_sink::metrics::END_TO_END_SECONDS, "op" => "create").record(0.3);
        });
        let text = handle.render();
        assert!(text.contains(r#"roomsync_end_to_end_latency_seconds_bucket{op="create",le="0.5"} 1"#), "{text}");
        assert!(text.contains(r#"roomsync_end_to_end_latency_seconds_bucket{op="create",le="0.25"} 0"#), "{text}");
        Ok(())
    }
}
