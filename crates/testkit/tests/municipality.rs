//! The municipality generator against the local stack's PostgreSQL: the small size loads with the real
//! system's shape, the same seed gives the same database, and the activity writes every kind of change the way
//! docs/booking-schema.md §3 describes, each in one transaction.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: helpers shared by the #[test] fns panic on a failed setup step, as the tests themselves may"
)]

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{ensure, Context, Result};
use chrono::NaiveDate;
use testkit::municipality::{self, Activity, ChangeKind, Sizes, Summary};
use testkit::TestDatabase;
use tokio_postgres::Client;

fn day(text: &str) -> NaiveDate {
    text.parse().expect("a test date")
}

/// `sql` returns one bigint.
async fn number(client: &Client, sql: &str) -> Result<i64> {
    let row = client.query_one(sql, &[]).await.with_context(|| sql.to_owned())?;
    Ok(row.get(0))
}

/// `sql` counts rows that break a rule: it must find none.
async fn none(client: &Client, rule: &str, sql: &str) -> Result<()> {
    let broken = number(client, sql).await?;
    ensure!(broken == 0, "{rule}: {broken} rows break it ({sql})");
    Ok(())
}

/// Rules every generated database keeps, after the load and after any number of activity steps.
async fn check_shape(client: &Client, today: NaiveDate) -> Result<()> {
    let today = today.to_string();
    none(
        client,
        "a booking lies inside its allocation, same season, a group of the allocation's organization",
        "select count(*) from bb_booking b
           left join bb_allocation a on a.id = b.allocation_id
           left join bb_group g on g.id = b.group_id
          where a.id is null or b.from_ < a.from_ or b.to_ > a.to_ or b.from_ >= b.to_
             or b.season_id <> a.season_id or g.organization_id <> a.organization_id",
    )
    .await?;
    none(
        client,
        "a booking is on its allocation's resources",
        "select count(*) from (
           select b.id from bb_booking b
            where array(select resource_id from bb_booking_resource where booking_id = b.id order by 1)
               <> array(select resource_id from bb_allocation_resource where allocation_id = b.allocation_id order by 1)
         ) broken",
    )
    .await?;
    none(
        client,
        "an allocation lies in its season, on resources of the season's building",
        "select count(*) from bb_allocation a join bb_season s on s.id = a.season_id
          where a.from_::date < s.from_ or a.to_::date > s.to_ or a.from_ >= a.to_
             or not exists (select 1 from bb_allocation_resource ar where ar.allocation_id = a.id)
             or exists (select 1 from bb_allocation_resource ar where ar.allocation_id = a.id and not exists
                          (select 1 from bb_building_resource br
                            where br.resource_id = ar.resource_id and br.building_id = s.building_id))",
    )
    .await?;
    none(
        client,
        "reservations copy their building's name",
        "select (select count(*) from bb_allocation a join bb_season s on s.id = a.season_id
                   join bb_building bu on bu.id = s.building_id where a.building_name <> bu.name)
              + (select count(*) from bb_booking b join bb_season s on s.id = b.season_id
                   join bb_building bu on bu.id = s.building_id where b.building_name <> bu.name)
              + (select count(*) from bb_event e left join bb_building bu on bu.id = e.building_id
                  where bu.id is null or e.building_name <> bu.name)",
    )
    .await?;
    none(
        client,
        "every reservation has at least one resource",
        "select (select count(*) from bb_event e where not exists
                   (select 1 from bb_event_resource r where r.event_id = e.id))
              + (select count(*) from bb_booking b where not exists
                   (select 1 from bb_booking_resource r where r.booking_id = b.id))",
    )
    .await?;
    none(
        client,
        "each event has one date row mirroring it",
        "select count(*) from bb_event e
          where (select count(*) from bb_event_date d where d.event_id = e.id and d.from_ = e.from_ and d.to_ = e.to_)
                <> 1
             or (select count(*) from bb_event_date d where d.event_id = e.id) <> 1",
    )
    .await?;
    none(
        client,
        "id_string is the id, secrets are 32 hex digits, flags are 0/1",
        "select (select count(*) from bb_allocation where id_string <> id::text or active not in (0, 1))
              + (select count(*) from bb_event where id_string <> id::text or secret !~ '^[0-9a-f]{32}$'
                  or is_public not in (0, 1))
              + (select count(*) from bb_booking where secret !~ '^[0-9a-f]{32}$' or active not in (0, 1))",
    )
    .await?;
    none(
        client,
        "no reservation starts in the night (so none in a DST gap)",
        "select count(*) from (select from_ from bb_allocation union all select from_ from bb_booking
                                union all select from_ from bb_event) r
          where r.from_::time < '07:00' ",
    )
    .await?;
    none(
        client,
        "two allocations of a season never overlap on a resource",
        "select count(*) from bb_allocation a join bb_allocation_resource ar on ar.allocation_id = a.id
           join bb_allocation_resource br on br.resource_id = ar.resource_id and br.allocation_id > a.id
           join bb_allocation b on b.id = br.allocation_id
          where a.from_ < b.to_ and b.from_ < a.to_",
    )
    .await?;
    none(
        client,
        "an archived season is over",
        &format!("select count(*) from bb_season where status = 'ARCHIVED' and to_ >= '{today}'"),
    )
    .await?;
    none(
        client,
        "nothing is planned for a dissolved club, a disbanded team, a retired room or a closed building",
        &format!(
            "select (select count(*) from bb_allocation a join bb_organization o on o.id = a.organization_id
                      where o.active = 0 and a.to_ >= '{today}')
                  + (select count(*) from bb_booking b join bb_group g on g.id = b.group_id
                      where g.active = 0 and b.to_ >= '{today}')
                  + (select count(*) from (select resource_id, to_ from bb_allocation_resource join bb_allocation
                                             on id = allocation_id
                                           union all select resource_id, to_ from bb_event_resource join bb_event
                                             on id = event_id) r
                       join bb_resource res on res.id = r.resource_id where res.active = 0 and r.to_ >= '{today}')
                  + (select count(*) from bb_season s join bb_building b on b.id = s.building_id
                      where b.active = 0 and s.to_ >= '{today}')"
        ),
    )
    .await?;
    none(
        client,
        "a mapped resource exists",
        "select count(*) from bb_resource_outlook_item m left join bb_resource r on r.id = m.resource_id
          where r.id is null",
    )
    .await?;
    Ok(())
}

