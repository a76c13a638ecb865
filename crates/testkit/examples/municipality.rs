//! Loads a generated municipality into a fresh clone of `bb_template` and prints its row counts and timings as
//! JSON; the database is dropped again at the end.
//!
//! ```sh
//! eval "$(scripts/stack env)"
//! cargo run --release -p testkit --example municipality -- --full --seed 7 --today 2026-12-05 --steps 200
//! ```
//!
//! `--small` (the default) or `--full` picks the sizes; `--steps N` runs N activity steps after the load;
//! `--everyday` leaves the heavy kinds (full-table updates, billing runs) out of them; `--into URL` loads into
//! that database instead (replacing its booking tables' content) and keeps it.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use chrono::NaiveDate;
use testkit::municipality::{self, Activity, Mix, Sizes};
use testkit::TestDatabase;

#[tokio::main]
async fn main() -> Result<()> {
    let mut sizes = Sizes::small();
    let mut label = "small";
    let mut seed = 1u64;
    let mut today = NaiveDate::from_ymd_opt(2026, 12, 5).context("date")?;
    let mut steps = 0usize;
    let mut into = None;
    let mut mix = Mix::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--full" => (sizes, label) = (Sizes::full(), "full"),
            "--small" => (sizes, label) = (Sizes::small(), "small"),
            "--seed" => seed = args.next().context("--seed N")?.parse()?,
            "--today" => today = args.next().context("--today YYYY-MM-DD")?.parse()?,
            "--steps" => steps = args.next().context("--steps N")?.parse()?,
            "--into" => into = Some(args.next().context("--into URL")?),
            "--everyday" => mix = Mix::everyday(),
            other => {
                bail!("unknown argument {other}: --small | --full, --seed N, --today YYYY-MM-DD, --steps N, --everyday, --into URL")
            }
        }
    }
    // A database of its own (dropped at the end) unless one is given.
    let (_db, mut client) = match into {
        Some(url) => {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            (None, client)
        }
        None => {
            let db = TestDatabase::create().await?;
            let client = db.connect().await?;
            (Some(db), client)
        }
    };
    let started = Instant::now();
    let summary = municipality::load(&client, &sizes, seed, today).await?;
    let load_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut kinds = BTreeMap::new();
    let mut activity = Activity::new(&summary, seed).with_mix(mix);
    for _ in 0..steps {
        let change = activity.step(&mut client).await?;
        *kinds.entry(format!("{:?}", change.kind)).or_insert(0u64) += 1;
    }
    let step_seconds = started.elapsed().as_secs_f64();
    let largest = summary.largest_season();
    let report = serde_json::json!({
        "sizes": label,
        "seed": seed,
        "today": today.to_string(),
        "load_seconds": (load_seconds * 100.0).round() / 100.0,
        "reservation_rows": summary.reservation_rows(),
        "counts": summary.counts,
        "mapped_rooms": summary.mapped_resource_ids().len(),
        "seasons": summary.seasons.len(),
        "current_seasons": summary.current_seasons().count(),
        "largest_season": largest.map(|s| serde_json::json!({"id": s.id, "name": s.name, "rows": s.rows})),
        "steps": steps,
        "step_seconds": (step_seconds * 100.0).round() / 100.0,
        "step_kinds": kinds,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
