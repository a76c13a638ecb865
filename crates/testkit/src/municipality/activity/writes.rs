//! The statements the booking system sends for each kind of change (docs/booking-schema.md §3), each function one
//! transaction. Every function returns the rows it inserted, updated or deleted.

use anyhow::{Context, Result};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use tokio_postgres::{Client, Transaction};
use vocabulary::ReservationKind;

use super::super::catalogue::Catalogue;
use super::super::events::Event;
use super::super::tables::EventFields;

/// Every column of bb_event but `id`, as the legacy ORM's save lists them.
const EVENT_TABLE: &str = "id_string, active, skip_bas, activity_id, name, organizer, homepage, description, \
     equipment, from_, to_, cost, building_id, building_name, contact_name, contact_email, contact_phone, completed, \
     access_requested, customer_organization_name, customer_organization_id, customer_identifier_type, \
     customer_organization_number, customer_ssn, application_id, reminder, is_public, secret, customer_internal, \
     sms_total, include_in_list, participant_limit, additional_invoice_information";

/// Every column of bb_booking but `id`.
const BOOKING_TABLE: &str = "group_id, from_, to_, building_name, allocation_id, season_id, active, skip_bas, \
     activity_id, completed, cost, application_id, reminder, secret, sms_total";

/// `update {table} set <every column> where id = $1` as the legacy ORM's save writes it (§3.1): the columns in
/// `params` from `$2` on in that order, every other column set to itself (the same value; a TOASTed one stays
/// unchanged in the WAL, which is why the text columns a form shows are among `params`).
pub fn save_sql(table: &str, columns: &str, params: &[&str]) -> String {
    let assignments: Vec<String> = columns
        .split(", ")
        .map(|c| match params.iter().position(|p| *p == c) {
            Some(i) => format!("{c} = ${}", i + 2),
            None => format!("{c} = {c}"),
        })
        .collect();
    format!("update {table} set {} where id = $1", assignments.join(", "))
}

/// The link table and its key column of a reservation kind.
fn links(kind: ReservationKind) -> (&'static str, &'static str) {
    match kind {
        ReservationKind::Event => ("bb_event_resource", "event_id"),
        ReservationKind::Booking => ("bb_booking_resource", "booking_id"),
        ReservationKind::Allocation => ("bb_allocation_resource", "allocation_id"),
    }
}

/// Inserts a reservation's links, one INSERT per resource as the ORM does.
async fn link(tx: &Transaction<'_>, kind: ReservationKind, id: i32, resources: &[i32]) -> Result<u64> {
    let (table, column) = links(kind);
    let mut rows = 0;
    for resource in resources {
        rows += tx
            .execute(&format!("insert into {table} ({column}, resource_id) values ($1, $2)"), &[&id, resource])
            .await?;
    }
    Ok(rows)
}

/// Deletes a reservation's links and inserts them again (§3.1).
async fn relink(tx: &Transaction<'_>, kind: ReservationKind, id: i32, resources: &[i32]) -> Result<u64> {
    let (table, column) = links(kind);
    let deleted = tx.execute(&format!("delete from {table} where {column} = $1"), &[&id]).await?;
    Ok(deleted + link(tx, kind, id, resources).await?)
}

/// Deletes an event's date row and inserts it again: a new id every save (§2 bb_event_date).
async fn redate(tx: &Transaction<'_>, id: i32, from: NaiveDateTime, to: NaiveDateTime) -> Result<u64> {
    let deleted = tx.execute("delete from bb_event_date where event_id = $1", &[&id]).await?;
    let inserted =
        tx.execute("insert into bb_event_date (event_id, from_, to_) values ($1, $2, $3)", &[&id, &from, &to]).await?;
    Ok(deleted + inserted)
}

/// A new event: INSERT with `id_string` at its default, its links, its date row, then `id_string = id` (§3.4).
/// Returns the new id and the rows written.
pub async fn insert_event(client: &mut Client, catalogue: &Catalogue, event: &Event) -> Result<(i32, u64)> {
    let fields = EventFields::of(catalogue, event);
    let resources: Vec<i32> =
        event.resources.iter().filter_map(|r| catalogue.resources.get(*r)).map(|r| r.id).collect();
    let cost = format!("{}.{:02}", event.cost / 100, event.cost % 100);
    let tx = client.transaction().await?;
    let id: i32 = tx
        .query_one(
            "insert into bb_event (active, skip_bas, activity_id, name, organizer, homepage, description, equipment, \
             from_, to_, cost, building_id, building_name, contact_name, contact_email, contact_phone, completed, \
             access_requested, customer_organization_name, customer_organization_id, customer_identifier_type, \
             customer_organization_number, customer_ssn, reminder, is_public, secret, customer_internal, \
             include_in_list, participant_limit) \
             values (1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10::text::numeric, $11, $12, $13, $14, $15, 0, 0, \
             $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26) returning id",
            &[
                &i16::from(event.closure),
                &event.activity,
                &event.name,
                &event.organizer,
                &event.homepage,
                &event.description,
                &event.equipment,
                &event.from,
                &event.to,
                &cost,
                &fields.building_id,
                &fields.building_name,
                &event.contact_name,
                &event.contact_email,
                &event.contact_phone,
                &fields.organization_name,
                &fields.organization_id,
                &fields.identifier_type,
                &fields.organization_number,
                &fields.ssn,
                &i32::from(!event.closure),
                &i32::from(event.public),
                &event.secret,
                &i32::from(fields.internal),
                &i32::from(event.listed),
                &event.participant_limit,
            ],
        )
        .await
        .context("inserting an event")?
        .get(0);
    let mut rows = 1 + link(&tx, ReservationKind::Event, id, &resources).await?;
    rows += tx
        .execute("insert into bb_event_date (event_id, from_, to_) values ($1, $2, $3)", &[&id, &event.from, &event.to])
        .await?;
    rows += tx.execute("update bb_event set id_string = cast(id as varchar) where id = $1", &[&id]).await?;
    tx.commit().await?;
    Ok((id, rows))
}

