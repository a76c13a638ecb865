//! Years of a large municipality's bookings through the cdc-reader and the resolver (#13): the desired state
//! equals the independent oracle's (`testkit::oracle`, plain SQL on the booking tables) after the resolver built
//! its state from years of topics, after a restart with an input buffer far smaller than the topics (the small
//! topics run far ahead of the big ones, transactions are released incomplete and their records arrive late),
//! and after one source transaction larger than that buffer (a season deleted in bulk); a restart emits nothing
//! that did not change.
//!
//! The data set comes from `testkit::municipality`: the small one by default (CI), the full one (about a million
//! reservation rows) with `ROOMSYNC_SCALE=full`.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use chrono::{DateTime, Duration as TimeDelta, Utc};
use testkit::municipality::{self, Activity, Sizes};
use testkit::oracle::{self, Rules, Slot};
use testkit::TestDatabase;
use vocabulary::records::DesiredItem;

use support::{compacted, decode_all, Running};

const SEED: u64 = 20_261_205;

/// The data set, the resolver's input buffer, the changes streamed before the resolver starts and the rows of the
/// bulk transaction.
struct Scale {
    sizes: Sizes,
    buffer: usize,
    steps: usize,
    bulk: u64,
}

fn scale() -> Scale {
    match std::env::var("ROOMSYNC_SCALE").as_deref() {
        Ok("full") => Scale { sizes: Sizes::full(), buffer: 100_000, steps: 400, bulk: 300_000 },
        _ => Scale { sizes: Sizes::small(), buffer: 300, steps: 200, bulk: 1_000 },
    }
}

type Comparable = BTreeMap<(String, String), (String, Slot)>;

fn instant(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// The part of the window both sides agree on for the whole test, whenever each looked: an hour inside its edges.
fn inner_window(config: &resolver::Config) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    let now = Utc::now();
    Ok((
        now - TimeDelta::from_std(config.window.past)? + TimeDelta::hours(1),
        now + TimeDelta::from_std(config.window.horizon)? - TimeDelta::hours(1),
    ))
}

/// What the oracle says the rooms hold, limited to the inner window.
async fn expected(running: &Running) -> Result<Comparable> {
    let (start, end) = inner_window(&running.config)?;
    let rules = Rules { window_start: start, window_end: end, min_piece: running.config.policies.min_piece };
    let calendars = oracle::calendars(&running.client, rules).await?;
    Ok(calendars
        .items
        .into_iter()
        .flat_map(|(mailbox, items)| items.into_iter().map(move |(key, item)| ((mailbox.clone(), key), item)))
        .collect())
}

/// What the desired topic holds (compacted), limited to the inner window.
fn comparable(items: &[DesiredItem], window: (DateTime<Utc>, DateTime<Utc>)) -> Comparable {
    compacted(items)
        .into_iter()
        .filter_map(|(key, item)| {
            let content = item.content.as_ref()?;
            let (start, end) = (instant(content.start), instant(content.end));
            (end > window.0 && start < window.1).then(|| (key, (content.subject.clone(), oracle::slot(start, end))))
        })
        .collect()
}

/// The difference, for the failure message: (missing or different, unexpected).
fn difference(expected: &Comparable, actual: &Comparable) -> String {
    let wrong: Vec<_> = expected
        .iter()
        .filter(|(k, v)| actual.get(*k) != Some(*v))
        .take(5)
        .map(|(k, v)| (k, v, actual.get(k)))
        .collect();
    let extra: Vec<_> = actual.keys().filter(|k| !expected.contains_key(*k)).take(5).collect();
    format!(
        "{} expected, {} in the topic; missing or different (first 5, expected and found): {wrong:?}; unexpected: {extra:?}",
        expected.len(),
        actual.len()
    )
}

/// Every desired record so far.
async fn all_desired(running: &Running) -> Result<Vec<DesiredItem>> {
    let records = testkit::read_to_end(&running.topics.desired(), Duration::from_secs(300)).await?;
    decode_all(records, &running.codec).await
}

/// Renames a future event in a mapped room, twice, and waits until the second record is out: everything
/// committed before it has been evaluated and emitted. (Once the first is out the resolver has caught up, so the
/// second comes after all it emitted on catching up: one record of the first rename can sit in the middle of that.)
/// Returns the item key.
async fn marker(running: &Running, n: u32) -> Result<String> {
    let row = running
        .client
        .query_one(
            "select e.id from bb_event e
               join bb_event_resource r on r.event_id = e.id
               join bb_resource_outlook_item m on m.resource_id = r.resource_id and m.active = 1
              where e.active = 1 and e.from_ > now() + interval '2 days' and e.to_ < now() + interval '90 days'
              order by e.id limit 1",
            &[],
        )
        .await
        .context("a future event in a mapped room")?;
    let id: i32 = row.get(0);
    let key = format!("event:{id}");
    for round in ["a", "b"] {
        let subject = format!("marker {n}{round}");
        running.client.execute("update bb_event set name = $1 where id = $2", &[&subject, &id]).await?;
        testkit::wait_until("the marker's record", Duration::from_secs(900), || async {
            let items = all_desired(running).await?;
            let subject = subject.as_str();
            Ok(items
                .iter()
                .any(|d| d.item_key == key && d.content.as_ref().is_some_and(|c| c.subject == subject))
                .then_some(()))
        })
        .await?;
    }
    Ok(key)
}