/// Counts that must be at least `minimum`, for the properties the shape promises.
async fn check_variety(client: &Client, today: NaiveDate) -> Result<()> {
    let today = today.to_string();
    let wanted = [
        (
            "cancelled allocations in the past",
            format!("select count(*) from bb_allocation where active = 0 and to_ < '{today}'"),
        ),
        (
            "cancelled allocations in the future",
            format!("select count(*) from bb_allocation where active = 0 and from_ > '{today}'"),
        ),
        ("cancelled bookings", "select count(*) from bb_booking where active = 0".to_owned()),
        ("cancelled events in the past", format!("select count(*) from bb_event where active = 0 and to_ < '{today}'")),
        (
            "cancelled events in the future",
            format!("select count(*) from bb_event where active = 0 and from_ > '{today}'"),
        ),
        ("private events", "select count(*) from bb_event where is_public = 0".to_owned()),
        (
            "multi-room events",
            "select count(*) from (select event_id from bb_event_resource group by 1 having count(*) > 1) m".to_owned(),
        ),
        ("archived seasons", "select count(*) from bb_season where status = 'ARCHIVED'".to_owned()),
        (
            "published seasons running or coming",
            format!("select count(*) from bb_season where status = 'PUBLISHED' and to_ >= '{today}'"),
        ),
        ("seasons still to come", format!("select count(*) from bb_season where from_ > '{today}'")),
        ("completed rows", "select count(*) from bb_allocation where completed = 1".to_owned()),
        ("inactive mappings", "select count(*) from bb_resource_outlook_item where active = 0".to_owned()),
        (
            "events saved again (date row ids out of event order)",
            "select count(*) from bb_event_date d where exists
               (select 1 from bb_event_date o where o.event_id > d.event_id and o.id < d.id)"
                .to_owned(),
        ),
    ];
    for (what, sql) in wanted {
        ensure!(number(client, &sql).await? > 0, "no {what} ({sql})");
    }
    Ok(())
}

