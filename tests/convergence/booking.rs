//! The booking system's side of the workload: SQL shaped like PorticoEstate's own writes
//! (docs/booking-schema.md §3): INSERT then `id_string` UPDATE, saves that UPDATE every column and rewrite the
//! resource links and event dates in one transaction, soft cancellation (`active = 0`, both through a save and
//! through the REST path's single-column UPDATE, which leaves a TOASTed description unchanged in the WAL), hard
//! deletion children first, reactivation, season status changes, the full-table `id_string` UPDATE, the billing
//! cron's `completed = 1`, and the upstream link-deleting bug.
//!
//! Invariant: every action commits in one transaction or not at all (a dropped connection mid-action is retried
//! on a new connection), so the final tables are exactly the sum of the committed actions.

use chrono::{Days, Duration as TimeDelta, NaiveDateTime};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use tokio_postgres::{Client, NoTls, Transaction};

use super::workload::{pick_slot, series_across_spring_change, subject, History, Kind, Room, ROOMS, SEASONS};

/// A reservation the generator created and may act on again.
#[derive(Debug, Clone)]
pub struct Reservation {
    /// Level.
    pub kind: Kind,
    /// Row id.
    pub id: i32,
    /// Linked resources.
    pub resources: Vec<i32>,
    /// Local start.
    pub from: NaiveDateTime,
    /// Local end.
    pub to: NaiveDateTime,
    /// `active`.
    pub active: bool,
}

/// Drives the booking tables.
pub struct BookingSystem {
    url: String,
    client: Option<Client>,
    /// What exists (hard-deleted rows are removed).
    pub reservations: Vec<Reservation>,
    counter: usize,
}

/// The generator's connections carry this name, so the fault injector spares them when it drops roomsync's.
pub const APPLICATION_NAME: &str = "roomsync_chaos_generator";

fn rooms_of(rng: &mut StdRng, same_building: bool) -> Vec<Room> {
    let first = ROOMS[rng.gen_range(0..ROOMS.len())];
    if rng.gen_bool(0.8) {
        return vec![first];
    }
    let others: Vec<Room> = ROOMS
        .iter()
        .copied()
        .filter(|r| r.resource != first.resource && (!same_building || r.building == first.building))
        .collect();
    match others.choose(rng) {
        Some(second) => vec![first, *second],
        None => vec![first],
    }
}

async fn relink(tx: &Transaction<'_>, kind: Kind, id: i32, resources: &[i32]) -> Result<(), tokio_postgres::Error> {
    let (table, column) = match kind {
        Kind::Event => ("bb_event_resource", "event_id"),
        Kind::Booking => ("bb_booking_resource", "booking_id"),
        Kind::Allocation => ("bb_allocation_resource", "allocation_id"),
    };
    tx.execute(&format!("delete from {table} where {column} = $1"), &[&id]).await?;
    for resource in resources {
        tx.execute(&format!("insert into {table} ({column}, resource_id) values ($1, $2)"), &[&id, resource]).await?;
    }
    Ok(())
}

async fn redate(
    tx: &Transaction<'_>,
    id: i32,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Result<(), tokio_postgres::Error> {
    tx.execute("delete from bb_event_date where event_id = $1", &[&id]).await?;
    tx.execute("insert into bb_event_date (event_id, from_, to_) values ($1, $2, $3)", &[&id, &from, &to]).await?;
    Ok(())
}

fn table(kind: Kind) -> &'static str {
    match kind {
        Kind::Event => "bb_event",
        Kind::Booking => "bb_booking",
        Kind::Allocation => "bb_allocation",
    }
}

impl BookingSystem {
    /// A generator on `database_url`.
    pub fn new(database_url: &str) -> Self {
        let separator = if database_url.contains('?') { '&' } else { '?' };
        let url = format!("{database_url}{separator}application_name={APPLICATION_NAME}");
        BookingSystem { url, client: None, reservations: Vec::new(), counter: 0 }
    }

