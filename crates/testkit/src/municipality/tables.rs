//! Writes a generated municipality into the booking tables: empties every table the generator owns, copies
//! the rows in foreign-key order and moves each sequence past the highest id, so rows that tests insert later
//! with the columns' `nextval` defaults do not collide.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use tokio_postgres::Client;

use super::calendar::{clock, opening_hours, Calendar};
use super::catalogue::{Catalogue, Kind};
use super::copy::Copy;
use super::events::{Customer, Event};
use super::names::{self, ACTIVITIES, CITY, DOMAIN, OFFICERS};

/// roomsync's own room-mapping table, created exactly as roomsync's migration does (`create table if not
/// exists`), so the migration finds it in place later.
const MAPPING_TABLE: &str = include_str!("../../../../migrations/0002_resource_outlook_item.sql");

/// Every table the generator fills or empties, children first. `bb_application*` and `bb_block` stay empty:
/// no reservation refers to an application and holds last minutes.
const TABLES: &str = "bb_event_date, bb_event_resource, bb_event, bb_booking_resource, bb_booking, \
         bb_allocation_resource, bb_allocation, bb_application_date, bb_application_resource, \
         bb_application, bb_block, bb_wtemplate_alloc_resource, bb_wtemplate_alloc, \
         bb_season_resource, bb_season_boundary, bb_season, bb_group, bb_organization, \
         bb_resource_outlook_item, bb_building_resource, bb_resource, bb_building, bb_rescategory, \
         bb_activity, phpgw_accounts";

/// `(sequence, table, id column)` of every table with an id sequence.
const SEQUENCES: &[(&str, &str, &str)] = &[
    ("seq_phpgw_accounts", "phpgw_accounts", "account_id"),
    ("seq_bb_activity", "bb_activity", "id"),
    ("seq_bb_rescategory", "bb_rescategory", "id"),
    ("seq_bb_building", "bb_building", "id"),
    ("seq_bb_resource", "bb_resource", "id"),
    ("seq_bb_organization", "bb_organization", "id"),
    ("seq_bb_group", "bb_group", "id"),
    ("seq_bb_season", "bb_season", "id"),
    ("seq_bb_season_boundary", "bb_season_boundary", "id"),
    ("seq_bb_wtemplate_alloc", "bb_wtemplate_alloc", "id"),
    ("seq_bb_application", "bb_application", "id"),
    ("seq_bb_application_date", "bb_application_date", "id"),
    ("seq_bb_allocation", "bb_allocation", "id"),
    ("seq_bb_booking", "bb_booking", "id"),
    ("seq_bb_event", "bb_event", "id"),
    ("seq_bb_event_date", "bb_event_date", "id"),
    ("seq_bb_block", "bb_block", "id"),
];

/// The tables' row counts after the load, by table name.
pub type Counts = BTreeMap<String, u64>;

/// Replaces the content of the booking tables with `catalogue`, `calendar` and `events`, in one transaction.
pub async fn write(client: &Client, catalogue: &Catalogue, calendar: &Calendar, events: &[Event]) -> Result<Counts> {
    client.batch_execute("begin").await?;
    match write_in_transaction(client, catalogue, calendar, events).await {
        Ok(counts) => {
            client.batch_execute("commit").await.context("committing the generated municipality")?;
            // Fresh statistics, so the tests' and roomsync's first queries get sensible plans.
            client.batch_execute(&format!("analyze {TABLES}")).await?;
            Ok(counts)
        }
        Err(error) => {
            let _ = client.batch_execute("rollback").await;
            Err(error)
        }
    }
}

async fn write_in_transaction(
    client: &Client,
    catalogue: &Catalogue,
    calendar: &Calendar,
    events: &[Event],
) -> Result<Counts> {
    client.batch_execute(MAPPING_TABLE).await.context("creating bb_resource_outlook_item")?;
    client.batch_execute(&format!("truncate {TABLES}")).await.context("emptying the booking tables")?;
    let mut counts = Counts::new();
    let mut add = |table: &str, rows: u64| {
        *counts.entry(table.to_owned()).or_default() += rows;
    };
    for (table, rows) in reference_rows(client).await? {
        add(table, rows);
    }
    for (table, rows) in catalogue_rows(client, catalogue).await? {
        add(table, rows);
    }
    for (table, rows) in season_rows(client, catalogue, calendar).await? {
        add(table, rows);
    }
    for (table, rows) in reservation_rows(client, catalogue, calendar).await? {
        add(table, rows);
    }
    for (table, rows) in event_rows(client, catalogue, events).await? {
        add(table, rows);
    }
    reset_sequences(client).await?;
    for table in TABLES.split(", ") {
        counts.entry(table.to_owned()).or_default();
    }
    Ok(counts)
}

