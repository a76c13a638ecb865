//! The content hash of a desired item: sha256 over a canonical serialisation of its content.
//!
//! Canonical: the JSON of [`DesiredContent`] with its fields in declaration order, no whitespace, instants as
//! integers. Equal content always gives an equal hash (the sink skips the write), and any visible change
//! (subject, body, times, all-day, show-as, sensitivity, location, categories) changes it.

use sha2::{Digest, Sha256};
use vocabulary::records::DesiredContent;

/// `sha256:<hex>` of the canonical serialisation of `content`.
pub fn content_hash(content: &DesiredContent) -> String {
    // Serialising a struct of strings, integers, booleans and a Vec<String> cannot fail.
    let canonical = serde_json::to_vec(content).unwrap_or_default();
    format!("sha256:{}", hex::encode(Sha256::digest(&canonical)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content() -> DesiredContent {
        DesiredContent {
            subject: "Fjordvik Idrettslag".into(),
            body: None,
            start: 1,
            end: 2,
            time_zone: "Europe/Oslo".into(),
            is_all_day: false,
            show_as: "busy".into(),
            sensitivity: "normal".into(),
            location: Some("Hall B".into()),
            categories: vec![],
        }
    }

    #[test]
    fn equal_content_hashes_equal_and_any_change_changes_the_hash() {
        assert_eq!(content_hash(&content()), content_hash(&content()));
        let mut moved = content();
        moved.end = 3;
        assert_ne!(content_hash(&content()), content_hash(&moved));
        let mut renamed = content();
        renamed.subject.push('!');
        assert_ne!(content_hash(&content()), content_hash(&renamed));
        assert!(content_hash(&content()).starts_with("sha256:"));
    }
}
