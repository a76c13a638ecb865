//! Randomised no-panic tests for every parser of outside input (filters, expands, times, recurrences, batches).
//!
//! Invariant under test: whatever bytes a client sends, parsers answer `Ok` or `Err`, never panic.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::filter::{parse_any_filter, parse_expand};
use crate::recurrence::Recurrence;
use crate::time::{parse_local, parse_query_instant, parse_zoned};

/// Pieces that make inputs likely to get deep into the grammars.
const PIECES: &[&str] = &[
    "singleValueExtendedProperties",
    "/Any(",
    "ep",
    ":",
    " ",
    "ep/id",
    "ep/value",
    " eq ",
    "'",
    "''",
    "(",
    ")",
    "$filter",
    "=",
    " and ",
    " or ",
    "id",
    "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name X",
    "2025-",
    "13",
    "-01",
    "T",
    "10:00:00",
    ".1234567",
    "Z",
    "+01:00",
    "ø",
    "\u{0}",
    "9999999999",
    "-",
    "𝄞",
];

fn random_text(rng: &mut StdRng) -> String {
    (0..rng.gen_range(0..12)).map(|_| PIECES[rng.gen_range(0..PIECES.len())]).collect()
}

fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.gen_range(0..7) {
        0 => Value::Null,
        1 => json!(rng.gen::<i64>()),
        2 => json!(rng.gen_range(0u32..40)),
        3 => json!(random_text(rng)),
        4 => json!(["monday", "friday", "funday", "sunday"][rng.gen_range(0..4)]),
        5 if depth < 3 => Value::Array((0..rng.gen_range(0..3)).map(|_| random_value(rng, depth + 1)).collect()),
        _ => json!(
            [
                "daily",
                "weekly",
                "absoluteMonthly",
                "relativeMonthly",
                "absoluteYearly",
                "relativeYearly",
                "endDate",
                "noEnd",
                "numbered",
                "2025-01-31",
                "first",
                "last"
            ][rng.gen_range(0..12)]
        ),
    }
}

#[test]
fn filter_expand_and_time_parsers_never_panic_on_random_input() {
    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..20_000 {
        let text = random_text(&mut rng);
        let _ = parse_any_filter(&text);
        let _ = parse_expand(&text);
        let _ = parse_local(&text);
        let _ = parse_query_instant(&text);
        let _ = parse_zoned(&json!({"dateTime": text, "timeZone": random_text(&mut rng)}));
    }
}

#[test]
fn recurrence_parsing_and_expansion_never_panic_on_random_input() {
    let mut rng = StdRng::seed_from_u64(2);
    let keys = ["type", "interval", "daysOfWeek", "dayOfMonth", "month", "index", "firstDayOfWeek"];
    let range_keys = ["type", "startDate", "endDate", "numberOfOccurrences", "recurrenceTimeZone"];
    for _ in 0..5_000 {
        let mut pattern = serde_json::Map::new();
        for k in keys {
            if rng.gen_bool(0.7) {
                pattern.insert(k.to_string(), random_value(&mut rng, 0));
            }
        }
        let mut range = serde_json::Map::new();
        for k in range_keys {
            if rng.gen_bool(0.7) {
                range.insert(k.to_string(), random_value(&mut rng, 0));
            }
        }
        if let Ok(r) = Recurrence::parse(&json!({"pattern": pattern, "range": range})) {
            let horizon = chrono::NaiveDate::from_ymd_opt(2100, 1, 1).unwrap_or_default();
            let _ = r.dates(horizon);
        }
    }
}