/// Officers, activities and resource categories.
async fn reference_rows(client: &Client) -> Result<Vec<(&'static str, u64)>> {
    let mut counts = Vec::new();
    let mut copy = Copy::start(
        client,
        "phpgw_accounts",
        "account_id, account_lid, account_pwd, account_firstname, account_lastname, \
         account_status, account_expires, account_type",
    )
    .await?;
    for (id, login, first, last) in OFFICERS {
        copy.row().int(*id).text(login).text("{SSHA}x").text(first).text(last).text("A").int(-1).text("u").end();
    }
    counts.push(("phpgw_accounts", copy.finish().await?));
    let mut copy = Copy::start(client, "bb_activity", "id, parent_id, name, description, active").await?;
    for (id, parent, name) in ACTIVITIES {
        copy.row().int(*id).opt_int(*parent).text(name).text(name).int(1).end();
    }
    counts.push(("bb_activity", copy.finish().await?));
    let mut copy = Copy::start(client, "bb_rescategory", "id, name, capacity, e_lock, active").await?;
    let categories = ["Idrettshall", "Gymsal", "Møterom", "Kultursal", "Utendørsbane", "Basseng"];
    for (i, name) in categories.iter().enumerate() {
        copy.row().int(i as i64 + 1).text(name).int(1).int(i64::from(i == 2)).int(1).end();
    }
    counts.push(("bb_rescategory", copy.finish().await?));
    Ok(counts)
}

async fn catalogue_rows(client: &Client, catalogue: &Catalogue) -> Result<Vec<(&'static str, u64)>> {
    let mut counts = Vec::new();
    let mut copy = Copy::start(
        client,
        "bb_building",
        "id, active, activity_id, deactivate_calendar, deactivate_application, \
         deactivate_sendmessage, extra_kalendar, name, homepage, location_code, phone, email, \
         street, zip_code, district, city, description_json, opening_hours",
    )
    .await?;
    for b in &catalogue.buildings {
        let closed = b.closed.is_some();
        let email = format!("{}@{DOMAIN}", names::slug(&b.name, '.'));
        let description = format!("{{\"no\": \"<p>{}</p>\"}}", b.name);
        copy.row()
            .int(b.id)
            .flag(!closed)
            .int(b.kind.activity())
            .flag(closed)
            .flag(closed)
            .flag(closed)
            .int(0)
            .text(&b.name)
            .text("")
            .text(&format!("{}-01", 5000 + b.id))
            .text(&b.phone)
            .text(&email)
            .text(&b.street)
            .text(&names::zip_code(b.place))
            .text(b.place)
            .text(CITY)
            .text(&description)
            .text(&opening_text(b.kind))
            .end();
    }
    counts.push(("bb_building", copy.finish().await?));

    let mut copy = Copy::start(
        client,
        "bb_resource",
        "id, active, name, activity_id, sort, rescategory_id, direct_booking, simple_booking, \
         capacity, deactivate_application, hidden_in_frontend, activate_prepayment, \
         deactivate_calendar, deny_application_if_booked",
    )
    .await?;
    for r in &catalogue.resources {
        let retired = r.retired.is_some();
        // Meeting rooms can be booked directly (epoch seconds of 2025-01-01, as in the sample).
        let direct = (!retired && r.usage.rescategory() == 3).then_some(1_735_689_600i64);
        copy.row()
            .int(r.id)
            .flag(!retired)
            .text(&r.name)
            .int(r.usage.activity())
            .int(r.sort)
            .int(r.usage.rescategory())
            .opt_int(direct)
            .opt_int(direct.map(|_| 1))
            .opt_int(r.capacity)
            .flag(retired)
            .flag(retired)
            .int(0)
            .flag(retired)
            .int(0)
            .end();
    }
    counts.push(("bb_resource", copy.finish().await?));

    let mut copy = Copy::start(client, "bb_building_resource", "building_id, resource_id").await?;
    for r in &catalogue.resources {
        for b in std::iter::once(&r.building).chain(&r.shared_with) {
            copy.row().int(catalogue.buildings[*b].id).int(r.id).end();
        }
    }
    counts.push(("bb_building_resource", copy.finish().await?));

    let mut copy =
        Copy::start(client, "bb_resource_outlook_item", "id, resource_id, outlook_item_id, outlook_item_name, active")
            .await?;
    for m in &catalogue.mappings {
        let resource = &catalogue.resources[m.resource];
        copy.row().int(m.id).int(resource.id).text(&m.mailbox).text(&resource.name).flag(m.active).end();
    }
    counts.push(("bb_resource_outlook_item", copy.finish().await?));

    let mut copy = Copy::start(
        client,
        "bb_organization",
        "id, organization_number, active, name, homepage, phone, email, street, zip_code, \
         district, city, activity_id, customer_identifier_type, customer_organization_number, \
         customer_internal, shortname, show_in_portal, in_tax_register",
    )
    .await?;
    for (i, o) in catalogue.organizations.iter().enumerate() {
        let homepage = o.homepage.then(|| format!("https://{}.no", names::slug(&o.name, '-')));
        let phone = format!("9{:02} {:02} {:03}", o.id % 100, (o.id / 100) % 100, o.id % 1000);
        copy.row()
            .int(o.id)
            .text(&o.number)
            .flag(o.dissolved.is_none())
            .text(&o.name)
            .opt_text(homepage.as_deref())
            .text(&phone)
            .text(&o.email())
            .text(&format!("Postboks {}", 10 + o.id % 900))
            .text(&names::zip_code(o.place))
            .text(o.place)
            .text(CITY)
            .int(o.club.map_or(2, |c| c.activity))
            .text("organization_number")
            .text(&o.number)
            .flag(i == 0)
            .opt_text(o.shortname.as_deref())
            .flag(o.portal)
            .flag(o.tax_register)
            .end();
    }
    counts.push(("bb_organization", copy.finish().await?));

    let mut copy = Copy::start(
        client,
        "bb_group",
        "id, active, organization_id, description, name, activity_id, shortname, show_in_portal",
    )
    .await?;
    for g in &catalogue.groups {
        let organization = &catalogue.organizations[g.organization];
        let shortname: String = g.name.chars().take(11).collect();
        copy.row()
            .int(g.id)
            .flag(g.disbanded.is_none())
            .int(organization.id)
            .opt_text((g.id % 3 == 0).then_some(organization.name.as_str()))
            .text(&g.name)
            .int(g.activity)
            .text(&shortname)
            .flag(g.disbanded.is_none() && organization.portal)
            .end();
    }
    counts.push(("bb_group", copy.finish().await?));
    Ok(counts)
}

