//! What the whole-pipeline tests and the pipeline benchmark share (included with `mod support;`, and with
//! `#[path]` from the benchmark).

use roomsync::config::Config;
use testkit::Stack;

/// The configuration `roomsync run` would give the stages of a test pipeline: the test's database, the broker at
/// `bootstrap`, the stack's schema registry, the in-process Graph emulator at `graph` (its base URL, tenant
/// fixtures/emulator/tenant.toml's client), topic prefix, slot and publication `name`, and `extra` settings
/// (as environment overrides) on top.
pub fn pipeline_config(
    database_url: &str,
    bootstrap: &str,
    graph: &str,
    name: &str,
    extra: &[(&str, String)],
) -> anyhow::Result<Config> {
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
    let env = base.into_iter().chain(extra.iter().cloned()).map(|(k, v)| (k.to_owned(), v));
    Ok(Config::load_with_env(None, env)?)
}
