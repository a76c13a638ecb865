//! Graph's `dateTimeTimeZone`: parsing what clients send and formatting what Graph answers.
//!
//! Invariants: a `dateTime` carrying an offset (`Z`, `+01:00`) is rejected, never silently reinterpreted;
//! answers always carry 7 fraction digits and no offset; local times resolve deterministically across DST
//! (a time in the spring gap moves forward by the gap; a repeated autumn time is standard time, as Exchange,
//! built on .NET, reads it: `TimeZoneInfo.ConvertTimeToUtc` "assumes that it is the standard time of the source
//! time zone", <https://learn.microsoft.com/dotnet/api/system.timezoneinfo.converttimetoutc>).

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

/// Windows time zone names Graph accepts, mapped to an IANA zone with the same rules.
const WINDOWS_ZONES: &[(&str, &str)] = &[
    ("UTC", "UTC"),
    ("Coordinated Universal Time", "UTC"),
    ("W. Europe Standard Time", "Europe/Berlin"),
    ("Romance Standard Time", "Europe/Paris"),
    ("Central Europe Standard Time", "Europe/Budapest"),
    ("Central European Standard Time", "Europe/Warsaw"),
    ("GMT Standard Time", "Europe/London"),
    ("Greenwich Standard Time", "Atlantic/Reykjavik"),
    ("FLE Standard Time", "Europe/Helsinki"),
    ("E. Europe Standard Time", "Europe/Chisinau"),
    ("Russian Standard Time", "Europe/Moscow"),
    ("Eastern Standard Time", "America/New_York"),
    ("Central Standard Time", "America/Chicago"),
    ("Mountain Standard Time", "America/Denver"),
    ("Pacific Standard Time", "America/Los_Angeles"),
    ("India Standard Time", "Asia/Kolkata"),
    ("China Standard Time", "Asia/Shanghai"),
    ("Tokyo Standard Time", "Asia/Tokyo"),
    ("AUS Eastern Standard Time", "Australia/Sydney"),
];

/// Why a `dateTimeTimeZone` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// The zone name is neither IANA nor a known Windows name.
    #[error("unknown time zone {0:?}")]
    UnknownZone(String),
    /// The dateTime carries an offset or `Z`.
    #[error("dateTime {0:?} must not carry an offset")]
    OffsetNotAllowed(String),
    /// The dateTime is not `YYYY-MM-DDTHH:MM:SS[.fffffff]`.
    #[error("dateTime {0:?} is malformed")]
    Malformed(String),
    /// The JSON object lacks `dateTime` or `timeZone`.
    #[error("dateTimeTimeZone needs dateTime and timeZone")]
    MissingField,
}

/// Resolves a Windows or IANA zone name.
pub fn zone(name: &str) -> Result<Tz, TimeError> {
    let trimmed = name.trim();
    if let Some((_, iana)) = WINDOWS_ZONES.iter().find(|(win, _)| win.eq_ignore_ascii_case(trimmed)) {
        return iana.parse::<Tz>().map_err(|_| TimeError::UnknownZone(name.into()));
    }
    trimmed.parse::<Tz>().map_err(|_| TimeError::UnknownZone(name.into()))
}

/// Parses a `dateTime` without offset, with 0 to 7 fraction digits.
pub fn parse_local(text: &str) -> Result<NaiveDateTime, TimeError> {
    let t = text.trim();
    let time_part = t.split_once('T').map(|(_, time)| time).unwrap_or("");
    if t.ends_with('Z') || t.ends_with('z') || time_part.contains('+') || time_part.contains('-') {
        return Err(TimeError::OffsetNotAllowed(text.into()));
    }
    // chrono's %.f accepts up to 9 digits; Graph sends 7.
    NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M"))
        .map_err(|_| TimeError::Malformed(text.into()))
}

/// Converts local wall-clock time in `tz` to UTC: gap -> shifted forward by the gap, fold -> the standard-time
/// instant, which is the later one (the clock was set back from daylight saving to standard time; Windows zones
/// call Dublin's winter time standard time too, whatever the tz database's "negative DST" says).
pub fn local_to_utc(local: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(_, later) => later.with_timezone(&Utc),
        LocalResult::None => {
            // The wall clock jumped over `local`: the offset before the gap applies, which lands past the gap.
            let before = local.checked_sub_signed(Duration::hours(3)).unwrap_or(local);
            let offset = match tz.from_local_datetime(&before) {
                LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.naive_utc() - t.naive_local(),
                LocalResult::None => Duration::zero(),
            };
            Utc.from_utc_datetime(&local.checked_add_signed(offset).unwrap_or(local))
        }
    }
}

/// A parsed `dateTimeTimeZone`.
#[derive(Debug, Clone, PartialEq)]
pub struct ZonedTime {
    /// Wall-clock time as sent.
    pub local: NaiveDateTime,
    /// Zone name as sent.
    pub zone_name: String,
    /// The instant.
    pub utc: DateTime<Utc>,
}

/// Parses a JSON `{"dateTime","timeZone"}` object.
pub fn parse_zoned(value: &Value) -> Result<ZonedTime, TimeError> {
    let date_time = value.get("dateTime").and_then(Value::as_str).ok_or(TimeError::MissingField)?;
    let zone_name = value.get("timeZone").and_then(Value::as_str).unwrap_or("UTC");
    let tz = zone(zone_name)?;
    let local = parse_local(date_time)?;
    Ok(ZonedTime { local, zone_name: zone_name.to_string(), utc: local_to_utc(local, tz) })
}

