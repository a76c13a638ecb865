//! Retry timing: `Retry-After` parsing and jittered exponential backoff.
//!
//! Invariants: a server's `Retry-After` is always honoured (we never retry earlier than asked), but capped at the
//! configured maximum so a corrupt header cannot park a worker for days; malformed headers are ignored, never fatal.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;

/// Parses `Retry-After`: seconds (fractional allowed, e.g. "2.128") or an HTTP date.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(86_400.0)));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// Backoff before retry number `attempt` (1-based): full jitter over `base * 2^(attempt-1)`, capped at `max`.
pub fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let exp = base.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(20)));
    let ceiling = exp.min(max);
    let jitter = rand::thread_rng().gen_range(0.5..=1.0);
    ceiling.mul_f64(jitter)
}

/// How long to wait before the next attempt: the server's hint if any (capped), else backoff.
pub fn wait_before_retry(attempt: u32, retry_after: Option<Duration>, base: Duration, max: Duration) -> Duration {
    match retry_after {
        Some(hint) => hint.min(max),
        None => backoff(attempt, base, max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractional_and_integer_seconds_and_http_dates_parse() {
        let now = Utc::now();
        assert_eq!(parse_retry_after("2.128", now), Some(Duration::from_millis(2128)));
        assert_eq!(parse_retry_after(" 3 ", now), Some(Duration::from_secs(3)));
        let date = DateTime::parse_from_rfc2822("Wed, 21 Oct 2015 07:28:00 GMT").expect("date").with_timezone(&Utc);
        let wait = parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", date);
        assert_eq!(wait, Some(Duration::from_secs(10)));
    }

    #[test]
    fn malformed_retry_after_values_are_ignored_without_panicking() {
        let now = Utc::now();
        for junk in ["", "-1", "NaN", "inf", "soon", "1e400", "\u{0}", "Wed, 99 Foo"] {
            assert_eq!(parse_retry_after(junk, now), None, "{junk:?}");
        }
        assert_eq!(parse_retry_after("1e9", now), Some(Duration::from_secs(86_400)));
    }

    #[test]
    fn backoff_grows_and_stays_under_the_cap() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        assert!(backoff(1, base, max) <= base);
        assert!(backoff(3, base, max) >= Duration::from_millis(200));
        assert!(backoff(50, base, max) <= max);
        assert_eq!(wait_before_retry(1, Some(Duration::from_secs(5)), base, max), max);
    }
}