/// The desired topic agrees with the oracle.
async fn assert_matches_the_oracle(running: &Running, when: &str) -> Result<()> {
    let expected = expected(running).await?;
    let actual = comparable(&all_desired(running).await?, inner_window(&running.config)?);
    ensure!(!expected.is_empty(), "{when}: the data set puts items in the window");
    ensure!(expected == actual, "{when}: {}", difference(&expected, &actual));
    Ok(())
}

/// Restarts the resolver; once a marker is out, the records emitted since the restart are the marker's only.
async fn restart_and_check(running: &mut Running, n: u32, when: &str) -> Result<()> {
    let before = all_desired(running).await?.len();
    running.restart_resolver().await?;
    let marker_key = marker(running, n).await?;
    let since: Vec<(String, String, vocabulary::records::UpsertOrDelete)> = all_desired(running).await?[before..]
        .iter()
        .filter(|d| d.item_key != marker_key)
        .map(|d| (d.mailbox.clone(), d.item_key.clone(), d.op))
        .take(10)
        .collect();
    assert_matches_the_oracle(running, when).await?;
    ensure!(since.is_empty(), "{when}: the restart emitted records of unchanged items: {since:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn years_of_history_restarts_and_a_bulk_delete_end_with_exactly_the_desired_state() -> Result<()> {
    let Scale { sizes, buffer, steps, bulk } = scale();
    let db = TestDatabase::create().await?;
    let mut client = db.connect().await?;
    migrations::apply(&mut client).await?;
    let summary = municipality::load(&client, &sizes, SEED, Utc::now().date_naive()).await?;

    // The history is in the topics before the resolver starts: the snapshot, then changes streamed in the
    // booking system's write patterns.
    let mut running = Running::cdc_on(db).await?;
    let mut activity = Activity::new(&summary, SEED);
    for _ in 0..steps {
        activity.step(&mut client).await?;
    }
    running.config.max_buffered_records = buffer;
    running.add_resolver();
    marker(&running, 1).await?;
    assert_matches_the_oracle(&running, "built from the topics").await?;

    restart_and_check(&mut running, 2, "after a restart").await?;

    // One source transaction far larger than the buffer: the largest current season deleted (it shows in the
    // calendars) together with the full-table id_string update of bb_allocation.
    let season = summary.current_seasons().max_by_key(|s| s.rows).context("a current season")?;
    let deleted = activity.delete_seasons(&mut client, &[season.id], true).await?;
    ensure!(deleted >= bulk && deleted > buffer as u64, "the bulk transaction ({deleted} rows) is large enough");
    marker(&running, 3).await?;
    assert_matches_the_oracle(&running, "after the bulk delete").await?;

    restart_and_check(&mut running, 4, "after a restart over the bulk delete").await?;
    running.stop().await
}

/// The first start of a whole installation on a large booking database: the resolver runs while the cdc-reader
/// writes a snapshot far larger than the resolver's input buffer, so the snapshot is released in parts, most of
/// it arrives after the first part was applied, and the seasons, organisations and rooms come after the
/// reservations. The resolver decides once the snapshot is whole: the desired state is the oracle's, every item
/// was emitted once, and its health does not call the snapshot's parts incomplete transactions (they are not a
/// fault, and `degraded` on every first start would teach operators to ignore it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_larger_than_the_buffer_read_while_it_is_written_is_decided_once_whole() -> Result<()> {
    let Scale { sizes, buffer, .. } = scale();
    let db = TestDatabase::create().await?;
    let mut client = db.connect().await?;
    migrations::apply(&mut client).await?;
    let summary = municipality::load(&client, &sizes, SEED, Utc::now().date_naive()).await?;
    ensure!(summary.reservation_rows() > buffer as u64 * 4, "the snapshot is far larger than the buffer");

    let running = Running::live_on(db, buffer).await?;
    let marker_key = marker(&running, 1).await?;
    assert_matches_the_oracle(&running, "after the first start").await?;
    let mut emitted: BTreeMap<(String, String), usize> = BTreeMap::new();
    for item in all_desired(&running).await?.iter().filter(|d| d.item_key != marker_key) {
        *emitted.entry((item.mailbox.clone(), item.item_key.clone())).or_default() += 1;
    }
    let repeated: Vec<_> = emitted.iter().filter(|(_, n)| **n > 1).take(10).collect();
    ensure!(repeated.is_empty(), "items emitted more than once on a first start: {repeated:?}");
    let health: Vec<(String, Option<String>)> = running
        .client
        .query("select state, detail from roomsync_stage_health where stage = 'resolver'", &[])
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    ensure!(health.iter().all(|(state, _)| state == "ok"), "the resolver's health after a first start: {health:?}");
    running.stop().await
}
