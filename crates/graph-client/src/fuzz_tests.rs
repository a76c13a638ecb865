//! Randomised no-panic tests for the client's parsers of Graph output (Retry-After, error bodies, times, events).
//!
//! Invariant under test: whatever Graph (or a proxy in front of it) answers, decoding returns a value or an
//! error, never a panic.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::GraphError;
use crate::model::{DateTimeTimeZone, Event};
use crate::retry::parse_retry_after;

const PIECES: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"error\"",
    "\"code\"",
    ":",
    ",",
    "\"x\"",
    "1",
    "2.128",
    "-",
    "e400",
    "NaN",
    " ",
    "GMT",
    "Wed, 21 Oct 2015 07:28:00",
    "\"innerError\"",
    "\"request-id\"",
    "null",
    "\"start\"",
    "\"dateTime\"",
    "\"timeZone\"",
    "\"UTC\"",
    "2025-01-01T10:00:00.0000000",
    "\"@removed\"",
    "\"showAs\"",
    "ø",
    "\u{0}",
];

fn random_text(rng: &mut StdRng) -> String {
    (0..rng.gen_range(0..16)).map(|_| PIECES[rng.gen_range(0..PIECES.len())]).collect()
}

#[test]
fn decoders_of_graph_output_never_panic_on_random_input() {
    let mut rng = StdRng::seed_from_u64(3);
    let now = chrono::Utc::now();
    for _ in 0..20_000 {
        let text = random_text(&mut rng);
        let _ = parse_retry_after(&text, now);
        let _ = GraphError::from_response(rng.gen_range(100..600), None, text.as_bytes()).classify();
        let _ = serde_json::from_str::<Event>(&text);
        let t = DateTimeTimeZone { date_time: text.clone(), time_zone: random_text(&mut rng) };
        let _ = t.to_utc();
        let random_bytes: Vec<u8> = (0..rng.gen_range(0..32)).map(|_| rng.gen()).collect();
        let _ = GraphError::from_response(500, None, &random_bytes);
    }
}
