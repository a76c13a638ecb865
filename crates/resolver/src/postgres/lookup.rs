//! Rows the resolver forgot and needs again. A reservation that ended before the window is forgotten with its
//! room links (memory stays bounded by the window, not by years of history). When the booking system later moves
//! it back into the window, the UPDATE carries only its main row, and only the columns PostgreSQL sent (an
//! unchanged TOAST value is missing): applied alone it would have no room, and its event would go. So before
//! such a transaction is applied, the reservation's main row and links are read from the booking database and
//! put in front of it, positioned just before the transaction's own records.
//!
//! Invariant: the rows read are at least as new as the transaction (the database is read after it committed), so
//! the transaction's own columns win where it has them, and every later record of the stream still applies
//! on top: the state converges on the stream's, only possibly ahead for the moment in between.

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use serde_json::Value as Json;
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls};
use tracing::{info, warn};
use vocabulary::ReservationKind;

use crate::error::ResolverError;
use crate::kafka::cdc::{CdcRecord, Cell, Op, Row};

fn pg(context: &str) -> impl FnOnce(tokio_postgres::Error) -> ResolverError + '_ {
    move |source| ResolverError::Postgres { context: context.to_owned(), source }
}

/// A connection to the booking database and the column types of the tables read.
pub struct Lookup {
    client: Client,
    types: Mutex<HashMap<String, HashMap<String, String>>>,
}

impl std::fmt::Debug for Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lookup").finish_non_exhaustive()
    }
}

impl Lookup {
    /// Connects to the booking database.
    pub async fn connect(database: &tokio_postgres::Config) -> Result<Self, ResolverError> {
        let (client, connection) = database.connect(NoTls).await.map_err(pg("connecting for lookups"))?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                warn!(error = %err, "the resolver's lookup connection ended");
            }
        });
        Ok(Lookup { client, types: Mutex::new(HashMap::new()) })
    }

    /// The records that restore a forgotten reservation: its main row and one record per room link, positioned
    /// just before `before` (the position of the transaction's first record).
    pub async fn reservation(
        &self,
        kind: ReservationKind,
        id: i32,
        before: (i64, i64),
    ) -> Result<Vec<CdcRecord>, ResolverError> {
        let table = kind.table();
        let types = self.types_of(table).await?;
        let row = self
            .client
            .query_opt(&format!("select to_jsonb(t) from {table} t where id = $1"), &[&id])
            .await
            .map_err(pg("reading a forgotten reservation"))?;
        let record = |table: &str, key: Row, after: Row| CdcRecord {
            table: table.to_owned(),
            op: Op::Insert,
            key,
            after: Some(after),
            commit_lsn: before.0,
            tx_position: before.1 - 1,
            commit_ts_ms: 0,
            snapshot: false,
        };
        let mut out = Vec::new();
        let Some(row) = row else {
            // Deleted since: the stream's DELETE follows; nothing to restore.
            return Ok(out);
        };
        let json: Json = row.get(0);
        let main: Row = json
            .as_object()
            .map(|fields| fields.iter().map(|(name, value)| (name.clone(), cell(types.get(name), value))).collect())
            .unwrap_or_default();
        let key: Row = [("id".to_owned(), Cell::Int(i64::from(id)))].into_iter().collect();
        out.push(record(table, key, main));
        let (links, column) = vocabulary::tables::link_of(kind);
        let links = links.name;
        let resources = self
            .client
            .query(&format!("select resource_id from {links} where {column} = $1"), &[&id])
            .await
            .map_err(pg("reading a forgotten reservation's rooms"))?;
        for resource in resources {
            let resource: i32 = resource.get(0);
            let key: Row = [
                (column.to_owned(), Cell::Int(i64::from(id))),
                ("resource_id".to_owned(), Cell::Int(i64::from(resource))),
            ]
            .into_iter()
            .collect();
            out.push(record(links, key.clone(), key));
        }
        info!(
            kind = kind.as_str(),
            id,
            rooms = out.len() - 1,
            "a forgotten reservation moved into the window: read again"
        );
        Ok(out)
    }

    async fn types_of(&self, table: &str) -> Result<HashMap<String, String>, ResolverError> {
        let mut cache = self.types.lock().await;
        if let Some(types) = cache.get(table) {
            return Ok(types.clone());
        }
        let rows = self
            .client
            .query(
                "select attname::text, format_type(atttypid, atttypmod) from pg_attribute
                 where attrelid = $1::text::regclass and attnum > 0 and not attisdropped",
                &[&table],
            )
            .await
            .map_err(pg("reading a table's column types"))?;
        let types: HashMap<String, String> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        cache.insert(table.to_owned(), types.clone());
        Ok(types)
    }
}

/// A JSON value of `to_jsonb` as the cell the CDC stream would carry for a column of type `ty`.
fn cell(ty: Option<&String>, value: &Json) -> Cell {
    let ty = ty.map(String::as_str).unwrap_or_default();
    match value {
        Json::Null => Cell::Null,
        Json::Bool(b) => Cell::Bool(*b),
        Json::Number(n) if matches!(ty, "integer" | "smallint" | "bigint") => n.as_i64().map_or(Cell::Other, Cell::Int),
        Json::Number(n) => Cell::Text(n.to_string()),
        Json::String(s) if ty.starts_with("timestamp without time zone") => {
            NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .map_or(Cell::Other, |t| Cell::Local(t.and_utc().timestamp_micros()))
        }
        Json::String(s) if ty.starts_with("timestamp with time zone") => chrono::DateTime::parse_from_rfc3339(s)
            .or_else(|_| chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%#z"))
            .map_or(Cell::Other, |t| Cell::Instant(t.timestamp_micros())),
        Json::String(s) if ty == "date" => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| i32::try_from(d.signed_duration_since(NaiveDate::default()).num_days()).ok())
            .map_or(Cell::Other, Cell::Date),
        Json::String(s) => Cell::Text(s.clone()),
        other => Cell::Text(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values_become_the_cells_the_stream_carries() {
        let ty = |t: &str| Some(t.to_owned());
        assert_eq!(cell(ty("integer").as_ref(), &serde_json::json!(7)), Cell::Int(7));
        assert_eq!(cell(ty("numeric(20,2)").as_ref(), &serde_json::json!(0.5)), Cell::Text("0.5".into()));
        let local = NaiveDateTime::parse_from_str("2026-03-24T18:00:00", "%Y-%m-%dT%H:%M:%S").expect("t");
        assert_eq!(
            cell(ty("timestamp without time zone").as_ref(), &serde_json::json!("2026-03-24T18:00:00")),
            Cell::Local(local.and_utc().timestamp_micros())
        );
        assert_eq!(
            cell(ty("timestamp with time zone").as_ref(), &serde_json::json!("1970-01-01T00:00:01+00:00")),
            Cell::Instant(1_000_000)
        );
        assert_eq!(cell(ty("date").as_ref(), &serde_json::json!("1970-01-11")), Cell::Date(10));
        assert_eq!(cell(ty("character varying(50)").as_ref(), &serde_json::json!("x")), Cell::Text("x".into()));
        assert_eq!(cell(ty("text").as_ref(), &Json::Null), Cell::Null);
    }
}
