//! The REST endpoints, grouped by the resource they serve, and what they share: the schema request body and the
//! version path segment.

pub mod compatibility;
pub mod config;
pub mod schemas;
pub mod subjects;

use serde::Deserialize;

use super::api_error::ApiError;
use super::avro::ParsedSchema;
use super::store::VersionSpec;

/// The body of register, lookup and compatibility requests.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaRequest {
    /// The schema text.
    #[serde(default)]
    schema: Option<String>,
    /// `AVRO` (the default when absent); the only type this registry serves.
    #[serde(default)]
    schema_type: Option<String>,
    /// Schema references; only an empty list is accepted.
    #[serde(default)]
    references: Option<Vec<serde_json::Value>>,
}

impl SchemaRequest {
    /// The schema, parsed, and its text; 422/42201 for anything this registry does not accept.
    pub fn parse(&self) -> Result<(ParsedSchema, &str), ApiError> {
        if let Some(kind) = &self.schema_type {
            if !kind.eq_ignore_ascii_case("AVRO") {
                return Err(ApiError::invalid_schema(format!(
                    "Invalid schema type {kind}: this registry only serves AVRO"
                )));
            }
        }
        if self.references.as_ref().is_some_and(|references| !references.is_empty()) {
            return Err(ApiError::invalid_schema("Schema references are not supported by this registry"));
        }
        let text = match self.schema.as_deref() {
            Some(text) if !text.trim().is_empty() => text,
            _ => return Err(ApiError::invalid_schema("Empty schema")),
        };
        let parsed = ParsedSchema::parse(text).map_err(|err| ApiError::invalid_schema(err.to_string()))?;
        Ok((parsed, text))
    }
}

/// Parses a version path segment: `latest`, `-1` (Confluent's alias for latest) or 1..=2^31-1.
pub fn parse_version(segment: &str) -> Result<VersionSpec, ApiError> {
    if segment.eq_ignore_ascii_case("latest") || segment == "-1" {
        return Ok(VersionSpec::Latest);
    }
    match segment.parse::<i32>() {
        Ok(n) if n >= 1 => Ok(VersionSpec::Number(n)),
        _ => Err(ApiError::invalid_version(segment)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_latest_or_positive_integers() {
        assert_eq!(parse_version("latest").unwrap(), VersionSpec::Latest);
        assert_eq!(parse_version("-1").unwrap(), VersionSpec::Latest);
        assert_eq!(parse_version("7").unwrap(), VersionSpec::Number(7));
        for bad in ["0", "-2", "x", "", "2147483648", "1.5"] {
            assert_eq!(parse_version(bad).unwrap_err().code, 42202, "{bad:?}");
        }
    }

    #[test]
    fn only_avro_without_references_is_accepted() {
        let request = |body: &str| serde_json::from_str::<SchemaRequest>(body).unwrap();
        assert!(request(r#"{"schema":"\"string\""}"#).parse().is_ok());
        assert!(request(r#"{"schema":"\"string\"","schemaType":"AVRO","references":[]}"#).parse().is_ok());
        for body in [
            r#"{"schema":"\"string\"","schemaType":"PROTOBUF"}"#,
            r#"{"schema":"\"string\"","references":[{"name":"a","subject":"b","version":1}]}"#,
            r#"{"schema":""}"#,
            r#"{}"#,
            r#"{"schema":"{\"type\":\"record\"}"}"#,
        ] {
            assert_eq!(request(body).parse().unwrap_err().code, 42201, "{body}");
        }
    }
}
