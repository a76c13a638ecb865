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
            (start < to && end > from).then_some(Occurrence {
                date,
                start_local,
                end_local,
                start,
                end,
            })
        })
        .collect()
}

/// The occurrence of `event` on `date`, if the series has one there.
pub fn occurrence_on(event: &StoredEvent, date: NaiveDate) -> Option<Occurrence> {
    let from = (date - Duration::days(2)).and_hms_opt(0, 0, 0)?.and_utc();
    let to = (date + Duration::days(3)).and_hms_opt(0, 0, 0)?.and_utc();
    occurrences(event, from, to)
        .into_iter()
        .find(|o| o.date == date)
}

/// An item of the view: a single instance or one occurrence of a master.
#[derive(Debug, Clone)]
pub struct ViewItem<'a> {
    /// The stored event (the master for occurrences).
    pub event: &'a StoredEvent,
    /// Set for occurrences.
    pub occurrence: Option<Occurrence>,
}

impl ViewItem<'_> {
    /// The id clients see.
    pub fn id(&self) -> String {
        match &self.occurrence {
            Some(o) => occurrence_id(&self.event.id, o.date),
            None => self.event.id.clone(),
        }
    }

    /// Start instant, for ordering.
    pub fn start(&self) -> DateTime<Utc> {
        self.occurrence
            .as_ref()
            .map_or(self.event.start.utc, |o| o.start)
    }

    fn times(&self, out: &OutputZone) -> (Value, Value) {
        match &self.occurrence {
            Some(o) if self.event.is_all_day => (
                out.render_floating(o.start_local),
                out.render_floating(o.end_local),
            ),
            Some(o) => (out.render(o.start), out.render(o.end)),
            None => {
                let v = self.event.render(out, None);
                (v["start"].clone(), v["end"].clone())
            }
        }
    }

    /// Full JSON form.
    pub fn render(&self, out: &OutputZone, expand: Option<&[String]>) -> Value {
        let mut value = self.event.render(out, expand);
        if let (Some(o), Some(m)) = (&self.occurrence, value.as_object_mut()) {
            let (start, end) = self.times(out);
            m.insert("id".into(), json!(occurrence_id(&self.event.id, o.date)));
            m.insert("type".into(), json!("occurrence"));
            m.insert("seriesMasterId".into(), json!(self.event.id));
            m.insert("originalStart".into(), json!(time::format_instant(o.start)));
            m.insert("recurrence".into(), Value::Null);
            m.insert("start".into(), start);
            m.insert("end".into(), end);
        }
        value
    }

    /// Delta form: full for single instances, a stub for occurrences (as Graph does).
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
            "@odata.etag": format!("W/\"{}\"", self.event.change_key),
            "id": self.id(),
            "seriesMasterId": self.event.id,
            "type": "occurrence",
            "start": start,
            "end": end,
        })
    }
}

/// Everything visible in `[from, to)`, ordered by start.
pub fn view<'a>(
    events: &'a [StoredEvent],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<ViewItem<'a>> {
    let mut items = Vec::new();
    for event in events {
        if event.recurrence.is_some() {
            items.extend(occurrences(event, from, to).into_iter().map(|o| ViewItem {
                event,
                occurrence: Some(o),
            }));
        } else if event.start.utc < to && event.end.utc > from
            || (event.start.utc == event.end.utc && event.start.utc >= from && event.start.utc < to)
        {
            items.push(ViewItem {
                event,
                occurrence: None,
            });
        }
    }
    items.sort_by_key(|i| i.start());
    items
}
