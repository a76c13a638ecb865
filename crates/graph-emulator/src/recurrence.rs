//! Recurrence patterns (`{pattern, range}`) and their expansion into occurrence dates.
//!
//! Invariants: expansion is bounded (never more than [`MAX_OCCURRENCES`] dates, never past the caller's horizon), so a
//! hostile `noEnd` series cannot exhaust memory; dates come out strictly increasing; an invalid day of month is
//! clamped to the month's last day, as Outlook does for "the 31st".

use chrono::{Datelike, Duration, Months, NaiveDate, Weekday};
use serde_json::Value;

use crate::error::ApiError;

/// Upper bound on dates produced by one expansion.
pub const MAX_OCCURRENCES: usize = 5_000;

/// The pattern kinds Graph knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternKind {
    /// Every `interval` days.
    Daily,
    /// On `daysOfWeek` every `interval` weeks.
    Weekly,
    /// On `dayOfMonth` every `interval` months.
    AbsoluteMonthly,
    /// On the `index` weekday of every `interval` months.
    RelativeMonthly,
    /// On `dayOfMonth` of `month` every `interval` years.
    AbsoluteYearly,
    /// On the `index` weekday of `month` every `interval` years.
    RelativeYearly,
}

/// How a series ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeEnd {
    /// Last date (inclusive).
    EndDate(NaiveDate),
    /// Never.
    NoEnd,
    /// After this many occurrences.
    Numbered(u32),
}

/// A parsed recurrence; `raw` is echoed back to clients unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct Recurrence {
    /// Pattern kind.
    pub kind: PatternKind,
    /// Step (>= 1).
    pub interval: u32,
    /// Days for weekly and relative patterns.
    pub days_of_week: Vec<Weekday>,
    /// Day for absolute patterns.
    pub day_of_month: u32,
    /// Month (1-12) for yearly patterns.
    pub month: u32,
    /// 0..=3 for first..fourth, 4 for last.
    pub index: usize,
    /// Week start for weekly patterns.
    pub first_day_of_week: Weekday,
    /// First date of the series.
    pub start: NaiveDate,
    /// End of the series.
    pub end: RangeEnd,
    /// Zone of the series (`range.recurrenceTimeZone`), if given.
    pub time_zone: Option<String>,
    /// The JSON as sent.
    pub raw: Value,
}

fn weekday(name: &str) -> Option<Weekday> {
    Some(match name.to_ascii_lowercase().as_str() {
        "monday" => Weekday::Mon,
        "tuesday" => Weekday::Tue,
        "wednesday" => Weekday::Wed,
        "thursday" => Weekday::Thu,
        "friday" => Weekday::Fri,
        "saturday" => Weekday::Sat,
        "sunday" => Weekday::Sun,
        _ => return None,
    })
}

fn bad(msg: &str) -> ApiError {
    ApiError::bad_request(format!("Invalid recurrence: {msg}"))
}

fn date_field(value: &Value, key: &str) -> Result<NaiveDate, ApiError> {
    value
        .get(key)
        .and_then(Value::as_str)
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .ok_or_else(|| bad(&format!("range.{key} must be YYYY-MM-DD")))
}

fn u32_field(value: &Value, key: &str, default: u32) -> Result<u32, ApiError> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => {
            v.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(|| bad(&format!("{key} must be a number")))
        }
    }
}

