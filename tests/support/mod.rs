//! What the whole-pipeline tests and the pipeline benchmark share (included with `mod support;`, and with
//! `#[path]` from the benchmark). Not every binary uses every part.

#![allow(dead_code)]

use roomsync::config::Config;
use testkit::Stack;

/// The environment overrides (`ROOMSYNC__...`) that configure `roomsync run` for a test pipeline: the test's
/// database, the broker at `bootstrap`, the stack's schema registry, the Graph emulator at `graph` (its base URL,
/// tenant fixtures/emulator/tenant.toml's client), topic prefix, slot and publication `name`, and `extra` settings
/// on top. The in-process stages read them through [`pipeline_config`]; a child `roomsync` process gets them as
/// its environment.
pub fn pipeline_env(
    database_url: &str,
    bootstrap: &str,
    graph: &str,
    name: &str,
    extra: &[(&str, String)],
) -> Vec<(String, String)> {
    let stack = Stack::from_env();
    let base = [
        ("ROOMSYNC__DATABASE__URL", database_url.to_owned()),
        ("ROOMSYNC__KAFKA__BOOTSTRAP_SERVERS", bootstrap.to_owned()),
        ("ROOMSYNC__KAFKA__TOPIC_PREFIX", name.to_owned()),
        ("ROOMSYNC__REGISTRY__URL", stack.registry_url),
        ("ROOMSYNC__GRAPH__BASE_URL", format!("{graph}/v1.0")),
        ("ROOMSYNC__GRAPH__AUTHORITY_URL", graph.to_owned()),
        ("ROOMSYNC__GRAPH__CLIENT_SECRET", "roomsync-local-secret".to_owned()),
        ("ROOMSYNC__CDC__SLOT", name.to_owned()),
        ("ROOMSYNC__CDC__PUBLICATION", name.to_owned()),
    ];
    base.into_iter().chain(extra.iter().cloned()).map(|(k, v)| (k.to_owned(), v)).collect()
}

/// The configuration `roomsync run` would give the stages of a test pipeline ([`pipeline_env`]'s settings).
pub fn pipeline_config(
    database_url: &str,
    bootstrap: &str,
    graph: &str,
    name: &str,
    extra: &[(&str, String)],
) -> anyhow::Result<Config> {
    Ok(Config::load_with_env(None, pipeline_env(database_url, bootstrap, graph, name, extra))?)
}