async fn loaded(seed: u64, today: NaiveDate) -> Result<(TestDatabase, Client, Summary)> {
    let db = TestDatabase::create().await?;
    let client = db.connect().await?;
    let summary = municipality::load(&client, &Sizes::small(), seed, today).await?;
    Ok((db, client, summary))
}

#[tokio::test]
async fn the_small_municipality_loads_with_the_shape_of_the_real_system() -> Result<()> {
    // In December (a season running, the next one published or planned) and in July (between seasons).
    for today in [day("2026-12-05"), day("2026-07-01")] {
        let (_db, client, summary) = loaded(11, today).await?;
        let ranges = [
            ("bb_building", 6, 6),
            ("bb_resource", 30, 30),
            ("bb_resource_outlook_item", 26, 26),
            ("bb_organization", 30, 30),
            ("bb_group", 60, 60),
            ("bb_season", 20, 40),
            ("bb_allocation", 1000, 3000),
            ("bb_allocation_resource", 1000, 3200),
            ("bb_booking", 300, 1500),
            ("bb_booking_resource", 300, 1600),
            ("bb_event", 150, 600),
            ("bb_event_resource", 150, 800),
        ];
        for (table, low, high) in ranges {
            let rows = number(&client, &format!("select count(*) from {table}")).await?;
            ensure!((low..=high).contains(&rows), "{today}: {table} has {rows} rows, expected {low}..={high}");
            ensure!(
                summary.count(table) == rows as u64,
                "{today}: summary says {} rows in {table}",
                summary.count(table)
            );
        }
        ensure!(
            (3000..=10_000).contains(&summary.reservation_rows()),
            "{} reservation rows",
            summary.reservation_rows()
        );
        ensure!(summary.mapped_resource_ids().len() == 24);
        let active_mappings = number(&client, "select count(*) from bb_resource_outlook_item where active = 1").await?;
        ensure!(active_mappings == 24, "{active_mappings} active mappings");
        check_shape(&client, today).await?;
        check_variety(&client, today).await?;

        // Rows a test inserts later with the sequences' defaults do not collide with the generated ones.
        for table in ["bb_allocation", "bb_booking", "bb_event", "bb_event_date", "bb_season"] {
            let fresh =
                number(&client, &format!("select (nextval('seq_{table}') > (select max(id) from {table}))::int::int8"))
                    .await?;
            ensure!(fresh == 1, "seq_{table} is behind {table}");
        }
        let season = summary.largest_season().context("a season")?;
        let rows = number(
            &client,
            &format!(
                "select (select count(*) from bb_allocation where season_id = {id})
                      + (select count(*) from bb_booking where season_id = {id})
                      + (select count(*) from bb_allocation_resource where allocation_id in
                           (select id from bb_allocation where season_id = {id}))
                      + (select count(*) from bb_booking_resource where booking_id in
                           (select id from bb_booking where season_id = {id}))",
                id = season.id
            ),
        )
        .await?;
        ensure!(rows as u64 == season.rows, "season {} has {rows} rows, the summary says {}", season.id, season.rows);
    }
    Ok(())
}

/// Every owned table's content as one checksum per table, plus the sequences' positions.
async fn fingerprint(client: &Client) -> Result<BTreeMap<String, String>> {
    let tables = [
        ("phpgw_accounts", "account_id"),
        ("bb_activity", "id"),
        ("bb_building", "id"),
        ("bb_resource", "id"),
        ("bb_building_resource", "building_id, resource_id"),
        ("bb_resource_outlook_item", "id"),
        ("bb_organization", "id"),
        ("bb_group", "id"),
        ("bb_season", "id"),
        ("bb_season_boundary", "id"),
        ("bb_season_resource", "season_id, resource_id"),
        ("bb_wtemplate_alloc", "id"),
        ("bb_wtemplate_alloc_resource", "allocation_id, resource_id"),
        ("bb_allocation", "id"),
        ("bb_allocation_resource", "allocation_id, resource_id"),
        ("bb_booking", "id"),
        ("bb_booking_resource", "booking_id, resource_id"),
        ("bb_event", "id"),
        ("bb_event_resource", "event_id, resource_id"),
        ("bb_event_date", "id"),
    ];
    let mut sums = BTreeMap::new();
    for (table, order) in tables {
        let sql = format!("select coalesce(md5(string_agg(t::text, ',' order by {order})), '') from {table} t");
        let row = client.query_one(&sql, &[]).await.with_context(|| sql.clone())?;
        sums.insert(table.to_owned(), row.get::<_, String>(0));
    }
    for sequence in ["seq_bb_allocation", "seq_bb_booking", "seq_bb_event", "seq_bb_event_date"] {
        let row = client.query_one(&format!("select last_value::text from {sequence}"), &[]).await?;
        sums.insert(sequence.to_owned(), row.get::<_, String>(0));
    }
    Ok(sums)
}