async fn season_rows(client: &Client, catalogue: &Catalogue, calendar: &Calendar) -> Result<Vec<(&'static str, u64)>> {
    let mut counts = Vec::new();
    let mut copy =
        Copy::start(client, "bb_season", "id, officer_id, active, building_id, name, status, from_, to_").await?;
    for s in &calendar.seasons {
        copy.row()
            .int(s.id)
            .int(s.officer)
            .flag(s.active)
            .int(catalogue.buildings[s.building].id)
            .text(&s.name)
            .text(s.status.as_str())
            .date(s.from)
            .date(s.to)
            .end();
    }
    counts.push(("bb_season", copy.finish().await?));

    let mut copy = Copy::start(client, "bb_season_boundary", "id, season_id, wday, from_, to_").await?;
    let mut id = 0i64;
    for s in &calendar.seasons {
        for wday in 1..=7 {
            if let Some((open, close)) = opening_hours(catalogue.buildings[s.building].kind, wday) {
                id += 1;
                let (open, close) = (clock(open), clock(close));
                copy.row().int(id).int(s.id).int(wday).time(open).time(close).end();
            }
        }
    }
    counts.push(("bb_season_boundary", copy.finish().await?));

    let mut copy = Copy::start(client, "bb_season_resource", "season_id, resource_id").await?;
    for s in &calendar.seasons {
        for r in &s.resources {
            copy.row().int(s.id).int(catalogue.resources[*r].id).end();
        }
    }
    counts.push(("bb_season_resource", copy.finish().await?));

    let mut copy =
        Copy::start(client, "bb_wtemplate_alloc", "id, season_id, organization_id, wday, cost, from_, to_").await?;
    for t in &calendar.templates {
        copy.row()
            .int(t.id)
            .int(calendar.seasons[t.season].id)
            .int(catalogue.organizations[t.organization].id)
            .int(t.wday)
            .money(t.cost)
            .time(t.from)
            .time(t.to)
            .end();
    }
    counts.push(("bb_wtemplate_alloc", copy.finish().await?));

    let mut copy = Copy::start(client, "bb_wtemplate_alloc_resource", "allocation_id, resource_id").await?;
    for t in &calendar.templates {
        for r in &t.resources {
            copy.row().int(t.id).int(catalogue.resources[*r].id).end();
        }
    }
    counts.push(("bb_wtemplate_alloc_resource", copy.finish().await?));
    Ok(counts)
}