/// What an event save writes; `None` keeps the stored value.
#[derive(Debug, Clone)]
pub struct EventSave {
    /// `active`.
    pub active: bool,
    /// A new `name`.
    pub name: Option<String>,
    /// A new `description` (which may be none).
    pub description: Option<Option<String>>,
    /// A new `contact_phone`.
    pub contact_phone: Option<String>,
    /// `from_`.
    pub from: NaiveDateTime,
    /// `to_`.
    pub to: NaiveDateTime,
    /// Resource indexes; the first one's building is the event's.
    pub resources: Vec<usize>,
}

/// The legacy ORM's save of event `id`: UPDATE every column, rewrite the links and the date row (§3.1).
pub async fn save_event(client: &mut Client, catalogue: &Catalogue, id: i32, save: &EventSave) -> Result<u64> {
    let building = save.resources.first().and_then(|r| catalogue.building_of(*r));
    let (building_id, building_name) = building.map_or((0, ""), |b| (b.id, b.name.as_str()));
    let resources: Vec<i32> = save.resources.iter().filter_map(|r| catalogue.resources.get(*r)).map(|r| r.id).collect();
    let tx = client.transaction().await?;
    // The form posts back what it showed: the stored text values, changed where the user changed them.
    let row = tx
        .query_one(
            "select name, description, equipment, contact_phone, additional_invoice_information \
             from bb_event where id = $1 for update",
            &[&id],
        )
        .await
        .with_context(|| format!("reading event {id}"))?;
    let name: Option<String> = save.name.clone().or_else(|| row.get(0));
    let description: Option<String> = save.description.clone().unwrap_or_else(|| row.get(1));
    let equipment: Option<String> = row.get(2);
    let phone: String = save.contact_phone.clone().unwrap_or_else(|| row.get(3));
    let invoice: Option<String> = row.get(4);
    let params = [
        "active",
        "name",
        "description",
        "equipment",
        "from_",
        "to_",
        "building_id",
        "building_name",
        "contact_phone",
        "additional_invoice_information",
    ];
    let mut rows = tx
        .execute(
            &save_sql("bb_event", EVENT_TABLE, &params),
            &[
                &id,
                &i32::from(save.active),
                &name,
                &description,
                &equipment,
                &save.from,
                &save.to,
                &building_id,
                &building_name,
                &phone,
                &invoice,
            ],
        )
        .await?;
    rows += relink(&tx, ReservationKind::Event, id, &resources).await?;
    rows += redate(&tx, id, save.from, save.to).await?;
    tx.commit().await?;
    Ok(rows)
}

/// What a booking save writes.
#[derive(Debug, Clone)]
pub struct BookingSave {
    /// A new `(group_id, activity_id)`; `None` keeps the stored ones.
    pub group: Option<(i32, i32)>,
    /// `allocation_id`.
    pub allocation: i32,
    /// `from_`.
    pub from: NaiveDateTime,
    /// `to_`.
    pub to: NaiveDateTime,
    /// `active`.
    pub active: bool,
    /// Resource ids.
    pub resources: Vec<i32>,
}

/// The legacy ORM's save of booking `id`: UPDATE every column, rewrite the links (§3.1).
pub async fn save_booking(client: &mut Client, id: i32, save: &BookingSave) -> Result<u64> {
    let tx = client.transaction().await?;
    let row = tx
        .query_one("select group_id, activity_id from bb_booking where id = $1 for update", &[&id])
        .await
        .with_context(|| format!("reading booking {id}"))?;
    let (group, activity): (i32, i32) = save.group.unwrap_or_else(|| (row.get(0), row.get(1)));
    let sql =
        save_sql("bb_booking", BOOKING_TABLE, &["group_id", "activity_id", "from_", "to_", "allocation_id", "active"]);
    let active = i32::from(save.active);
    let mut rows = tx.execute(&sql, &[&id, &group, &activity, &save.from, &save.to, &save.allocation, &active]).await?;
    rows += relink(&tx, ReservationKind::Booking, id, &save.resources).await?;
    tx.commit().await?;
    Ok(rows)
}