    pub async fn client(&mut self) -> anyhow::Result<&mut Client> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            let (client, connection) = tokio_postgres::connect(&self.url, NoTls).await?;
            tokio::spawn(connection);
            self.client = Some(client);
        }
        self.client.as_mut().ok_or_else(|| anyhow::anyhow!("no connection"))
    }

    /// One random booking-system action; returns a description for the log.
    pub async fn act(&mut self, rng: &mut StdRng, history: &mut History) -> anyhow::Result<String> {
        self.counter += 1;
        let roll = rng.gen_range(0..100);
        let pick = |kind: Option<Kind>, rng: &mut StdRng| {
            let candidates: Vec<usize> = (0..self.reservations.len())
                .filter(|i| kind.is_none_or(|k| self.reservations.get(*i).is_some_and(|r| r.kind == k)))
                .collect();
            candidates.choose(rng).copied()
        };
        let action = match roll {
            0..=19 => Action::NewEvent,
            20..=31 => Action::NewAllocations,
            32..=43 => Action::NewBooking,
            44..=57 => pick(None, rng).map_or(Action::NewEvent, Action::Save),
            58..=62 => pick(None, rng).map_or(Action::NewEvent, Action::Rewrite),
            63..=74 => pick(None, rng).map_or(Action::NewEvent, Action::ToggleActive),
            75..=81 => pick(None, rng).map_or(Action::NewEvent, Action::HardDelete),
            82..=88 => Action::Season,
            89..=92 => Action::FullTableIdString,
            93..=95 => Action::Completed,
            96..=97 => pick(Some(Kind::Event), rng).map_or(Action::NewEvent, Action::UpstreamLinkBug),
            _ => Action::NewEvent,
        };
        // A connection dropped by the fault injector fails the transaction: it is retried on a new one.
        let mut attempt = 0;
        loop {
            match self.apply(&action, rng, history).await {
                Ok(description) => return Ok(description),
                Err(error) if attempt < 5 => {
                    attempt += 1;
                    self.client = None;
                    tracing::debug!(error = %error, "booking action retried");
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn apply(&mut self, action: &Action, rng: &mut StdRng, history: &mut History) -> anyhow::Result<String> {
        match *action {
            Action::NewEvent => self.new_event(rng, history).await,
            Action::NewAllocations => self.new_allocations(rng, history).await,
            Action::NewBooking => self.new_booking(rng, history).await,
            Action::Save(i) => self.save(i, rng, history, false).await,
            Action::Rewrite(i) => self.save(i, rng, history, true).await,
            Action::ToggleActive(i) => self.toggle_active(i, rng, history).await,
            Action::HardDelete(i) => self.hard_delete(i, history).await,
            Action::Season => self.season(rng, history).await,
            Action::FullTableIdString => {
                self.client().await?.execute("update bb_allocation set id_string = cast(id as varchar)", &[]).await?;
                Ok("full-table id_string update of bb_allocation".into())
            }
            Action::Completed => {
                let client = self.client().await?;
                client
                    .batch_execute(
                        "begin;
                         update bb_event set completed = 1 where to_ < localtimestamp and completed = 0;
                         update bb_booking set completed = 1 where to_ < localtimestamp and completed = 0;
                         update bb_allocation set completed = 1 where to_ < localtimestamp and completed = 0;
                         commit;",
                    )
                    .await?;
                Ok("billing cron: completed = 1 on past rows".into())
            }
            Action::UpstreamLinkBug(i) => {
                let Some(event) = self.reservations.get(i).cloned() else { return Ok("nothing".into()) };
                let Some(resource) = event.resources.first().copied() else { return Ok("nothing".into()) };
                self.client()
                    .await?
                    .execute("delete from bb_event_resource where resource_id = $1", &[&resource])
                    .await?;
                history.bulk_changes += 1;
                for r in self.reservations.iter_mut().filter(|r| r.kind == Kind::Event) {
                    r.resources.retain(|x| *x != resource);
                }
                Ok(format!("upstream bug: every event unlinked from resource {resource}"))
            }
        }
    }

    pub async fn new_event(&mut self, rng: &mut StdRng, history: &mut History) -> anyhow::Result<String> {
        let rooms = rooms_of(rng, false);
        let (from, to) = pick_slot(rng, true);
        let name = subject(rng, "Arr", self.counter);
        let public: i32 = if rng.gen_bool(0.15) { 0 } else { 1 };
        // Sometimes a description big enough to be TOASTed, so an UPDATE that leaves it alone sends it unchanged.
        let description = if rng.gen_bool(0.3) { "Lang beskrivelse. ".repeat(400) } else { "Kort".to_owned() };
        let room = rooms.first().copied().unwrap_or(ROOMS[0]);
        let resources: Vec<i32> = rooms.iter().map(|r| r.resource).collect();
        let client = self.client().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_one(
                "insert into bb_event (activity_id, name, organizer, description, from_, to_, building_id, \
                 building_name, contact_name, contact_email, contact_phone, is_public, secret, include_in_list) \
                 values (2, $1, 'Kari Nordmann', $2, $3, $4, $5, $6, 'Kari Nordmann', 'kari@example.no', \
                 '900 00 000', $7, md5(random()::text), 1) returning id",
                &[&name, &description, &from, &to, &room.building, &room.building_name, &public],
            )
            .await?;
        let id: i32 = row.get(0);
        tx.execute("update bb_event set id_string = cast(id as varchar) where id = $1", &[&id]).await?;
        relink(&tx, Kind::Event, id, &resources).await?;
        redate(&tx, id, from, to).await?;
        tx.commit().await?;
        history.touch(Kind::Event, id);
        self.reservations.push(Reservation {
            kind: Kind::Event,
            id,
            resources: resources.clone(),
            from,
            to,
            active: true,
        });
        Ok(format!("new event {id} {name:?} {from}..{to} on {resources:?} public={public}"))
    }

    pub async fn new_allocations(&mut self, rng: &mut StdRng, history: &mut History) -> anyhow::Result<String> {
        let rooms = rooms_of(rng, true);
        let room = rooms.first().copied().unwrap_or(ROOMS[0]);
        let resources: Vec<i32> = rooms.iter().map(|r| r.resource).collect();
        let (mut from, mut to) = pick_slot(rng, true);
        if rng.gen_bool(0.3) {
            let length = (to - from).min(TimeDelta::hours(3));
            from = series_across_spring_change(rng).and_time(from.time());
            to = from + length;
        }
        let weeks: u64 = rng.gen_range(1..=5);
        let organization: i32 = rng.gen_range(1..=5);
        let one_transaction = rng.gen_bool(0.5);
        let client = self.client().await?;
        let mut tx = client.transaction().await?;
        let mut ids = Vec::new();
        for week in 0..weeks {
            // The admin form adds a fixed interval to the wall clock: 18:00 stays 18:00 across a DST change.
            let (f, t) = (from + Days::new(7 * week), to + Days::new(7 * week));
            let row = tx
                .query_one(
                    "insert into bb_allocation (active, building_name, organization_id, from_, to_, season_id) \
                     values (1, $1, $2, $3, $4, $5) returning id",
                    &[&room.building_name, &organization, &f, &t, &room.season],
                )
                .await?;
            let id: i32 = row.get(0);
            tx.execute("update bb_allocation set id_string = cast(id as varchar) where id = $1", &[&id]).await?;
            relink(&tx, Kind::Allocation, id, &resources).await?;
            if !one_transaction {
                tx.commit().await?;
                tx = client.transaction().await?;
            }
            ids.push((id, f, t));
        }
        tx.commit().await?;
        for (id, f, t) in &ids {
            history.touch(Kind::Allocation, *id);
            let reservation = Reservation {
                kind: Kind::Allocation,
                id: *id,
                resources: resources.clone(),
                from: *f,
                to: *t,
                active: true,
            };
            self.reservations.push(reservation);
        }
        let ids: Vec<i32> = ids.iter().map(|(id, _, _)| *id).collect();
        Ok(format!("new allocations {ids:?} org {organization} weekly from {from}..{to} on {resources:?}"))
    }

    pub async fn new_booking(&mut self, rng: &mut StdRng, history: &mut History) -> anyhow::Result<String> {
        // Usually inside an allocation (a group refines its club's slot), sometimes on its own.
        let allocations: Vec<Reservation> = self
            .reservations
            .iter()
            .filter(|r| r.kind == Kind::Allocation && !r.resources.is_empty())
            .cloned()
            .collect();
        let (allocation, resources, from, to) = match allocations.choose(rng) {
            Some(a) if rng.gen_bool(0.7) => {
                let inner = (a.to - a.from) / 4;
                let from = a.from + if rng.gen_bool(0.5) { inner } else { TimeDelta::zero() };
                (Some(a.id), a.resources.clone(), from, from + (a.to - a.from) / 2)
            }
            _ => {
                let rooms = rooms_of(rng, true);
                let (from, to) = pick_slot(rng, false);
                (None, rooms.iter().map(|r| r.resource).collect(), from, to)
            }
        };
        let room = ROOMS.iter().find(|r| resources.first() == Some(&r.resource)).copied().unwrap_or(ROOMS[0]);
        let group: i32 = rng.gen_range(1..=4);
        let client = self.client().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_one(
                "insert into bb_booking (group_id, from_, to_, building_name, allocation_id, season_id, activity_id, \
                 secret) values ($1, $2, $3, $4, $5, $6, 15, md5(random()::text)) returning id",
                &[&group, &from, &to, &room.building_name, &allocation, &room.season],
            )
            .await?;
        let id: i32 = row.get(0);
        relink(&tx, Kind::Booking, id, &resources).await?;
        tx.commit().await?;
        history.touch(Kind::Booking, id);
        self.reservations.push(Reservation {
            kind: Kind::Booking,
            id,
            resources: resources.clone(),
            from,
            to,
            active: true,
        });
        Ok(format!("new booking {id} group {group} {from}..{to} on {resources:?} in allocation {allocation:?}"))
    }

    /// The legacy ORM's save: UPDATE of every column, then the links (and event dates) deleted and re-inserted.
    /// `same` keeps everything as it is (a save that changes nothing visible).
    pub async fn save(
        &mut self,
        i: usize,
        rng: &mut StdRng,
        history: &mut History,
        same: bool,
    ) -> anyhow::Result<String> {
        let Some(mut r) = self.reservations.get(i).cloned() else { return Ok("nothing".into()) };
        if !same {
            match rng.gen_range(0..3) {
                0 => {
                    let shift = TimeDelta::minutes(rng.gen_range(-8..=8) * 15);
                    r.from += shift;
                    r.to += shift;
                }
                1 => r.to += TimeDelta::minutes(rng.gen_range(1..=4) * 15),
                _ => {
                    if r.kind == Kind::Event {
                        r.resources = rooms_of(rng, false).iter().map(|x| x.resource).collect();
                    }
                }
            }
        }
        let name = subject(rng, "Arr", self.counter);
        let client = self.client().await?;
        let tx = client.transaction().await?;
        match r.kind {
            Kind::Event => {
                let sql = if same {
                    "update bb_event set from_ = $2, to_ = $3, active = $4 where id = $1"
                } else {
                    "update bb_event set from_ = $2, to_ = $3, active = $4, name = $5, organizer = organizer, \
                     description = description, building_name = building_name where id = $1"
                };
                let active = i32::from(r.active);
                if same {
                    tx.execute(sql, &[&r.id, &r.from, &r.to, &active]).await?;
                } else {
                    tx.execute(sql, &[&r.id, &r.from, &r.to, &active, &name]).await?;
                }
                redate(&tx, r.id, r.from, r.to).await?;
            }
            kind => {
                let sql = format!(
                    "update {} set from_ = $2, to_ = $3, active = $4, building_name = building_name, \
                     season_id = season_id, cost = cost where id = $1",
                    table(kind)
                );
                tx.execute(&sql, &[&r.id, &r.from, &r.to, &i32::from(r.active)]).await?;
            }
        }
        relink(&tx, r.kind, r.id, &r.resources).await?;
        tx.commit().await?;
        history.touch(r.kind, r.id);
        let description =
            format!("save {} {} {}..{} on {:?} (unchanged: {same})", r.kind.as_str(), r.id, r.from, r.to, r.resources);
        if let Some(slot) = self.reservations.get_mut(i) {
            *slot = r;
        }
        Ok(description)
    }

    /// Cancellation or reactivation: through a save (with the link rewrite) or the REST path's one-column UPDATE.
    pub async fn toggle_active(&mut self, i: usize, rng: &mut StdRng, history: &mut History) -> anyhow::Result<String> {
        let Some(r) = self.reservations.get_mut(i) else { return Ok("nothing".into()) };
        r.active = !r.active;
        let r = r.clone();
        if rng.gen_bool(0.5) {
            self.save(i, rng, history, true).await?;
        } else {
            let sql = format!("update {} set active = $2 where id = $1", table(r.kind));
            self.client().await?.execute(&sql, &[&r.id, &i32::from(r.active)]).await?;
            history.touch(r.kind, r.id);
        }
        Ok(format!("{} {} {}", if r.active { "reactivate" } else { "cancel" }, r.kind.as_str(), r.id))
    }

    /// Hard deletion in one transaction, children first.
    pub async fn hard_delete(&mut self, i: usize, history: &mut History) -> anyhow::Result<String> {
        let Some(r) = self.reservations.get(i).cloned() else { return Ok("nothing".into()) };
        let client = self.client().await?;
        let tx = client.transaction().await?;
        match r.kind {
            Kind::Event => {
                tx.execute("delete from bb_event_date where event_id = $1", &[&r.id]).await?;
                tx.execute("delete from bb_event_resource where event_id = $1", &[&r.id]).await?;
            }
            Kind::Booking => {
                tx.execute("delete from bb_booking_resource where booking_id = $1", &[&r.id]).await?;
            }
            Kind::Allocation => {
                tx.execute("update bb_booking set allocation_id = null where allocation_id = $1", &[&r.id]).await?;
                tx.execute("delete from bb_allocation_resource where allocation_id = $1", &[&r.id]).await?;
            }
        }
        tx.execute(&format!("delete from {} where id = $1", table(r.kind)), &[&r.id]).await?;
        tx.commit().await?;
        history.touch(r.kind, r.id);
        self.reservations.remove(i);
        Ok(format!("hard delete {} {}", r.kind.as_str(), r.id))
    }

    /// A season changes status or is (de)activated: every allocation and booking in it shows or hides.
    pub async fn season(&mut self, rng: &mut StdRng, history: &mut History) -> anyhow::Result<String> {
        let season = SEASONS[rng.gen_range(0..SEASONS.len())];
        let client = self.client().await?;
        let description = if rng.gen_bool(0.3) {
            client.execute("update bb_season set active = 1 - active where id = $1", &[&season]).await?;
            format!("season {season} active toggled")
        } else {
            // Published most of the time, so the workload's allocations and bookings are usually visible.
            let status = ["PUBLISHED", "PUBLISHED", "PLANNING", "ARCHIVED"][rng.gen_range(0..4)];
            client.execute("update bb_season set status = $2 where id = $1", &[&season, &status]).await?;
            format!("season {season} status {status}")
        };
        history.bulk_changes += 1;
        Ok(description)
    }
}

enum Action {
    NewEvent,
    NewAllocations,
    NewBooking,
    Save(usize),
    Rewrite(usize),
    ToggleActive(usize),
    HardDelete(usize),
    Season,
    FullTableIdString,
    Completed,
    UpstreamLinkBug(usize),
}