#[tokio::test]
async fn the_same_seed_gives_the_same_database_and_another_seed_another() -> Result<()> {
    let today = day("2026-12-05");
    let (_a, first, _) = loaded(5, today).await?;
    let (_b, second, _) = loaded(5, today).await?;
    let (_c, third, _) = loaded(6, today).await?;
    let (one, two, three) = (fingerprint(&first).await?, fingerprint(&second).await?, fingerprint(&third).await?);
    ensure!(one == two, "seed 5 twice differs: {one:#?} vs {two:#?}");
    for table in ["bb_allocation", "bb_booking", "bb_event", "bb_event_resource", "bb_organization"] {
        ensure!(one.get(table) != three.get(table), "seeds 5 and 6 give the same {table}");
    }
    Ok(())
}

#[tokio::test]
async fn the_activity_writes_every_kind_of_change_and_deletes_a_season_in_one_go() -> Result<()> {
    let today = day("2026-12-05");
    let (_db, mut client, summary) = loaded(21, today).await?;
    let mut activity = Activity::new(&summary, 21);
    // A failing test may print it: counts, not the tens of thousands of remembered reservations.
    ensure!(format!("{activity:?}").len() < 1000, "{activity:?}");
    let mut seen = BTreeSet::new();
    for _ in 0..200 {
        let change = activity.step(&mut client).await?;
        ensure!(
            change.rows > 0 || change.kind == ChangeKind::BillingRun,
            "{:?} wrote nothing: {}",
            change.kind,
            change.description
        );
        seen.insert(change.kind);
    }
    let all: BTreeSet<ChangeKind> = ChangeKind::ALL.into_iter().collect();
    ensure!(seen == all, "kinds missing: {:?}", all.difference(&seen).collect::<Vec<_>>());
    check_shape(&client, today).await?;

    let (season, rows) = activity.largest_season().context("a season with rows")?;
    let deleted = activity.delete_season(&mut client, season).await?;
    ensure!(deleted == rows, "deleted {deleted} rows of season {season}, expected {rows}");
    let left = number(
        &client,
        &format!(
            "select (select count(*) from bb_allocation where season_id = {season})
                  + (select count(*) from bb_booking where season_id = {season})"
        ),
    )
    .await?;
    ensure!(left == 0, "{left} rows of season {season} left");
    // The activity goes on without the deleted season's rows.
    for _ in 0..30 {
        activity.step(&mut client).await?;
    }
    check_shape(&client, today).await?;
    ensure!(activity.largest_season().is_some_and(|(s, _)| s != season));
    Ok(())
}

#[tokio::test]
async fn the_activity_is_the_same_for_the_same_seed() -> Result<()> {
    let today = day("2026-12-05");
    let mut runs = Vec::new();
    for _ in 0..2 {
        let (_db, mut client, summary) = loaded(8, today).await?;
        let mut activity = Activity::new(&summary, 8);
        let mut log = Vec::new();
        for _ in 0..60 {
            let change = activity.step(&mut client).await?;
            log.push(format!("{:?} {:?} {} {}", change.kind, change.reservations, change.rows, change.description));
        }
        log.push(format!("{:?}", fingerprint(&client).await?));
        runs.push(log);
    }
    ensure!(runs[0] == runs[1], "two runs differ");
    Ok(())
}

