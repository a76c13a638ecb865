//! The `roomsync` binary's commands against a real database.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: helpers shared by the #[test] fns panic on a failed setup step, as the tests themselves may"
)]

use std::process::{Command, Output};

use testkit::TestDatabase;

fn roomsync(db: &TestDatabase, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_roomsync"))
        .args(args)
        .env("ROOMSYNC__DATABASE__URL", db.url())
        // Slot names are cluster-wide: the default one may belong to a local pipeline on the same server.
        .env("ROOMSYNC__CDC__SLOT", db.name())
        .env("ROOMSYNC__GRAPH__CLIENT_SECRET", "cli-test-secret")
        .env("RUST_LOG", "warn")
        .output()
        .expect("the roomsync binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn migrate_then_map_list_and_disable_a_room() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    let migrate = roomsync(&db, &["migrate"]);
    assert!(migrate.status.success(), "{}", stderr(&migrate));

    let add = roomsync(&db, &["mappings", "add", "--resource", "4", "--mailbox", "storsalen@fjordvik.kommune.no"]);
    assert!(add.status.success(), "{}", stderr(&add));
    let list = roomsync(&db, &["mappings", "list"]);
    let listed = stdout(&list);
    assert!(listed.contains("Storsalen") && listed.contains("storsalen@fjordvik.kommune.no"), "{listed}");
    assert!(listed.contains("active"), "{listed}");

    let disable = roomsync(&db, &["mappings", "disable", "--resource", "4"]);
    assert!(disable.status.success(), "{}", stderr(&disable));
    assert!(stdout(&roomsync(&db, &["mappings", "list"])).contains("inactive"));

    let unknown = roomsync(&db, &["mappings", "add", "--resource", "999", "--mailbox", "x@y.no"]);
    assert!(!unknown.status.success());
    assert!(stderr(&unknown).contains("resource 999 does not exist"), "{}", stderr(&unknown));
    Ok(())
}

#[tokio::test]
async fn status_reports_rooms_items_and_conflicts() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    assert!(roomsync(&db, &["migrate"]).status.success());
    assert!(roomsync(&db, &["mappings", "add", "--resource", "1", "--mailbox", "hall-a@fjordvik.kommune.no"])
        .status
        .success());
    let text = roomsync(&db, &["status"]);
    assert!(text.status.success(), "{}", stderr(&text));
    let text = stdout(&text);
    assert!(text.contains(&format!("cdc slot {}: not created yet", db.name())), "{text}");
    assert!(text.contains("hall-a@fjordvik.kommune.no"), "{text}");
    let json = stdout(&roomsync(&db, &["status", "--json"]));
    let parsed: serde_json::Value = serde_json::from_str(&json)?;
    assert_eq!(parsed["rooms"][0]["resource_id"], 1);
    assert_eq!(parsed["open_conflicts"], 0);
    Ok(())
}

#[tokio::test]
async fn retry_with_nothing_parked_says_so_and_changes_nothing() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    assert!(roomsync(&db, &["migrate"]).status.success());
    let retry = roomsync(&db, &["retry", "--dry-run", "--room", "hall-a@fjordvik.kommune.no"]);
    assert!(retry.status.success(), "{}", stderr(&retry));
    assert_eq!(stdout(&retry), "0 parked items, 0 retried (dry run: nothing changed)\n");
    Ok(())
}

#[tokio::test]
async fn resolving_an_unknown_conflict_fails_with_a_message() -> anyhow::Result<()> {
    let db = TestDatabase::create().await?;
    assert!(roomsync(&db, &["migrate"]).status.success());
    let list = roomsync(&db, &["conflicts", "list"]);
    assert!(list.status.success());
    assert!(stdout(&list).is_empty());
    let resolve = roomsync(&db, &["conflicts", "resolve", "42"]);
    assert!(!resolve.status.success());
    assert!(stderr(&resolve).contains("no unresolved conflict with id 42"), "{}", stderr(&resolve));
    Ok(())
}

#[tokio::test]
async fn check_config_redacts_secrets_and_bad_config_says_what_to_fix() -> anyhow::Result<()> {
    let db = TestDatabase::create_empty().await?;
    let shown = roomsync(&db, &["check-config"]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    assert!(!stdout(&shown).contains("cli-test-secret"));
    assert!(stdout(&shown).contains("[redacted]"));
    let bad = Command::new(env!("CARGO_BIN_EXE_roomsync"))
        .args(["check-config"])
        .env("ROOMSYNC__CDC__SLOT", "Bad-Slot")
        .output()?;
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("[cdc] slot"), "{}", stderr(&bad));
    Ok(())
}
