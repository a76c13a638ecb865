//! Compatibility levels and the check a new schema must pass before it becomes a subject's next version.
//!
//! The check is Avro schema resolution as implemented by apache-avro's `SchemaCompatibility::can_read`
//! (field added/removed with or without defaults, type promotions, unions, enums, nested records, maps and
//! arrays). It does not follow aliases (apache-avro does not resolve them), so a rename via `aliases` is reported
//! incompatible where Confluent would accept it.
//!
//! ```text
//!  BACKWARD  new schema reads data written with the latest version     FORWARD  latest reads data written with new
//!  FULL      both                                                      NONE     no check
//!  *_TRANSITIVE: against every live version instead of the latest only
//! ```

use std::fmt;
use std::str::FromStr;

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;

/// A subject's (or the global) compatibility level, as Confluent names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Level {
    /// No check.
    None,
    /// The new schema can read data written with the latest version (Confluent's default).
    #[default]
    Backward,
    /// The new schema can read data written with every version.
    BackwardTransitive,
    /// The latest version can read data written with the new schema.
    Forward,
    /// Every version can read data written with the new schema.
    ForwardTransitive,
    /// Backward and forward against the latest version.
    Full,
    /// Backward and forward against every version.
    FullTransitive,
}

/// A level name Confluent does not know.
#[derive(Debug, thiserror::Error)]
#[error("Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive")]
pub struct UnknownLevel;

impl FromStr for Level {
    type Err = UnknownLevel;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Ok(match name.to_ascii_uppercase().as_str() {
            "NONE" => Level::None,
            "BACKWARD" => Level::Backward,
            "BACKWARD_TRANSITIVE" => Level::BackwardTransitive,
            "FORWARD" => Level::Forward,
            "FORWARD_TRANSITIVE" => Level::ForwardTransitive,
            "FULL" => Level::Full,
            "FULL_TRANSITIVE" => Level::FullTransitive,
            _ => return Err(UnknownLevel),
        })
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::None => "NONE",
            Level::Backward => "BACKWARD",
            Level::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Level::Forward => "FORWARD",
            Level::ForwardTransitive => "FORWARD_TRANSITIVE",
            Level::Full => "FULL",
            Level::FullTransitive => "FULL_TRANSITIVE",
        })
    }
}

impl Level {
    /// Whether the level compares against every live version rather than the latest only.
    pub fn is_transitive(self) -> bool {
        matches!(self, Level::BackwardTransitive | Level::ForwardTransitive | Level::FullTransitive)
    }

    fn backward(self) -> bool {
        matches!(self, Level::Backward | Level::BackwardTransitive | Level::Full | Level::FullTransitive)
    }

    fn forward(self) -> bool {
        matches!(self, Level::Forward | Level::ForwardTransitive | Level::Full | Level::FullTransitive)
    }

    /// Checks `new` against `existing` (already narrowed to the latest version or all, by the caller) and
    /// returns why it is incompatible; empty means compatible.
    pub fn problems(self, new: &Schema, existing: &[(i32, Schema)]) -> Vec<String> {
        let mut problems = Vec::new();
        for (version, old) in existing {
            if self.backward() {
                if let Err(err) = SchemaCompatibility::can_read(old, new) {
                    problems.push(format!("new schema cannot read data written with version {version}: {err}"));
                }
            }
            if self.forward() {
                if let Err(err) = SchemaCompatibility::can_read(new, old) {
                    problems.push(format!("version {version} cannot read data written with the new schema: {err}"));
                }
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(fields: &str) -> Schema {
        Schema::parse_str(&format!(r#"{{"type":"record","name":"Booking","fields":[{fields}]}}"#)).unwrap()
    }

    #[test]
    fn level_names_round_trip_case_insensitively() {
        for name in
            ["NONE", "backward", "Backward_Transitive", "FORWARD", "forward_transitive", "FULL", "full_transitive"]
        {
            let level: Level = name.parse().unwrap();
            assert_eq!(level.to_string(), name.to_ascii_uppercase());
        }
        assert!("sideways".parse::<Level>().is_err());
    }

    #[test]
    fn backward_accepts_a_field_added_with_a_default_and_rejects_one_without() {
        let v1 = vec![(1, schema(r#"{"name":"id","type":"long"}"#))];
        let with_default = schema(r#"{"name":"id","type":"long"},{"name":"room","type":"string","default":""}"#);
        let without_default = schema(r#"{"name":"id","type":"long"},{"name":"room","type":"string"}"#);
        assert!(Level::Backward.problems(&with_default, &v1).is_empty());
        assert_eq!(Level::Backward.problems(&without_default, &v1).len(), 1);
        assert!(Level::None.problems(&without_default, &v1).is_empty());
    }

    #[test]
    fn forward_rejects_removing_a_field_without_default_that_old_readers_need() {
        let v1 = vec![(1, schema(r#"{"name":"id","type":"long"},{"name":"room","type":"string"}"#))];
        let removed = schema(r#"{"name":"id","type":"long"}"#);
        assert!(Level::Backward.problems(&removed, &v1).is_empty());
        assert_eq!(Level::Forward.problems(&removed, &v1).len(), 1);
        assert_eq!(Level::Full.problems(&removed, &v1).len(), 1);
    }
}
