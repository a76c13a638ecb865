//! The calendar view: stored events expanded into what `calendarView` and delta show for a time window.
//!
//! Invariants: series masters never appear themselves, only their occurrences; an occurrence's id encodes its
//! master and date, so `GET /events/{occurrenceId}` resolves without extra state; an occurrence shares its
//! master's change key, so editing the series changes every occurrence's etag.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use serde_json::{json, Value};

use crate::event::StoredEvent;
use crate::time::{self, OutputZone};

const OCCURRENCE_MARK: &str = "_OID_";

/// One occurrence of a series.
#[derive(Debug, Clone)]
pub struct Occurrence {
    /// The date the pattern produced.
    pub date: NaiveDate,
    /// Start wall clock in the series zone.
    pub start_local: NaiveDateTime,
    /// End wall clock in the series zone.
    pub end_local: NaiveDateTime,
    /// Start instant.
    pub start: DateTime<Utc>,
    /// End instant.
    pub end: DateTime<Utc>,
}

/// The id of the occurrence of `master` on `date`.
pub fn occurrence_id(master: &str, date: NaiveDate) -> String {
    format!("{master}{OCCURRENCE_MARK}{}", date.format("%Y%m%d"))
}

/// Splits an occurrence id into master id and date.
pub fn parse_occurrence_id(id: &str) -> Option<(&str, NaiveDate)> {
    let (master, date) = id.rsplit_once(OCCURRENCE_MARK)?;
    Some((master, NaiveDate::parse_from_str(date, "%Y%m%d").ok()?))
}

/// Occurrences of `event` overlapping `[from, to)`; empty for single instances.
pub fn occurrences(event: &StoredEvent, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Occurrence> {
    let Some(rec) = &event.recurrence else {
        return Vec::new();
    };
    let zone_name = rec.time_zone.as_deref().unwrap_or(&event.start.zone_name);
    let Ok(tz) = time::zone(zone_name) else {
        return Vec::new();
    };
    let length = event.end.local - event.start.local;
    let horizon = (to + Duration::days(2)).date_naive();
    rec.dates(horizon)
        .into_iter()
        .filter(|d| !event.cancelled_dates.contains(d))
        .filter_map(|date| {
            let start_local = date.and_time(event.start.local.time());
            let end_local = start_local + length;
            let start = time::local_to_utc(start_local, tz);
            let end = time::local_to_utc(end_local, tz);
            (start < to && end > from).then_some(Occurrence { date, start_local, end_local, start, end })
        })
        .collect()
}

/// The occurrence of `event` on `date`, if the series has one there.
pub fn occurrence_on(event: &StoredEvent, date: NaiveDate) -> Option<Occurrence> {
    let from = (date - Duration::days(2)).and_hms_opt(0, 0, 0)?.and_utc();
    let to = (date + Duration::days(3)).and_hms_opt(0, 0, 0)?.and_utc();
    occurrences(event, from, to).into_iter().find(|o| o.date == date)
}

/// An item of the view: a single instance, or one occurrence of a master (possibly edited: an exception).
#[derive(Debug, Clone)]
pub struct ViewItem<'a> {
    /// The stored event (the master for occurrences).
    pub event: &'a StoredEvent,
    /// Set for occurrences and exceptions (the original, pattern-given times).
    pub occurrence: Option<Occurrence>,
    /// Set for exceptions: the edited occurrence.
    pub exception: Option<&'a StoredEvent>,
}

impl<'a> ViewItem<'a> {
    /// A single instance.
    pub fn single(event: &'a StoredEvent) -> Self {
        Self { event, occurrence: None, exception: None }
    }

    /// The member of `event` on `date`: its exception if edited, else the plain occurrence.
    pub fn member(event: &'a StoredEvent, date: NaiveDate) -> Option<Self> {
        Some(Self { event, occurrence: Some(occurrence_on(event, date)?), exception: event.exceptions.get(&date) })
    }

    /// The id clients see.
    pub fn id(&self) -> String {
        match &self.occurrence {
            Some(o) => occurrence_id(&self.event.id, o.date),
            None => self.event.id.clone(),
        }
    }

