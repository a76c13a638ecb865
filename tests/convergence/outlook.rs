//! The Outlook side of the workload: people booking rooms straight in Outlook (single events and weekly series,
//! some on top of booking-system reservations, which must become conflicts), moving and deleting their own
//! bookings, and editing or deleting the events roomsync wrote (which roomsync must revert).
//!
//! Invariant: after every action the generator reads the room calendar back from the emulator and records the
//! Outlook booking as it is stored (or gone), so a Graph answer lost to an injected fault cannot mislead the
//! oracle.

use chrono::{DateTime, Datelike, Duration as TimeDelta, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Europe::Oslo;
use graph_client::{DateTimeTimeZone, Event, GraphClient};
use graph_emulator::Emulator;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};

use super::booking::Reservation;
use super::workload::{
    pick_outlook_only_slot, pick_slot, skipped, subject, History, OutlookBooking, AUTUMN_FOLD_DAY, ROOMS,
    SPRING_GAP_DAY,
};

/// The simulated Outlook users.
pub struct OutlookUsers {
    graph: GraphClient,
    emu: Emulator,
    http: reqwest::Client,
    admin_url: String,
    counter: usize,
}

/// Whether a stored event carries roomsync's item key.
pub fn item_key(event: &Value) -> Option<&str> {
    event["singleValueExtendedProperties"].as_array()?.iter().find_map(|p| {
        let id = p["id"].as_str()?;
        id.eq_ignore_ascii_case(graph_client::properties::ROOMSYNC_ITEM_KEY).then(|| p["value"].as_str()).flatten()
    })
}

/// Parses a stored event's UTC `dateTime`.
pub fn utc_of(value: &Value) -> Option<DateTime<Utc>> {
    let text = value["dateTime"].as_str()?;
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|t| t.and_utc())
}

fn oslo(local: NaiveDateTime) -> Value {
    json!({"dateTime": local.format("%Y-%m-%dT%H:%M:%S").to_string(), "timeZone": "Europe/Oslo"})
}

impl OutlookUsers {
    /// Users of the emulated tenant; `admin_url` is the emulator's base URL.
    pub fn new(graph: GraphClient, emu: Emulator, admin_url: String) -> Self {
        OutlookUsers { graph, emu, http: reqwest::Client::new(), admin_url, counter: 0 }
    }

    /// The stored (single or series master) event `id` of `mailbox`, as the emulator holds it now.
    fn stored(&self, mailbox: &str, id: &str) -> Option<OutlookBooking> {
        let events = self.emu.mailbox_events(mailbox).unwrap_or_default();
        let event = events.iter().find(|e| e["id"].as_str() == Some(id))?;
        let occurrences = event["recurrence"]["range"]["numberOfOccurrences"].as_u64().unwrap_or(1);
        Some(OutlookBooking {
            mailbox: mailbox.to_owned(),
            subject: event["subject"].as_str().unwrap_or_default().to_owned(),
            start: utc_of(&event["start"])?,
            end: utc_of(&event["end"])?,
            occurrences: u32::try_from(occurrences).unwrap_or(1),
        })
    }

    fn observe(&self, history: &mut History, mailbox: &str, id: &str) {
        match self.stored(mailbox, id) {
            Some(booking) => {
                history.outlook_bookings.insert(id.to_owned(), booking);
            }
            None => {
                if let Some(gone) = history.outlook_bookings.remove(id) {
                    history.deleted_outlook_bookings.insert(id.to_owned(), gone);
                }
            }
        }
    }