/// Formats a wall-clock time the way Graph does: 7 fraction digits, no offset.
pub fn format_local(local: NaiveDateTime) -> String {
    let nanos = local.and_utc().timestamp_subsec_nanos();
    format!("{}.{:07}", local.format("%Y-%m-%dT%H:%M:%S"), nanos / 100)
}

/// The zone answers are rendered in: UTC, or the `Prefer: outlook.timezone` zone.
#[derive(Debug, Clone)]
pub struct OutputZone {
    /// Name echoed in `timeZone`.
    pub name: String,
    /// Rules.
    pub tz: Tz,
}

impl Default for OutputZone {
    fn default() -> Self {
        Self { name: "UTC".into(), tz: Tz::UTC }
    }
}

impl OutputZone {
    /// Renders an instant as a `dateTimeTimeZone` object.
    pub fn render(&self, instant: DateTime<Utc>) -> Value {
        let local = instant.with_timezone(&self.tz).naive_local();
        json!({"dateTime": format_local(local), "timeZone": self.name})
    }

    /// Renders a floating wall-clock time (all-day events) as a `dateTimeTimeZone` object.
    pub fn render_floating(&self, local: NaiveDateTime) -> Value {
        json!({"dateTime": format_local(local), "timeZone": self.name})
    }
}

/// Parses a query parameter such as calendarView's `startDateTime`: its own offset applies, UTC when it has none.
pub fn parse_query_instant(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text.trim()) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%dT%H:%M"))
        .ok()
        .map(|n| n.and_utc())
}

/// The window parameter `name` (`startDateTime`, `endDateTime`) of a query, its name matched case-insensitively
/// as Graph does (its own delta example writes `startdatetime`), parsed with [`parse_query_instant`].
pub fn query_instant(query: &std::collections::HashMap<String, String>, name: &str) -> Option<DateTime<Utc>> {
    query.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).and_then(|(_, v)| parse_query_instant(v))
}

/// Formats an instant as Graph formats `createdDateTime` (UTC, 7 digits, `Z`).
pub fn format_instant(instant: DateTime<Utc>) -> String {
    format!("{}Z", format_local(instant.naive_utc()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_iana_names_resolve_to_the_same_rules() {
        let win = parse_zoned(&json!({"dateTime":"2025-06-01T10:00:00","timeZone":"W. Europe Standard Time"}));
        let iana = parse_zoned(&json!({"dateTime":"2025-06-01T10:00:00","timeZone":"Europe/Oslo"}));
        assert_eq!(win.map(|z| z.utc), iana.map(|z| z.utc));
    }

    #[test]
    fn an_offset_inside_date_time_is_rejected() {
        for bad in ["2025-06-01T10:00:00Z", "2025-06-01T10:00:00+02:00", "2025-06-01T10:00:00-05:00"] {
            assert!(matches!(parse_local(bad), Err(TimeError::OffsetNotAllowed(_))), "{bad}");
        }
    }

    #[test]
    fn seven_fraction_digits_are_accepted_and_produced() {
        let local = parse_local("2017-04-15T11:00:00.1234567").expect("valid");
        assert_eq!(format_local(local), "2017-04-15T11:00:00.1234567");
    }

    #[test]
    fn a_time_in_the_spring_gap_moves_forward_and_a_repeated_time_is_read_as_standard_time() {
        let oslo = zone("Europe/Oslo").expect("zone");
        let gap = local_to_utc(parse_local("2025-03-30T02:30:00").expect("t"), oslo);
        assert_eq!(format_instant(gap), "2025-03-30T01:30:00.0000000Z");
        // 02:30 on the fold day is 00:30Z in summer time and 01:30Z in standard time (CET, +01:00).
        let fold = local_to_utc(parse_local("2025-10-26T02:30:00").expect("t"), oslo);
        assert_eq!(format_instant(fold), "2025-10-26T01:30:00.0000000Z");
        // The same through a Windows zone name, as Outlook clients send it.
        let windows = local_to_utc(
            parse_local("2025-10-26T02:30:00").expect("t"),
            zone("W. Europe Standard Time").expect("zone"),
        );
        assert_eq!(format_instant(windows), "2025-10-26T01:30:00.0000000Z");
        // Dublin's tz rules call winter time "negative daylight saving": its fold still takes the later instant.
        let dublin = local_to_utc(parse_local("2025-10-26T01:30:00").expect("t"), zone("Europe/Dublin").expect("zone"));
        assert_eq!(format_instant(dublin), "2025-10-26T01:30:00.0000000Z");
    }

    #[test]
    fn malformed_input_never_panics() {
        for junk in ["", "T", "2025", "2025-13-01T00:00:00", "\u{0}", "2025-01-01T25:00:00", "ääää-T"] {
            assert!(parse_local(junk).is_err(), "{junk:?}");
        }
        assert!(parse_zoned(&json!({"dateTime": 5})).is_err());
        assert!(parse_zoned(&json!({"dateTime":"2025-01-01T00:00:00","timeZone":"Mars/Olympus"})).is_err());
        assert!(parse_query_instant("garbage").is_none());
    }

    #[test]
    fn query_instants_keep_their_own_offset_and_default_to_utc() {
        let with = parse_query_instant("2025-01-01T10:00:00+01:00").expect("t");
        let without = parse_query_instant("2025-01-01T09:00:00").expect("t");
        assert_eq!(with, without);
    }
}
