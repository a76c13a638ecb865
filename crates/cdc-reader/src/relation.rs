//! The shape of each captured table (published columns, their types, which form the key) and the cache of
//! shapes by relation OID that the stream keeps up to date.
//!
//! Invariant: a change is always interpreted with the shape PostgreSQL sent in the Relation message that
//! preceded it (pgoutput sends a new one after every ALTER TABLE), so a schema change is picked up without a
//! restart; columns are addressed by name, never by their position in the table.

use std::collections::HashMap;
use std::sync::Arc;

use crate::envelope::TableSchemas;
use crate::pgoutput::Relation;

/// Type OIDs the reader maps to specific Avro types (everything else travels as its text form).
pub mod oid {
    /// bool
    pub const BOOL: u32 = 16;
    /// int8
    pub const INT8: u32 = 20;
    /// int2
    pub const INT2: u32 = 21;
    /// int4
    pub const INT4: u32 = 23;
    /// json
    pub const JSON: u32 = 114;
    /// float4
    pub const FLOAT4: u32 = 700;
    /// float8
    pub const FLOAT8: u32 = 701;
    /// date
    pub const DATE: u32 = 1082;
    /// time without time zone
    pub const TIME: u32 = 1083;
    /// timestamp without time zone
    pub const TIMESTAMP: u32 = 1114;
    /// timestamp with time zone
    pub const TIMESTAMPTZ: u32 = 1184;
    /// numeric
    pub const NUMERIC: u32 = 1700;
    /// jsonb
    pub const JSONB: u32 = 3802;
}

/// One published column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Column name in PostgreSQL.
    pub name: String,
    /// Type OID.
    pub type_oid: u32,
    /// Part of the key (replica identity).
    pub key: bool,
}

/// The published shape of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableShape {
    /// Schema name.
    pub schema: String,
    /// Table name.
    pub table: String,
    /// Published columns in the order tuples carry them.
    pub columns: Vec<Column>,
    /// REPLICA IDENTITY FULL: old rows of UPDATE and DELETE carry every column.
    pub full_identity: bool,
}

impl TableShape {
    /// The shape a Relation message describes.
    pub fn from_relation(relation: &Relation) -> Self {
        TableShape {
            schema: relation.schema.clone(),
            table: relation.table.clone(),
            columns: relation
                .columns
                .iter()
                .map(|c| Column { name: c.name.clone(), type_oid: c.type_oid, key: c.key })
                .collect(),
            full_identity: relation.replica_identity == b'f',
        }
    }

    /// Key columns, in column order.
    pub fn key_columns(&self) -> impl Iterator<Item = (usize, &Column)> {
        self.columns.iter().enumerate().filter(|(_, c)| c.key)
    }
}

/// A table's shape together with the Avro schemas generated from it.
#[derive(Debug)]
pub struct Table {
    /// The shape.
    pub shape: TableShape,
    /// Its schemas.
    pub schemas: TableSchemas,
    /// Kafka topic of its changes.
    pub topic: String,
    /// Registered ids of its key and envelope schemas, once asked for.
    pub ids: std::sync::OnceLock<(u32, u32)>,
}

impl Table {
    /// A table with its schemas, ids not yet registered.
    pub fn new(shape: TableShape, schemas: TableSchemas, topic: String) -> Self {
        Table { shape, schemas, topic, ids: std::sync::OnceLock::new() }
    }
}

/// Shapes by relation OID, as the stream last described them.
#[derive(Debug, Default)]
pub struct RelationCache {
    tables: HashMap<u32, Arc<Table>>,
}

impl RelationCache {
    /// Records a Relation message. Returns `true` when the shape differs from the one known before (a new table
    /// or a schema change), in which case the schemas were regenerated.
    pub fn update<E>(
        &mut self,
        relation: &Relation,
        primary_keys: &HashMap<(String, String), Vec<String>>,
        build: impl FnOnce(TableShape) -> Result<Table, E>,
    ) -> Result<bool, E> {
        let mut shape = TableShape::from_relation(relation);
        // Under REPLICA IDENTITY FULL pgoutput flags every column as identity; the Kafka key stays the primary
        // key, as the catalog (and the snapshot) has it.
        if shape.full_identity {
            if let Some(keys) = primary_keys.get(&(shape.schema.clone(), shape.table.clone())) {
                for column in &mut shape.columns {
                    column.key = keys.contains(&column.name);
                }
            }
        }
        if self.tables.get(&relation.oid).is_some_and(|known| known.shape == shape) {
            return Ok(false);
        }
        self.tables.insert(relation.oid, Arc::new(build(shape)?));
        Ok(true)
    }

    /// The table a change refers to.
    pub fn get(&self, oid: u32) -> Option<Arc<Table>> {
        self.tables.get(&oid).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::TableSchemas;
    use crate::pgoutput::RelationColumn;

    fn relation(columns: &[&str]) -> Relation {
        Relation {
            oid: 7,
            schema: "public".into(),
            table: "bb_event".into(),
            replica_identity: b'd',
            columns: columns
                .iter()
                .enumerate()
                .map(|(i, name)| RelationColumn {
                    key: i == 0,
                    name: (*name).into(),
                    type_oid: oid::INT4,
                    type_modifier: -1,
                })
                .collect(),
        }
    }

    fn build(shape: TableShape) -> Result<Table, crate::envelope::RowError> {
        let schemas = TableSchemas::generate(&shape)?;
        Ok(Table::new(shape, schemas, "t".into()))
    }

    #[test]
    fn a_full_identity_relation_keeps_the_primary_key_as_key() {
        let mut cache = RelationCache::default();
        let mut full = relation(&["id", "active"]);
        full.replica_identity = b'f';
        for column in &mut full.columns {
            column.key = true;
        }
        let keys = HashMap::from([(("public".to_owned(), "bb_event".to_owned()), vec!["id".to_owned()])]);
        assert_eq!(cache.update(&full, &keys, build), Ok(true));
        let table = cache.get(7).expect("cached");
        let key_names: Vec<&str> = table.shape.key_columns().map(|(_, c)| c.name.as_str()).collect();
        assert_eq!(key_names, ["id"]);
    }

    #[test]
    fn an_added_column_replaces_the_cached_shape() {
        let mut cache = RelationCache::default();
        let keys = HashMap::new();
        assert_eq!(cache.update(&relation(&["id", "active"]), &keys, build), Ok(true));
        assert_eq!(cache.update(&relation(&["id", "active"]), &keys, build), Ok(false));
        assert_eq!(cache.update(&relation(&["id", "active", "note"]), &keys, build), Ok(true));
        let table = cache.get(7).expect("cached");
        assert_eq!(table.shape.columns.len(), 3);
    }
}