async fn reservation_rows(
    client: &Client,
    catalogue: &Catalogue,
    calendar: &Calendar,
) -> Result<Vec<(&'static str, u64)>> {
    let mut counts = Vec::new();
    let mut copy = Copy::start(
        client,
        "bb_allocation",
        "id, id_string, active, skip_bas, building_name, organization_id, from_, to_, cost, \
         season_id, completed, additional_invoice_information",
    )
    .await?;
    for a in &calendar.allocations {
        let template = &calendar.templates[a.template];
        let season = &calendar.seasons[template.season];
        copy.row()
            .int(a.id)
            .text(&a.id.to_string())
            .flag(a.active)
            .int(0)
            .text(&catalogue.buildings[season.building].name)
            .int(catalogue.organizations[template.organization].id)
            .timestamp(a.from)
            .timestamp(a.to)
            .money(template.cost)
            .int(season.id)
            .flag(a.completed)
            .opt_text(a.invoice_note.then_some("Faktureres halvårlig"))
            .end();
        copy.flush_if_full().await?;
    }
    counts.push(("bb_allocation", copy.finish().await?));

    let mut copy = Copy::start(client, "bb_allocation_resource", "allocation_id, resource_id").await?;
    for a in &calendar.allocations {
        for r in &calendar.templates[a.template].resources {
            copy.row().int(a.id).int(catalogue.resources[*r].id).end();
        }
        copy.flush_if_full().await?;
    }
    counts.push(("bb_allocation_resource", copy.finish().await?));

    let mut copy = Copy::start(
        client,
        "bb_booking",
        "id, group_id, from_, to_, building_name, allocation_id, season_id, active, skip_bas, \
         activity_id, completed, cost, reminder, secret",
    )
    .await?;
    for b in &calendar.bookings {
        let allocation = &calendar.allocations[b.allocation];
        let season = &calendar.seasons[calendar.templates[allocation.template].season];
        let group = &catalogue.groups[b.group];
        copy.row()
            .int(b.id)
            .int(group.id)
            .timestamp(b.from)
            .timestamp(b.to)
            .text(&catalogue.buildings[season.building].name)
            .int(allocation.id)
            .int(season.id)
            .flag(b.active)
            .int(0)
            .int(group.activity)
            .flag(b.completed)
            .money(0)
            .int(0)
            .text(&b.secret)
            .end();
        copy.flush_if_full().await?;
    }
    counts.push(("bb_booking", copy.finish().await?));

    let mut copy = Copy::start(client, "bb_booking_resource", "booking_id, resource_id").await?;
    for b in &calendar.bookings {
        let allocation = &calendar.allocations[b.allocation];
        for r in &calendar.templates[allocation.template].resources {
            copy.row().int(b.id).int(catalogue.resources[*r].id).end();
        }
        copy.flush_if_full().await?;
    }
    counts.push(("bb_booking_resource", copy.finish().await?));
    Ok(counts)
}

/// The columns of a `bb_event` row the generator writes (the others keep their defaults or stay NULL).
const EVENT_COLUMNS: &str = "id, id_string, active, skip_bas, activity_id, name, organizer, homepage, description, \
         equipment, from_, to_, cost, building_id, building_name, contact_name, contact_email, \
         contact_phone, completed, access_requested, customer_organization_name, \
         customer_organization_id, customer_identifier_type, customer_organization_number, \
         customer_ssn, reminder, is_public, secret, customer_internal, include_in_list, \
         participant_limit";