    /// Books one hour in each of the first rooms that ends `leaves_in` before it leaves the sync window (whose
    /// past end is `window_past` ago): bookings that take place, and so age out, while the test runs.
    pub async fn book_aging(
        &mut self,
        history: &mut History,
        window_past: std::time::Duration,
        leaves_in: TimeDelta,
    ) -> String {
        let end = Utc::now() - TimeDelta::from_std(window_past).unwrap_or_default() + leaves_in;
        let start = end - TimeDelta::hours(1);
        let utc = |t: DateTime<Utc>| json!({"dateTime": t.format("%Y-%m-%dT%H:%M:%S").to_string(), "timeZone": "UTC"});
        let mut booked = Vec::new();
        for room in ROOMS.iter().take(3) {
            self.counter += 1;
            let subject = format!("Outlook aging {}", self.counter);
            let body = json!({"subject": subject, "start": utc(start), "end": utc(end), "showAs": "busy"});
            let url = format!("{}/_emulator/mailboxes/{}/bookings", self.admin_url, room.mailbox);
            let created = match self.http.post(&url).json(&body).send().await {
                Ok(response) => response.json::<Value>().await.ok(),
                Err(_) => None,
            };
            if let Some(id) = created.as_ref().and_then(|c| c["id"].as_str()).map(str::to_owned) {
                self.observe(history, room.mailbox, &id);
                history.aging_outlook_bookings.insert(id.clone());
                booked.push(id);
            }
        }
        format!("outlook: {} bookings {start}..{end} that leave the window during the run: {booked:?}", booked.len())
    }

    /// One random Outlook action; `reservations` are the booking system's, to book on top of some of them.
    pub async fn act(&mut self, rng: &mut StdRng, history: &mut History, reservations: &[Reservation]) -> String {
        self.counter += 1;
        let roll = rng.gen_range(0..100);
        // The meetings that take place during the run are left alone: nobody moves or deletes them (deleting one
        // that is over would not cancel its import either: the core tests cover that rule).
        let own: Vec<(String, OutlookBooking)> = history
            .outlook_bookings
            .iter()
            .filter(|(id, _)| !history.aging_outlook_bookings.contains(*id))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        match roll {
            0..=34 => self.book(rng, history, reservations, false).await,
            35..=44 => self.book(rng, history, reservations, !skipped("outlook-series")).await,
            45..=59 => match own.choose(rng) {
                Some((id, booking)) if booking.occurrences == 1 && !skipped("outlook-moves-own-booking") => {
                    self.move_own(rng, history, id, booking).await
                }
                _ => self.book(rng, history, reservations, false).await,
            },
            60..=69 => match own.choose(rng) {
                Some((id, booking)) if !skipped("outlook-owner-deletes-booking") => {
                    let outcome = self.graph.delete_event(&booking.mailbox, id).await;
                    self.count_write(history, id, outcome.is_ok());
                    self.observe(history, &booking.mailbox, id);
                    format!("outlook: owner deletes booking {id} ({outcome:?})")
                }
                _ => self.book(rng, history, reservations, false).await,
            },
            _ => self.touch_roomsync_event(rng, history).await,
        }
    }

    fn count_write(&self, history: &mut History, id: &str, ok: bool) {
        if ok {
            *history.user_writes.entry(id.to_owned()).or_default() += 1;
        }
    }

    /// A person books a room in Outlook; half the time on top of a booking-system reservation of that room.
    async fn book(
        &mut self,
        rng: &mut StdRng,
        history: &mut History,
        reservations: &[Reservation],
        series: bool,
    ) -> String {
        let live: Vec<&Reservation> = reservations.iter().filter(|r| r.active && !r.resources.is_empty()).collect();
        let (room, from, to) = match live.choose(rng) {
            Some(r) if rng.gen_bool(0.5) => {
                let room = ROOMS.iter().find(|x| r.resources.contains(&x.resource)).copied().unwrap_or(ROOMS[0]);
                (room, r.from + TimeDelta::minutes(15), r.from + TimeDelta::minutes(75))
            }
            _ => {
                let (from, to) = if skipped("reservation-over-imported-booking") {
                    pick_outlook_only_slot(rng)
                } else {
                    pick_slot(rng, false)
                };
                (ROOMS[rng.gen_range(0..ROOMS.len())], from, to)
            }
        };
        // A series starts on an ordinary day (its later occurrences keep the wall clock; the oracle expands them).
        let dst_day = [SPRING_GAP_DAY, AUTUMN_FOLD_DAY]
            .iter()
            .any(|(y, m, d)| (from.year(), from.month(), from.day()) == (*y, *m, *d));
        let (from, to) =
            if series && dst_day { (from + TimeDelta::days(7), to + TimeDelta::days(7)) } else { (from, to) };
        let subject = subject(rng, "Outlook", self.counter);
        let mut body = json!({"subject": subject, "start": oslo(from), "end": oslo(to), "showAs": "busy"});
        if series {
            let day = from.date().format("%A").to_string().to_lowercase();
            let occurrences = rng.gen_range(2..=4);
            body["recurrence"] = json!({
                "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [day]},
                "range": {"type": "numbered", "startDate": from.date().to_string(), "numberOfOccurrences": occurrences},
            });
        }
        let url = format!("{}/_emulator/mailboxes/{}/bookings", self.admin_url, room.mailbox);
        let created = match self.http.post(&url).json(&body).send().await {
            Ok(response) => response.json::<Value>().await.ok(),
            Err(_) => None,
        };
        let Some(id) = created.as_ref().and_then(|c| c["id"].as_str()).map(str::to_owned) else {
            return format!("outlook: booking {subject:?} refused: {created:?}");
        };
        self.observe(history, room.mailbox, &id);
        format!("outlook: {} books {} {from}..{to} as {id} (series: {series})", subject, room.mailbox)
    }