impl Recurrence {
    /// Parses `{pattern, range}`; never panics on malformed input.
    pub fn parse(raw: &Value) -> Result<Self, ApiError> {
        let pattern = raw.get("pattern").ok_or_else(|| bad("missing pattern"))?;
        let range = raw.get("range").ok_or_else(|| bad("missing range"))?;
        let kind = match pattern.get("type").and_then(Value::as_str).unwrap_or("") {
            "daily" => PatternKind::Daily,
            "weekly" => PatternKind::Weekly,
            "absoluteMonthly" => PatternKind::AbsoluteMonthly,
            "relativeMonthly" => PatternKind::RelativeMonthly,
            "absoluteYearly" => PatternKind::AbsoluteYearly,
            "relativeYearly" => PatternKind::RelativeYearly,
            other => return Err(bad(&format!("unknown pattern type {other:?}"))),
        };
        let interval = u32_field(pattern, "interval", 1)?.max(1);
        let mut days_of_week = Vec::new();
        if let Some(days) = pattern.get("daysOfWeek").and_then(Value::as_array) {
            for d in days {
                let day = d.as_str().and_then(weekday).ok_or_else(|| bad("bad day"))?;
                days_of_week.push(day);
            }
        }
        let needs_days =
            matches!(kind, PatternKind::Weekly | PatternKind::RelativeMonthly | PatternKind::RelativeYearly);
        if needs_days && days_of_week.is_empty() {
            return Err(bad("daysOfWeek required"));
        }
        let index = match pattern.get("index").and_then(Value::as_str).unwrap_or("first") {
            "first" => 0,
            "second" => 1,
            "third" => 2,
            "fourth" => 3,
            "last" => 4,
            _ => return Err(bad("bad index")),
        };
        let first_day_of_week =
            pattern.get("firstDayOfWeek").and_then(Value::as_str).and_then(weekday).unwrap_or(Weekday::Sun);
        let day_of_month = u32_field(pattern, "dayOfMonth", 0)?;
        let month = u32_field(pattern, "month", 0)?;
        let absolute = matches!(kind, PatternKind::AbsoluteMonthly | PatternKind::AbsoluteYearly);
        if absolute && !(1..=31).contains(&day_of_month) {
            return Err(bad("dayOfMonth must be 1..31"));
        }
        let yearly = matches!(kind, PatternKind::AbsoluteYearly | PatternKind::RelativeYearly);
        if yearly && !(1..=12).contains(&month) {
            return Err(bad("month must be 1..12"));
        }
        let start = date_field(range, "startDate")?;
        let end = match range.get("type").and_then(Value::as_str).unwrap_or("") {
            "endDate" => RangeEnd::EndDate(date_field(range, "endDate")?),
            "noEnd" => RangeEnd::NoEnd,
            "numbered" => {
                let n = u32_field(range, "numberOfOccurrences", 0)?;
                if n == 0 {
                    return Err(bad("numberOfOccurrences must be positive"));
                }
                RangeEnd::Numbered(n)
            }
            other => return Err(bad(&format!("unknown range type {other:?}"))),
        };
        let time_zone =
            range.get("recurrenceTimeZone").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
        Ok(Self {
            kind,
            interval,
            days_of_week,
            day_of_month,
            month,
            index,
            first_day_of_week,
            start,
            end,
            time_zone,
            raw: raw.clone(),
        })
    }

    /// Occurrence dates from the series start up to `horizon` (inclusive), bounded by the range.
    pub fn dates(&self, horizon: NaiveDate) -> Vec<NaiveDate> {
        let last = match self.end {
            RangeEnd::EndDate(d) => d.min(horizon),
            _ => horizon,
        };
        let limit = match self.end {
            RangeEnd::Numbered(n) => (n as usize).min(MAX_OCCURRENCES),
            _ => MAX_OCCURRENCES,
        };
        let mut out = Vec::new();
        // Each step yields the candidate dates of one period (day, week, month or year).
        let mut period = 0u32;
        while out.len() < limit {
            let Some(candidates) = self.period_dates(period) else {
                break;
            };
            if candidates.first().is_some_and(|d| *d > last) {
                break;
            }
            for date in candidates {
                if date >= self.start && date <= last && out.len() < limit {
                    out.push(date);
                }
            }
            period = match period.checked_add(1) {
                Some(p) => p,
                None => break,
            };
        }
        out
    }

    fn period_dates(&self, period: u32) -> Option<Vec<NaiveDate>> {
        let step = period.checked_mul(self.interval)?;
        match self.kind {
            PatternKind::Daily => Some(vec![self.start.checked_add_signed(Duration::days(step.into()))?]),
            PatternKind::Weekly => {
                let back = (7 + self.start.weekday().num_days_from_monday()
                    - self.first_day_of_week.num_days_from_monday())
                    % 7;
                // Checked arithmetic: a huge interval must end the expansion, not overflow the calendar.
                let week = self
                    .start
                    .checked_sub_signed(Duration::days(back.into()))?
                    .checked_add_signed(Duration::try_weeks(step.into())?)?;
                let mut days: Vec<NaiveDate> = self
                    .days_of_week
                    .iter()
                    .filter_map(|d| {
                        let off = (7 + d.num_days_from_monday() - self.first_day_of_week.num_days_from_monday()) % 7;
                        week.checked_add_signed(Duration::days(off.into()))
                    })
                    .collect();
                days.sort();
                days.dedup();
                Some(days)
            }
            PatternKind::AbsoluteMonthly | PatternKind::RelativeMonthly => {
                let first = self.start.with_day(1)?.checked_add_months(Months::new(step))?;
                Some(self.in_month(first).into_iter().collect())
            }
            PatternKind::AbsoluteYearly | PatternKind::RelativeYearly => {
                let first = NaiveDate::from_ymd_opt(self.start.year(), self.month, 1)?
                    .checked_add_months(Months::new(step.checked_mul(12)?))?;
                Some(self.in_month(first).into_iter().collect())
            }
        }
    }