/// The statements of the transactions committed since `slot` was read last, as test_decoding prints them
/// (`table public.bb_event: INSERT: ...`), without BEGIN/COMMIT.
async fn transactions(client: &Client, slot: &str) -> Result<Vec<Vec<String>>> {
    let rows = client
        // Without skip-empty-xacts, autovacuum's ANALYZE (catalog rows only) shows up as empty transactions.
        .query(
            "select data from pg_logical_slot_get_changes($1, null, null, 'include-xids', '0', 'skip-empty-xacts', '1')",
            &[&slot],
        )
        .await?;
    let mut transactions = Vec::new();
    let mut current = Vec::new();
    for row in rows {
        let data: String = row.get(0);
        if data.starts_with("BEGIN") {
            current = Vec::new();
        } else if data.starts_with("COMMIT") {
            transactions.push(std::mem::take(&mut current));
        } else {
            // "table public.bb_event: INSERT: id[integer]:7 ..." -> "bb_event INSERT"
            let mut words = data.split_whitespace();
            let table = words.nth(1).unwrap_or_default().trim_start_matches("public.").trim_end_matches(':');
            let op = words.next().unwrap_or_default().trim_end_matches(':');
            current.push(format!("{table} {op}"));
        }
    }
    Ok(transactions)
}

#[tokio::test]
async fn changes_are_written_in_the_booking_systems_own_transactions() -> Result<()> {
    let today = day("2026-12-05");
    let (_db, mut client, summary) = loaded(33, today).await?;
    let slot = testkit::unique_name("municipality");
    client.query_one("select 1 from pg_create_logical_replication_slot($1, 'test_decoding')", &[&slot]).await?;
    let mut activity = Activity::new(&summary, 33);
    let mut checked = BTreeSet::new();
    for _ in 0..200 {
        let change = activity.step(&mut client).await?;
        let mut committed = transactions(&client, &slot).await?;
        // A change that wrote nothing (a billing run with nothing left to bill) decodes to no transaction.
        let expected = usize::from(change.rows > 0);
        ensure!(committed.len() == expected, "{:?} committed {} transactions", change.kind, committed.len());
        let statements = committed.pop().unwrap_or_default();
        let first = statements.first().map(String::as_str);
        let last = statements.last().map(String::as_str);
        match change.kind {
            ChangeKind::NewEvent if change.rows > 0 => {
                ensure!(first == Some("bb_event INSERT"), "a new event starts with its row: {statements:?}");
                ensure!(last == Some("bb_event UPDATE"), "a new event ends with the id_string update: {statements:?}");
                ensure!(statements.contains(&"bb_event_resource INSERT".to_owned()), "{statements:?}");
                ensure!(statements.contains(&"bb_event_date INSERT".to_owned()), "{statements:?}");
            }
            ChangeKind::EditEvent => {
                ensure!(first == Some("bb_event UPDATE"), "a save updates the row first: {statements:?}");
                let rewrite = ["bb_event_resource DELETE", "bb_event_resource INSERT", "bb_event_date DELETE"];
                for statement in rewrite {
                    ensure!(statements.contains(&statement.to_owned()), "a save rewrites links: {statements:?}");
                }
            }
            ChangeKind::AllocationIdStrings => {
                let allocations = number(&client, "select count(*) from bb_allocation").await?;
                ensure!(statements.len() as i64 == allocations, "every allocation updated once");
            }
            _ => {}
        }
        checked.insert(change.kind);
    }
    ensure!(checked.contains(&ChangeKind::EditEvent) && checked.contains(&ChangeKind::AllocationIdStrings));

    let (season, rows) = activity.largest_season().context("a season")?;
    activity.delete_season(&mut client, season).await?;
    let committed = transactions(&client, &slot).await?;
    ensure!(committed.len() == 1, "a season is deleted in one transaction, not {}", committed.len());
    let deletes = committed.iter().flatten().filter(|s| s.ends_with("DELETE")).count() as u64;
    ensure!(deletes == rows, "{deletes} deletes in the transaction, {rows} rows in the season");
    client.query_one("select 1 from pg_drop_replication_slot($1)", &[&slot]).await?;
    Ok(())
}