    /// The owner moves their booking by whole hours (sometimes onto a reservation, sometimes off one).
    async fn move_own(
        &mut self,
        rng: &mut StdRng,
        history: &mut History,
        id: &str,
        booking: &OutlookBooking,
    ) -> String {
        let shift = TimeDelta::hours(rng.gen_range(-3..=3));
        let local = |t: DateTime<Utc>| t.with_timezone(&Oslo).naive_local() + shift;
        let patch = Event {
            subject: Some(format!("{} (flyttet)", booking.subject)),
            start: Some(DateTimeTimeZone::local(local(booking.start), "Europe/Oslo")),
            end: Some(DateTimeTimeZone::local(local(booking.end), "Europe/Oslo")),
            ..Default::default()
        };
        let outcome = self.graph.update_event(&booking.mailbox, id, &patch, None).await;
        self.count_write(history, id, outcome.is_ok());
        self.observe(history, &booking.mailbox, id);
        format!("outlook: owner moves {id} by {shift} (ok: {})", outcome.is_ok())
    }

    /// Somebody edits or deletes an event roomsync wrote; roomsync must put it back.
    async fn touch_roomsync_event(&mut self, rng: &mut StdRng, history: &mut History) -> String {
        let room = ROOMS[rng.gen_range(0..ROOMS.len())];
        let events = self.emu.mailbox_events(room.mailbox).unwrap_or_default();
        let ours: Vec<&Value> = events.iter().filter(|e| item_key(e).is_some()).collect();
        let Some(event) = ours.choose(rng) else { return "outlook: no roomsync event to edit".into() };
        let Some(id) = event["id"].as_str().map(str::to_owned) else { return "outlook: event without id".into() };
        *history.roomsync_event_edits.entry(id.clone()).or_default() += 1;
        let deletes = !skipped("outlook-deletes-roomsync-event");
        let (what, ok) = match rng.gen_range(0..3) {
            0 if deletes => ("deletes", self.graph.delete_event(room.mailbox, &id).await.is_ok()),
            0 | 1 => {
                let patch = Event { subject: Some("Privat fest".into()), ..Default::default() };
                ("renames", self.graph.update_event(room.mailbox, &id, &patch, None).await.is_ok())
            }
            _ => {
                let start = utc_of(&event["start"]).unwrap_or_default() + TimeDelta::hours(1);
                let end = utc_of(&event["end"]).unwrap_or_default() + TimeDelta::hours(1);
                let patch = Event {
                    start: Some(DateTimeTimeZone::utc(start)),
                    end: Some(DateTimeTimeZone::utc(end)),
                    is_all_day: Some(false),
                    ..Default::default()
                };
                ("moves", self.graph.update_event(room.mailbox, &id, &patch, None).await.is_ok())
            }
        };
        self.count_write(history, &id, ok);
        format!("outlook: someone {what} roomsync's event {id} in {} (ok: {ok})", room.mailbox)
    }
}

/// The instant of an Oslo wall-clock time of an Outlook occurrence (Outlook's own rule: standard time for
/// a repeated time, a nonexistent time moved forward by an hour).
pub fn oslo_instant(local: NaiveDateTime) -> DateTime<Utc> {
    match Oslo.from_local_datetime(&local) {
        // A repeated autumn wall clock is standard time, as Exchange (and the emulator) read it.
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(_, t) => t.with_timezone(&Utc),
        chrono::LocalResult::None => oslo_instant(local + TimeDelta::hours(1)),
    }
}