    /// The date of this pattern within the month starting at `first`.
    fn in_month(&self, first: NaiveDate) -> Option<NaiveDate> {
        let next = first.checked_add_months(Months::new(1))?;
        if matches!(self.kind, PatternKind::AbsoluteMonthly | PatternKind::AbsoluteYearly) {
            let last_day = (next - Duration::days(1)).day();
            return first.with_day(self.day_of_month.min(last_day));
        }
        let matching: Vec<NaiveDate> =
            first.iter_days().take_while(|d| *d < next).filter(|d| self.days_of_week.contains(&d.weekday())).collect();
        if self.index == 4 {
            matching.last().copied()
        } else {
            matching.get(self.index).copied()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn a_weekly_series_on_two_days_every_other_week_yields_the_right_dates() {
        let r = Recurrence::parse(&json!({
            "pattern": {"type":"weekly","interval":2,"daysOfWeek":["monday","thursday"],"firstDayOfWeek":"monday"},
            "range": {"type":"numbered","startDate":"2025-01-06","numberOfOccurrences":5}
        }))
        .expect("valid");
        let dates = r.dates(d("2026-01-01"));
        assert_eq!(dates, vec![d("2025-01-06"), d("2025-01-09"), d("2025-01-20"), d("2025-01-23"), d("2025-02-03")]);
    }

    #[test]
    fn daily_series_stop_at_their_end_date() {
        let r = Recurrence::parse(&json!({
            "pattern": {"type":"daily","interval":3},
            "range": {"type":"endDate","startDate":"2025-01-01","endDate":"2025-01-10"}
        }))
        .expect("valid");
        assert_eq!(r.dates(d("2030-01-01")), vec![d("2025-01-01"), d("2025-01-04"), d("2025-01-07"), d("2025-01-10")]);
    }

    #[test]
    fn absolute_monthly_on_the_31st_clamps_to_the_last_day() {
        let r = Recurrence::parse(&json!({
            "pattern": {"type":"absoluteMonthly","interval":1,"dayOfMonth":31},
            "range": {"type":"numbered","startDate":"2025-01-31","numberOfOccurrences":3}
        }))
        .expect("valid");
        assert_eq!(r.dates(d("2030-01-01")), vec![d("2025-01-31"), d("2025-02-28"), d("2025-03-31")]);
    }

    #[test]
    fn relative_monthly_last_friday_and_relative_yearly_work() {
        let r = Recurrence::parse(&json!({
            "pattern": {"type":"relativeMonthly","interval":1,"daysOfWeek":["friday"],"index":"last"},
            "range": {"type":"numbered","startDate":"2025-01-01","numberOfOccurrences":2}
        }))
        .expect("valid");
        assert_eq!(r.dates(d("2030-01-01")), vec![d("2025-01-31"), d("2025-02-28")]);
        let y = Recurrence::parse(&json!({
            "pattern": {"type":"relativeYearly","interval":1,"daysOfWeek":["thursday"],"index":"fourth","month":11},
            "range": {"type":"numbered","startDate":"2025-01-01","numberOfOccurrences":2}
        }))
        .expect("valid");
        assert_eq!(y.dates(d("2030-01-01")), vec![d("2025-11-27"), d("2026-11-26")]);
    }

    #[test]
    fn a_no_end_series_is_bounded_by_the_horizon() {
        let r = Recurrence::parse(&json!({
            "pattern": {"type":"daily","interval":1},
            "range": {"type":"noEnd","startDate":"2025-01-01"}
        }))
        .expect("valid");
        assert_eq!(r.dates(d("2025-01-05")).len(), 5);
    }

    #[test]
    fn huge_intervals_and_extreme_dates_end_the_expansion_without_panicking() {
        for kind in ["daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly"] {
            for (interval, start) in [(u32::MAX, "2025-01-01"), (1_000_000_000, "2025-01-01"), (1, "9999-12-30")] {
                let r = Recurrence::parse(&json!({
                    "pattern": {"type": kind, "interval": interval, "daysOfWeek": ["sunday"], "dayOfMonth": 31, "month": 12, "index": "last"},
                    "range": {"type": "noEnd", "startDate": start}
                }))
                .expect("valid");
                assert!(r.dates(NaiveDate::MAX).len() <= MAX_OCCURRENCES);
            }
        }
    }

    #[test]
    fn malformed_recurrences_are_rejected_without_panicking() {
        for junk in [
            json!({}),
            json!({"pattern":{"type":"weekly"},"range":{"type":"noEnd","startDate":"2025-01-01"}}),
            json!({"pattern":{"type":"daily","interval":-1},"range":{"type":"noEnd","startDate":"2025-01-01"}}),
            json!({"pattern":{"type":"absoluteMonthly","dayOfMonth":40},"range":{"type":"noEnd","startDate":"2025-01-01"}}),
            json!({"pattern":{"type":"daily"},"range":{"type":"numbered","startDate":"x","numberOfOccurrences":2}}),
            json!({"pattern":{"type":"hourly"},"range":{"type":"noEnd","startDate":"2025-01-01"}}),
        ] {
            assert!(Recurrence::parse(&junk).is_err(), "{junk}");
        }
    }
}