    /// The change key of what is shown (an exception has its own).
    pub fn change_key(&self) -> &str {
        self.exception.map_or(&self.event.change_key, |e| &e.change_key)
    }

    /// Start instant, for ordering.
    pub fn start(&self) -> DateTime<Utc> {
        match (self.exception, &self.occurrence) {
            (Some(e), _) => e.start.utc,
            (None, Some(o)) => o.start,
            (None, None) => self.event.start.utc,
        }
    }

    fn times(&self, out: &OutputZone) -> (Value, Value) {
        match (&self.occurrence, self.exception) {
            (Some(_), Some(e)) => {
                let v = e.render(out, None);
                (v["start"].clone(), v["end"].clone())
            }
            (Some(o), None) if self.event.is_all_day => {
                (out.render_floating(o.start_local), out.render_floating(o.end_local))
            }
            (Some(o), None) => (out.render(o.start), out.render(o.end)),
            (None, _) => {
                let v = self.event.render(out, None);
                (v["start"].clone(), v["end"].clone())
            }
        }
    }

    fn kind(&self) -> &'static str {
        match (&self.occurrence, self.exception) {
            (Some(_), Some(_)) => "exception",
            (Some(_), None) => "occurrence",
            (None, _) => self.event.kind(),
        }
    }

    /// Full JSON form.
    pub fn render(&self, out: &OutputZone, expand: Option<&[String]>) -> Value {
        let mut value = self.exception.unwrap_or(self.event).render(out, expand);
        if let (Some(o), Some(m)) = (&self.occurrence, value.as_object_mut()) {
            let (start, end) = self.times(out);
            let id = occurrence_id(&self.event.id, o.date);
            m.insert("webLink".into(), json!(crate::event::web_link(&id)));
            m.insert("originalStartTimeZone".into(), json!(self.event.start.zone_name));
            m.insert("originalEndTimeZone".into(), json!(self.event.end.zone_name));
            m.insert("id".into(), json!(id));
            m.insert("type".into(), json!(self.kind()));
            m.insert("seriesMasterId".into(), json!(self.event.id));
            m.insert("originalStart".into(), json!(time::format_instant(o.start)));
            m.insert("recurrence".into(), Value::Null);
            m.insert("start".into(), start);
            m.insert("end".into(), end);
        }
        value
    }

    /// Delta form: full for single instances, a stub for series members (as Graph does).
    pub fn render_delta(&self, out: &OutputZone) -> Value {
        if self.occurrence.is_none() {
            let mut v = self.render(out, None);
            if let Some(m) = v.as_object_mut() {
                m.insert("@odata.type".into(), json!("#microsoft.graph.event"));
            }
            return v;
        }
        let (start, end) = self.times(out);
        json!({
            "@odata.type": "#microsoft.graph.event",
            "@odata.etag": format!("W/\"{}\"", self.change_key()),
            "id": self.id(),
            "seriesMasterId": self.event.id,
            "type": self.kind(),
            "start": start,
            "end": end,
        })
    }
}

fn overlaps(start: DateTime<Utc>, end: DateTime<Utc>, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
    start < to && end > from || (start == end && start >= from && start < to)
}

/// Everything visible in `[from, to)`, ordered by start.
pub fn view<'a>(events: &'a [StoredEvent], from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<ViewItem<'a>> {
    let mut items = Vec::new();
    for event in events {
        if event.recurrence.is_none() {
            if overlaps(event.start.utc, event.end.utc, from, to) {
                items.push(ViewItem::single(event));
            }
            continue;
        }
        // Plain occurrences are found by their pattern times; exceptions by their edited times.
        items.extend(
            occurrences(event, from, to)
                .into_iter()
                .filter(|o| !event.exceptions.contains_key(&o.date))
                .map(|o| ViewItem { event, occurrence: Some(o), exception: None }),
        );
        items.extend(
            event
                .exceptions
                .iter()
                .filter(|(_, e)| overlaps(e.start.utc, e.end.utc, from, to))
                .filter_map(|(date, _)| ViewItem::member(event, *date)),
        );
    }
    items.sort_by_key(|i| i.start());
    items
}