/// A new booking and its links. Returns the new id and the rows written.
pub async fn insert_booking(
    client: &mut Client,
    booking: &BookingSave,
    building_name: &str,
    season: i32,
    secret: &str,
) -> Result<(i32, u64)> {
    let (group, activity) = booking.group.unwrap_or_default();
    let tx = client.transaction().await?;
    let id: i32 = tx
        .query_one(
            "insert into bb_booking (group_id, from_, to_, building_name, allocation_id, season_id, active, skip_bas, \
             activity_id, completed, cost, reminder, secret) \
             values ($1, $2, $3, $4, $5, $6, $7, 0, $8, 0, 0, 0, $9) returning id",
            &[
                &group,
                &booking.from,
                &booking.to,
                &building_name,
                &booking.allocation,
                &season,
                &i32::from(booking.active),
                &activity,
                &secret,
            ],
        )
        .await
        .context("inserting a booking")?
        .get(0);
    let rows = 1 + link(&tx, ReservationKind::Booking, id, &booking.resources).await?;
    tx.commit().await?;
    Ok((id, rows))
}

/// One `UPDATE ... SET active` (an application rejected or accepted again: `deactivateAssociation`,
/// `set_active`).
pub async fn set_active(client: &mut Client, kind: ReservationKind, id: i32, active: bool) -> Result<u64> {
    let sql = format!("update {} set active = $2 where id = $1", kind.table());
    Ok(client.execute(&sql, &[&id, &i32::from(active)]).await?)
}

/// An allocation cancelled with its active bookings, or reactivated alone.
pub async fn set_allocation_active(client: &mut Client, id: i32, active: bool) -> Result<u64> {
    let tx = client.transaction().await?;
    let mut rows = tx.execute("update bb_allocation set active = $2 where id = $1", &[&id, &i32::from(active)]).await?;
    if !active {
        rows += tx.execute("update bb_booking set active = 0 where allocation_id = $1 and active = 1", &[&id]).await?;
    }
    tx.commit().await?;
    Ok(rows)
}

/// `update bb_allocation set id_string = cast(id as varchar)` without WHERE (§3.2).
pub async fn allocation_id_strings(client: &mut Client) -> Result<u64> {
    Ok(client.execute("update bb_allocation set id_string = cast(id as varchar)", &[]).await?)
}

/// The billing cron (§3.3): `completed = 1` on up to 1000 active rows per table that ended before `today`.
pub async fn billing_run(client: &mut Client, today: NaiveDate) -> Result<u64> {
    let cutoff = today.and_time(NaiveTime::MIN);
    let tx = client.transaction().await?;
    let mut rows = 0;
    for table in ["bb_event", "bb_booking", "bb_allocation"] {
        let sql = format!(
            "update {table} set completed = 1 where id in (select id from {table} \
             where completed = 0 and active = 1 and to_ < $1 order by id limit 1000)"
        );
        rows += tx.execute(&sql, &[&cutoff]).await?;
    }
    tx.commit().await?;
    Ok(rows)
}

/// Deletes the bookings and allocations of `seasons`, links first, and with `renumber` runs the full-table
/// `id_string` update of bb_allocation, all in one transaction; returns the rows deleted or updated.
pub async fn delete_seasons(client: &mut Client, seasons: &[i32], renumber: bool) -> Result<u64> {
    let tx = client.transaction().await?;
    let mut rows = 0;
    if renumber {
        rows += tx.execute("update bb_allocation set id_string = cast(id as varchar)", &[]).await?;
    }
    rows += tx
        .execute(
            "delete from bb_booking_resource where booking_id in (select id from bb_booking where season_id = any($1))",
            &[&seasons],
        )
        .await?;
    rows += tx.execute("delete from bb_booking where season_id = any($1)", &[&seasons]).await?;
    // A booking of another season pointing into these (the generator makes none) keeps its row.
    tx.execute(
        "update bb_booking set allocation_id = null \
         where allocation_id in (select id from bb_allocation where season_id = any($1))",
        &[&seasons],
    )
    .await?;
    rows += tx
        .execute(
            "delete from bb_allocation_resource \
             where allocation_id in (select id from bb_allocation where season_id = any($1))",
            &[&seasons],
        )
        .await?;
    rows += tx.execute("delete from bb_allocation where season_id = any($1)", &[&seasons]).await?;
    tx.commit().await.with_context(|| format!("deleting seasons {seasons:?}"))?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_save_sets_every_column_and_numbers_the_changed_ones() {
        let sql = save_sql("bb_booking", "group_id, from_, cost", &["from_", "group_id"]);
        assert_eq!(sql, "update bb_booking set group_id = $3, from_ = $2, cost = cost where id = $1");
    }

    #[test]
    fn a_save_lists_every_column_of_the_table() {
        assert_eq!(EVENT_TABLE.split(", ").count(), 33);
        assert_eq!(BOOKING_TABLE.split(", ").count(), 15);
    }
}
