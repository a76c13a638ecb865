//! Transaction metadata: after the data records of each committed source transaction (and after the initial
//! snapshot), one END record on `<prefix>.cdc.transactions` says how many records the transaction put on
//! each topic (Debezium's transaction metadata, `schemas/cdc/transactions.avsc`).
//!
//! Invariant: the END record is produced under the transaction's progress handle before it is sealed, so the
//! flush LSN never passes a transaction whose END record Kafka has not acknowledged; after a replay the END
//! record repeats with the same counts (tombstones are not counted, dead-lettered rows are counted under the
//! dead-letter topic).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use apache_avro::Schema;
use serde::{Deserialize, Serialize};
use vocabulary::records::AvroRecord;

/// BEGIN or END (only END is produced).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransactionStatus {
    /// A transaction began (not produced).
    #[serde(rename = "BEGIN")]
    Begin,
    /// A transaction committed and all its data records were handed to Kafka before this one.
    #[serde(rename = "END")]
    End,
}

/// How many records a transaction put on one topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataCollection {
    /// Topic name.
    pub data_collection: String,
    /// Records on it.
    pub event_count: i64,
}

/// The record of `<prefix>.cdc.transactions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionMetadata {
    /// BEGIN or END.
    pub status: TransactionStatus,
    /// `<txid>:<commit lsn>`, or `snapshot:<consistent point>`.
    pub id: String,
    /// PostgreSQL transaction id (none for the snapshot).
    pub tx_id: Option<i64>,
    /// Commit LSN, as in `source.commit_lsn` of the transaction's records.
    pub commit_lsn: i64,
    /// Commit time, ms since the epoch.
    pub commit_ts_ms: i64,
    /// Data records over all topics.
    pub event_count: i64,
    /// Data records per topic.
    pub data_collections: Vec<DataCollection>,
}

impl AvroRecord for TransactionMetadata {
    const NAME: &'static str = "TransactionMetadata";

    fn schema() -> &'static Schema {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        SCHEMA.get_or_init(|| {
            // The file is part of this build and checked by the test below: it always parses.
            #[allow(clippy::expect_used)]
            Schema::parse_str(include_str!("../../../schemas/cdc/transactions.avsc"))
                .expect("schemas/cdc/transactions.avsc is valid Avro")
        })
    }
}

impl TransactionMetadata {
    /// The END record of a transaction with `counts` records per topic.
    pub fn end(tx_id: Option<i64>, commit_lsn: i64, commit_ts_ms: i64, counts: BTreeMap<String, i64>) -> Self {
        let id = match tx_id {
            Some(xid) => format!("{xid}:{commit_lsn}"),
            None => format!("snapshot:{commit_lsn}"),
        };
        TransactionMetadata {
            status: TransactionStatus::End,
            id,
            tx_id,
            commit_lsn,
            commit_ts_ms,
            event_count: counts.values().sum(),
            data_collections: counts
                .into_iter()
                .map(|(data_collection, event_count)| DataCollection { data_collection, event_count })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_end_record_round_trips_through_its_published_schema() {
        let counts: BTreeMap<String, i64> =
            [("p.cdc.public.bb_event".to_owned(), 1), ("p.cdc.public.bb_event_resource".to_owned(), 4)].into();
        let end = TransactionMetadata::end(Some(731), 5000, 1_700_000_000_000, counts);
        assert_eq!((end.id.as_str(), end.event_count), ("731:5000", 5));
        let value = end.to_avro().expect("fits the schema");
        let bytes = apache_avro::to_avro_datum(TransactionMetadata::schema(), value).expect("encodes");
        let back =
            apache_avro::from_avro_datum(TransactionMetadata::schema(), &mut bytes.as_slice(), None).expect("decodes");
        assert_eq!(TransactionMetadata::from_avro(back).expect("record"), end);
        assert_eq!(TransactionMetadata::end(None, 7, 0, BTreeMap::new()).id, "snapshot:7");
    }
}