async fn event_rows(client: &Client, catalogue: &Catalogue, events: &[Event]) -> Result<Vec<(&'static str, u64)>> {
    let mut counts = Vec::new();
    let mut copy = Copy::start(client, "bb_event", EVENT_COLUMNS).await?;
    for e in events {
        let fields = EventFields::of(catalogue, e);
        let mut row = copy.row();
        row.int(e.id)
            .text(&e.id.to_string())
            .flag(e.active)
            .flag(e.closure)
            .int(e.activity)
            .text(&e.name)
            .text(&e.organizer)
            .opt_text(e.homepage.as_deref())
            .opt_text(e.description.as_deref())
            .opt_text(e.equipment.as_deref())
            .timestamp(e.from)
            .timestamp(e.to)
            .money(e.cost)
            .int(fields.building_id)
            .text(fields.building_name)
            .text(&e.contact_name)
            .text(&e.contact_email)
            .text(&e.contact_phone)
            .flag(e.completed)
            .int(0)
            .opt_text(fields.organization_name)
            .opt_int(fields.organization_id)
            .text(fields.identifier_type)
            .opt_text(fields.organization_number)
            .opt_text(fields.ssn)
            .flag(!e.closure)
            .flag(e.public)
            .text(&e.secret)
            .flag(fields.internal)
            .flag(e.listed)
            .opt_int(e.participant_limit)
            .end();
        copy.flush_if_full().await?;
    }
    counts.push(("bb_event", copy.finish().await?));

    let mut copy = Copy::start(client, "bb_event_resource", "event_id, resource_id").await?;
    for e in events {
        for r in &e.resources {
            copy.row().int(e.id).int(catalogue.resources[*r].id).end();
        }
        copy.flush_if_full().await?;
    }
    counts.push(("bb_event_resource", copy.finish().await?));

    // One date row per event; those saved again later were deleted and inserted anew then: later ids.
    let mut copy = Copy::start(client, "bb_event_date", "id, event_id, from_, to_").await?;
    let in_order = events.iter().filter(|e| !e.saved_again).chain(events.iter().filter(|e| e.saved_again));
    for (i, e) in in_order.enumerate() {
        copy.row().int(i as i64 + 1).int(e.id).timestamp(e.from).timestamp(e.to).end();
        copy.flush_if_full().await?;
    }
    counts.push(("bb_event_date", copy.finish().await?));
    Ok(counts)
}

/// The customer and building columns of an event, as the booking system fills them.
pub struct EventFields<'a> {
    /// `building_id`.
    pub building_id: i32,
    /// `building_name`.
    pub building_name: &'a str,
    /// `customer_organization_name`.
    pub organization_name: Option<&'a str>,
    /// `customer_organization_id`.
    pub organization_id: Option<i32>,
    /// `customer_identifier_type`.
    pub identifier_type: &'static str,
    /// `customer_organization_number`.
    pub organization_number: Option<&'a str>,
    /// `customer_ssn`.
    pub ssn: Option<&'a str>,
    /// `customer_internal`.
    pub internal: bool,
}

impl<'a> EventFields<'a> {
    /// The fields of `event`.
    pub fn of(catalogue: &'a Catalogue, event: &'a Event) -> EventFields<'a> {
        let building = event.resources.first().and_then(|r| catalogue.building_of(*r));
        let (building_id, building_name) = building.map_or((0, ""), |b| (b.id, b.name.as_str()));
        match &event.customer {
            Customer::Organization(o) => {
                let organization = catalogue.organizations.get(*o);
                EventFields {
                    building_id,
                    building_name,
                    organization_name: organization.map(|o| o.name.as_str()),
                    organization_id: organization.map(|o| o.id),
                    identifier_type: "organization_number",
                    organization_number: organization.map(|o| o.number.as_str()),
                    ssn: None,
                    internal: *o == 0,
                }
            }
            Customer::Private(ssn) => EventFields {
                building_id,
                building_name,
                organization_name: None,
                organization_id: None,
                identifier_type: "ssn",
                organization_number: None,
                ssn: Some(ssn.as_str()),
                internal: false,
            },
        }
    }
}

/// A building's opening hours as the free-text column holds them: "Man-fre 16:00-23:00, lør 09:00-21:00".
fn opening_text(kind: Kind) -> String {
    let span = |wday| {
        opening_hours(kind, wday)
            .map(|(open, close)| format!("{}-{}", clock(open).format("%H:%M"), clock(close).format("%H:%M")))
    };
    let mut parts = vec![format!("Man-fre {}", span(1).unwrap_or_default())];
    match (span(6), span(7)) {
        (Some(saturday), Some(sunday)) if saturday == sunday => parts.push(format!("lør-søn {saturday}")),
        (saturday, sunday) => {
            parts.extend(saturday.map(|s| format!("lør {s}")));
            parts.extend(sunday.map(|s| format!("søn {s}")));
        }
    }
    parts.join(", ")
}

async fn reset_sequences(client: &Client) -> Result<()> {
    let mut sql = String::new();
    for (sequence, table, column) in SEQUENCES {
        sql.push_str(&format!(
            "select setval('{sequence}', coalesce((select max({column}) from {table}), 0) + 1, false);\n"
        ));
    }
    sql.push_str(
        "select setval(pg_get_serial_sequence('bb_resource_outlook_item', 'id'),
                       coalesce((select max(id) from bb_resource_outlook_item), 0) + 1, false);",
    );
    client.batch_execute(&sql).await.context("moving the sequences past the generated ids")
}
