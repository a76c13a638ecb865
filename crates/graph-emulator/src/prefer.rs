//! The `Prefer` request header: `odata.maxpagesize`, `outlook.timezone`, `IdType`.
//!
//! Invariant: unknown or malformed preferences are ignored, as HTTP says preferences may be.

use axum::http::HeaderMap;

use crate::time::{self, OutputZone};

/// Preferences the emulator honours.
#[derive(Debug, Clone, Default)]
pub struct Prefer {
    /// `odata.maxpagesize=N`.
    pub max_page_size: Option<usize>,
    /// `outlook.timezone="..."`, resolved.
    pub output_zone: OutputZone,
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
                        }
                    }
                    _ => {}
                }
            }
        }
        prefer
    }
}
