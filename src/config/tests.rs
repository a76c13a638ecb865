use std::io::Write;

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn file(text: &str) -> tempfile_path::TempPath {
    tempfile_path::TempPath::with(text)
}

/// A file in the temp dir that is removed when dropped (no extra crate needed).
mod tempfile_path {
    use std::path::{Path, PathBuf};

    pub struct TempPath(PathBuf);

    impl TempPath {
        pub fn with(text: &str) -> Self {
            let path = std::env::temp_dir().join(format!("roomsync-config-{}-{}.toml", std::process::id(), rand_id()));
            let mut file = std::fs::File::create(&path).expect("temp file");
            super::Write::write_all(&mut file, text.as_bytes()).expect("write temp file");
            TempPath(path)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn rand_id() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        N.fetch_add(1, Ordering::Relaxed)
    }
}

#[test]
fn defaults_point_at_the_local_stack_and_are_valid() {
    let config = Config::load_with_env(None, env(&[])).expect("defaults are valid");
    assert_eq!(config.kafka.bootstrap_servers, "127.0.0.1:19092");
    assert_eq!(config.cdc.tables.len(), 14, "the booking tables, the mapping tables and the signal table");
    assert_eq!(config.sync.overlap, OverlapPolicy::Trim);
}

#[test]
fn file_values_and_environment_overrides_combine() {
    let f = file("[kafka]\ntopic_prefix = \"kommune\"\npartitions = 6\n[sync]\nhorizon = \"90d\"\n");
    let config = Config::load_with_env(
        Some(f.path()),
        env(&[("ROOMSYNC__KAFKA__PARTITIONS", "12"), ("ROOMSYNC__GRAPH__CLIENT_SECRET", "s3cret"), ("OTHER", "x")]),
    )
    .expect("valid");
    assert_eq!(config.kafka.topic_prefix, "kommune");
    assert_eq!(config.kafka.partitions, 12, "environment wins over the file");
    assert_eq!(config.sync.horizon, Duration::from_secs(90 * 24 * 3600));
    assert_eq!(config.graph.client_secret.as_ref().map(Secret::expose), Some("s3cret"));
    assert!(!format!("{config:?}").contains("s3cret"), "secrets never print");
}

#[test]
fn a_secret_in_the_file_is_refused_with_the_fix() {
    let f = file("[graph]\nclient_secret = \"oops\"\n");
    let err = Config::load_with_env(Some(f.path()), env(&[])).expect_err("refused");
    assert!(err.to_string().contains("ROOMSYNC__GRAPH__CLIENT_SECRET"), "{err}");
}

#[test]
fn secrets_can_come_from_files() {
    let secret = file("from-file\n");
    let f = file(&format!("[admin]\ntoken_file = {:?}\n", secret.path()));
    let config = Config::load_with_env(Some(f.path()), env(&[])).expect("valid");
    assert_eq!(config.admin_token().expect("token").map(Secret::expose), Some("from-file"));
}

#[test]
fn unknown_keys_are_errors() {
    let f = file("[kafka]\nbootstrap = \"x\"\n");
    let err = Config::load_with_env(Some(f.path()), env(&[])).expect_err("unknown key");
    assert!(err.to_string().contains("bootstrap"), "{err}");
}

#[test]
fn invalid_values_say_what_to_fix() {
    let cases = [
        ("[cdc]\nslot = \"Bad-Slot\"\n", "slot"),
        ("[kafka]\ntopic_prefix = \"a b\"\n", "topic_prefix"),
        ("[database]\nurl = \"postgres://u:pw@h/db\"\n", "password"),
        ("[graph]\nmax_concurrent_per_mailbox = 9\n", "max_concurrent_per_mailbox"),
        ("[sync]\nhorizon = \"0s\"\n", "horizon"),
    ];
    for (text, needle) in cases {
        let f = file(text);
        let err = Config::load_with_env(Some(f.path()), env(&[])).expect_err(text);
        assert!(err.to_string().contains(needle), "{text}: {err}");
    }
}

#[test]
fn the_admin_api_refuses_to_run_without_a_token_unless_disabled() {
    let config = Config::load_with_env(None, env(&[])).expect("valid");
    assert!(config.admin_token().is_err());
    let config = Config::load_with_env(None, env(&[("ROOMSYNC__ADMIN__AUTH_DISABLED", "true")])).expect("valid");
    assert!(matches!(config.admin_token(), Ok(None)));
}

#[test]
fn the_example_config_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/roomsync.example.toml");
    Config::load_with_env(Some(Path::new(path)), env(&[])).expect("example config is valid");
}

#[test]
fn the_local_stack_config_is_valid_and_needs_no_token() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/local.toml");
    let config = Config::load_with_env(Some(Path::new(path)), env(&[])).expect("local config is valid");
    assert!(matches!(config.admin_token(), Ok(None)));
    assert!(config.sync.window_past >= Duration::from_secs(300 * 24 * 3600));
    assert_eq!(config.kafka.rejoin_unassigned_after, Some(Duration::from_secs(120)), "one instance: rejoin");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config/roomsync.example.toml");
    let example = Config::load_with_env(Some(Path::new(example)), env(&[])).expect("example config is valid");
    assert_eq!(example.kafka.rejoin_unassigned_after, None, "off unless asked for");
}

#[test]
fn kafka_properties_take_numbers_and_booleans_from_the_file_and_the_environment() {
    let f = file(
        "[kafka.properties]\n\"security.protocol\" = \"SASL_SSL\"\n\"enable.ssl.certificate.verification\" = true\n",
    );
    let config =
        Config::load_with_env(Some(f.path()), env(&[("ROOMSYNC__KAFKA__PROPERTIES__session.timeout.ms", "10000")]))
            .expect("valid");
    let properties = &config.kafka.properties;
    assert_eq!(properties.get("security.protocol").map(String::as_str), Some("SASL_SSL"));
    assert_eq!(properties.get("enable.ssl.certificate.verification").map(String::as_str), Some("true"));
    assert_eq!(properties.get("session.timeout.ms").map(String::as_str), Some("10000"));
    let nested = file("[kafka.properties]\n\"sasl\" = { mechanism = \"PLAIN\" }\n");
    let err = Config::load_with_env(Some(nested.path()), env(&[])).expect_err("a table is no property value");
    assert!(err.to_string().contains("kafka property \"sasl\""), "{err}");
}

/// The sync window has one home (`vocabulary::window`): every stage's own default is roomsync's, so a stage used
/// as a library (its `Config::new`) syncs the same window as `roomsync run`.
#[test]
fn every_stage_defaults_to_the_same_sync_window() {
    let sync = SyncConfig::default();
    let resolver = resolver::WindowConfig::default();
    let kafka = streams::KafkaSettings::new("127.0.0.1:1");
    let graph = graph_client::ClientConfig::new("tenant", "client", graph_client::Secret::new("secret"));
    let connections = streams::Connections::new(kafka, "http://x", tokio_postgres::Config::new());
    let source = graph_source::Config::new(connections.clone(), graph.clone());
    let reconcile = reconcile::Config::new(connections, graph);
    let windows = [
        ("roomsync", sync.window_past, sync.horizon),
        ("resolver", resolver.past, resolver.horizon),
        ("graph-source", source.window_past, source.horizon),
        ("reconcile", reconcile.window_past, reconcile.horizon),
    ];
    for (stage, past, horizon) in windows {
        assert_eq!((past, horizon), (vocabulary::window::DEFAULT_PAST, vocabulary::window::DEFAULT_HORIZON), "{stage}");
    }
}
