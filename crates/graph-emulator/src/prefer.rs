//! The `Prefer` request header: `odata.maxpagesize`, `outlook.timezone`, `IdType`, and the `Preference-Applied`
//! answer naming those that were honoured.
//!
//! Invariants: unknown or malformed preferences are ignored, as HTTP says preferences may be (RFC 7240); an
//! answer names only preferences it really applied (an unknown zone is not claimed), in the forms Graph's docs
//! show (`outlook.timezone="Pacific Standard Time"`, `odata.maxpagesize=2`, `IdType="ImmutableId"`).

use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;

use crate::time::{self, OutputZone};

/// Preferences the emulator honours.
#[derive(Debug, Clone, Default)]
pub struct Prefer {
    /// `odata.maxpagesize=N`.
    pub max_page_size: Option<usize>,
    /// `outlook.timezone="..."`, resolved.
    pub output_zone: OutputZone,
    /// Whether a resolvable `outlook.timezone` was sent (UTC is the default, not a preference).
    pub zone_asked: bool,
    /// `IdType="ImmutableId"`. The emulator's ids never change anyway, so it is always honoured.
    pub immutable_id: bool,
}

/// Whether an answer is a page of a collection (where `odata.maxpagesize` can apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paging {
    /// A page of a collection sized by `odata.maxpagesize`.
    Sized,
    /// A single entity, or a page whose size came from elsewhere (`$top`).
    NotSized,
}

impl Prefer {
    /// Reads every `Prefer` header (several headers or comma-separated values).
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut prefer = Self::default();
        for value in headers.get_all("prefer") {
            let Ok(text) = value.to_str() else { continue };
            for part in text.split(',') {
                let Some((key, val)) = part.split_once('=') else {
                    continue;
                };
                let val = val.trim().trim_matches('"');
                match key.trim().to_ascii_lowercase().as_str() {
                    "odata.maxpagesize" => prefer.max_page_size = val.parse().ok().filter(|n| *n > 0),
                    "outlook.timezone" => {
                        if let Ok(tz) = time::zone(val) {
                            prefer.output_zone = OutputZone { name: val.to_string(), tz };
                            prefer.zone_asked = true;
                        }
                    }
                    "idtype" => prefer.immutable_id = val.eq_ignore_ascii_case("ImmutableId"),
                    _ => {}
                }
            }
        }
        prefer
    }

    /// The `Preference-Applied` value for an answer, if any preference was honoured.
    pub fn applied(&self, paging: Paging) -> Option<String> {
        let mut applied = Vec::new();
        if let (Some(n), Paging::Sized) = (self.max_page_size, paging) {
            applied.push(format!("odata.maxpagesize={n}"));
        }
        if self.zone_asked {
            applied.push(format!("outlook.timezone=\"{}\"", self.output_zone.name));
        }
        if self.immutable_id {
            applied.push("IdType=\"ImmutableId\"".to_string());
        }
        (!applied.is_empty()).then(|| applied.join(", "))
    }

    /// Adds `Preference-Applied` to a successful `response`.
    pub fn stamp(&self, response: &mut Response, paging: Paging) {
        if !response.status().is_success() {
            return;
        }
        if let Some(value) = self.applied(paging).and_then(|v| HeaderValue::from_str(&v).ok()) {
            response.headers_mut().insert("preference-applied", value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefer(value: &'static str) -> Prefer {
        let mut headers = HeaderMap::new();
        headers.insert("prefer", HeaderValue::from_static(value));
        Prefer::from_headers(&headers)
    }

    #[test]
    fn only_honoured_preferences_are_named() {
        let p = prefer(r#"odata.maxpagesize=5, outlook.timezone="W. Europe Standard Time", IdType="ImmutableId""#);
        assert_eq!(
            p.applied(Paging::Sized).as_deref(),
            Some(r#"odata.maxpagesize=5, outlook.timezone="W. Europe Standard Time", IdType="ImmutableId""#)
        );
        assert_eq!(
            p.applied(Paging::NotSized).as_deref(),
            Some(r#"outlook.timezone="W. Europe Standard Time", IdType="ImmutableId""#)
        );
        assert_eq!(prefer(r#"outlook.timezone="Nowhere/Atlantis""#).applied(Paging::Sized), None);
        assert_eq!(prefer("odata.maxpagesize=0").applied(Paging::Sized), None);
        assert_eq!(prefer("respond-async").applied(Paging::Sized), None);
    }
}
