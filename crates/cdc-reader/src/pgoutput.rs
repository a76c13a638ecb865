//! Decoder of the pgoutput (protocol version 1) messages that pgwire-replication hands over undecoded:
//! Relation, Insert, Update, Delete and Truncate (Type and Origin are recognised and skipped).
//!
//! Invariant: the decoder reads untrusted bytes and never panics: every read is bounds-checked and every
//! malformed message is a [`DecodeError`] (the fuzz test below feeds it arbitrary bytes).

use bytes::Bytes;
use thiserror::Error;

/// Why a message could not be decoded.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The message ended before a field it announced.
    #[error("message truncated while reading {0}")]
    Truncated(&'static str),
    /// A tag byte the protocol does not define at that place.
    #[error("unexpected byte {byte:#04x} for {what}")]
    Unexpected {
        /// What was being read.
        what: &'static str,
        /// The byte found.
        byte: u8,
    },
    /// A count or length was negative.
    #[error("negative {0}")]
    Negative(&'static str),
    /// A name was not valid UTF-8.
    #[error("invalid UTF-8 in {0}")]
    Utf8(&'static str),
}

/// One column of a Relation message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationColumn {
    /// Part of the replica identity (the primary key under DEFAULT identity).
    pub key: bool,
    /// Column name.
    pub name: String,
    /// Type OID.
    pub type_oid: u32,
    /// Type modifier.
    pub type_modifier: i32,
}

/// A Relation message: the shape of a table as the following changes use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// Table OID.
    pub oid: u32,
    /// Schema name.
    pub schema: String,
    /// Table name.
    pub table: String,
    /// Replica identity setting (`d`efault, `n`othing, `f`ull, `i`ndex).
    pub replica_identity: u8,
    /// Published columns, in the order tuples carry them.
    pub columns: Vec<RelationColumn>,
}

/// One column value of a tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datum {
    /// SQL NULL.
    Null,
    /// A TOASTed value the UPDATE did not change, so the server did not send it.
    UnchangedToast,
    /// Text representation.
    Text(Bytes),
    /// Binary representation (only with the binary option, which the reader does not request).
    Binary(Bytes),
}

/// A row as a list of column values, in Relation column order.
pub type Tuple = Vec<Datum>;

/// A decoded change message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Table description.
    Relation(Relation),
    /// New row.
    Insert {
        /// Table OID.
        relation: u32,
        /// The row.
        new: Tuple,
    },
    /// Changed row.
    Update {
        /// Table OID.
        relation: u32,
        /// Old key columns ('K', key changed) or old row ('O', REPLICA IDENTITY FULL).
        old: Option<Tuple>,
        /// The new row.
        new: Tuple,
    },
    /// Removed row.
    Delete {
        /// Table OID.
        relation: u32,
        /// Old key columns or old row.
        old: Tuple,
    },
    /// Tables emptied.
    Truncate {
        /// Table OIDs.
        relations: Vec<u32>,
        /// Option bits (1 = CASCADE, 2 = RESTART IDENTITY).
        options: u8,
    },
    /// A message the reader does not need (Type, Origin, or one pgwire-replication already decoded).
    Other(u8),
}

/// Decodes one pgoutput message.
pub fn decode(data: &Bytes) -> Result<Message, DecodeError> {
    let mut r = Reader { data, pos: 0 };
    let tag = r.u8("message tag")?;
    match tag {
        b'R' => {
            let oid = r.u32("relation oid")?;
            let schema = r.string("schema name")?;
            let table = r.string("table name")?;
            let replica_identity = r.u8("replica identity")?;
            let count = r.count("column count")?;
            let mut columns = Vec::with_capacity(count.min(1600));
            for _ in 0..count {
                let flags = r.u8("column flags")?;
                let name = r.string("column name")?;
                let type_oid = r.u32("column type")?;
                let type_modifier = r.i32("column type modifier")?;
                columns.push(RelationColumn { key: flags & 1 == 1, name, type_oid, type_modifier });
            }
            Ok(Message::Relation(Relation { oid, schema, table, replica_identity, columns }))
        }
        b'I' => {
            let relation = r.u32("relation oid")?;
            r.expect(b'N', "insert tuple marker")?;
            Ok(Message::Insert { relation, new: r.tuple()? })
        }
        b'U' => {
            let relation = r.u32("relation oid")?;
            let mut marker = r.u8("update tuple marker")?;
            let mut old = None;
            if marker == b'K' || marker == b'O' {
                old = Some(r.tuple()?);
                marker = r.u8("update new tuple marker")?;
            }
            if marker != b'N' {
                return Err(DecodeError::Unexpected { what: "update new tuple marker", byte: marker });
            }
            Ok(Message::Update { relation, old, new: r.tuple()? })
        }
        b'D' => {
            let relation = r.u32("relation oid")?;
            let marker = r.u8("delete tuple marker")?;
            if marker != b'K' && marker != b'O' {
                return Err(DecodeError::Unexpected { what: "delete tuple marker", byte: marker });
            }
            Ok(Message::Delete { relation, old: r.tuple()? })
        }
        b'T' => {
            let count = r.u32("truncated relation count")? as usize;
            let options = r.u8("truncate options")?;
            let mut relations = Vec::with_capacity(count.min(r.remaining() / 4));
            for _ in 0..count {
                relations.push(r.u32("truncated relation oid")?);
            }
            Ok(Message::Truncate { relations, options })
        }
        other => Ok(Message::Other(other)),
    }
}

struct Reader<'a> {
    data: &'a Bytes,
    pos: usize,
}

impl Reader<'_> {
    fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&[u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated(what))?;
        let slice = self.data.get(self.pos..end).ok_or(DecodeError::Truncated(what))?;
        self.pos = end;
        Ok(slice)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        let bytes = self.take(1, what)?;
        bytes.first().copied().ok_or(DecodeError::Truncated(what))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let bytes = self.take(4, what)?;
        let array: [u8; 4] = bytes.try_into().map_err(|_| DecodeError::Truncated(what))?;
        Ok(u32::from_be_bytes(array))
    }

    fn i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        Ok(self.u32(what)? as i32)
    }

    fn count(&mut self, what: &'static str) -> Result<usize, DecodeError> {
        let bytes = self.take(2, what)?;
        let array: [u8; 2] = bytes.try_into().map_err(|_| DecodeError::Truncated(what))?;
        usize::try_from(i16::from_be_bytes(array)).map_err(|_| DecodeError::Negative(what))
    }

    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), DecodeError> {
        match self.u8(what)? {
            b if b == byte => Ok(()),
            b => Err(DecodeError::Unexpected { what, byte: b }),
        }
    }

    fn string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let rest = self.data.get(self.pos..).ok_or(DecodeError::Truncated(what))?;
        let len = rest.iter().position(|b| *b == 0).ok_or(DecodeError::Truncated(what))?;
        let text = std::str::from_utf8(&rest[..len]).map_err(|_| DecodeError::Utf8(what))?.to_owned();
        self.pos += len + 1;
        Ok(text)
    }

    fn tuple(&mut self) -> Result<Tuple, DecodeError> {
        let count = self.count("tuple column count")?;
        let mut tuple = Vec::with_capacity(count.min(self.remaining()));
        for _ in 0..count {
            let datum = match self.u8("column kind")? {
                b'n' => Datum::Null,
                b'u' => Datum::UnchangedToast,
                kind @ (b't' | b'b') => {
                    let len = usize::try_from(self.i32("value length")?)
                        .map_err(|_| DecodeError::Negative("value length"))?;
                    let start = self.pos;
                    self.take(len, "column value")?;
                    let value = self.data.slice(start..start + len);
                    if kind == b't' {
                        Datum::Text(value)
                    } else {
                        Datum::Binary(value)
                    }
                }
                byte => return Err(DecodeError::Unexpected { what: "column kind", byte }),
            };
            tuple.push(datum);
        }
        Ok(tuple)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn relation_bytes() -> Vec<u8> {
        let mut b = vec![b'R'];
        b.extend(16384u32.to_be_bytes());
        b.extend(b"public\0bb_event\0");
        b.push(b'd');
        b.extend(2i16.to_be_bytes());
        b.push(1);
        b.extend(b"id\0");
        b.extend(23u32.to_be_bytes());
        b.extend((-1i32).to_be_bytes());
        b.push(0);
        b.extend(b"description\0");
        b.extend(25u32.to_be_bytes());
        b.extend((-1i32).to_be_bytes());
        b
    }

    #[test]
    fn relation_messages_carry_names_types_and_key_flags() {
        let Ok(Message::Relation(rel)) = decode(&Bytes::from(relation_bytes())) else {
            panic!("not a relation");
        };
        assert_eq!((rel.schema.as_str(), rel.table.as_str()), ("public", "bb_event"));
        assert!(rel.columns[0].key && !rel.columns[1].key);
        assert_eq!(rel.columns[1].name, "description");
        assert_eq!(rel.columns[1].type_oid, 25);
    }

    #[test]
    fn updates_with_unchanged_toast_and_old_key_decode() {
        let mut b = vec![b'U'];
        b.extend(16384u32.to_be_bytes());
        b.push(b'K');
        b.extend(2i16.to_be_bytes());
        b.extend([b't', 0, 0, 0, 1, b'7', b'n']);
        b.push(b'N');
        b.extend(2i16.to_be_bytes());
        b.extend([b't', 0, 0, 0, 1, b'8', b'u']);
        let message = decode(&Bytes::from(b)).expect("decodes");
        assert_eq!(
            message,
            Message::Update {
                relation: 16384,
                old: Some(vec![Datum::Text(Bytes::from_static(b"7")), Datum::Null]),
                new: vec![Datum::Text(Bytes::from_static(b"8")), Datum::UnchangedToast],
            }
        );
    }

    #[test]
    fn truncates_list_their_relations() {
        let mut b = vec![b'T'];
        b.extend(2u32.to_be_bytes());
        b.push(1);
        b.extend(5u32.to_be_bytes());
        b.extend(6u32.to_be_bytes());
        assert_eq!(decode(&Bytes::from(b)), Ok(Message::Truncate { relations: vec![5, 6], options: 1 }));
    }

    #[test]
    fn every_prefix_of_a_valid_message_is_an_error_not_a_panic() {
        let full = relation_bytes();
        for len in 0..full.len() {
            assert!(decode(&Bytes::copy_from_slice(&full[..len])).is_err(), "prefix {len} accepted");
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        let tags = [b'R', b'I', b'U', b'D', b'T', b'Y', b'O'];
        for round in 0..200_000 {
            let len = rng.gen_range(0..64);
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            if let Some(first) = bytes.first_mut() {
                *first = tags[round % tags.len()];
            }
            // Mutations of a valid message reach deeper paths than pure noise.
            if round % 3 == 0 {
                bytes = relation_bytes();
                let at = rng.gen_range(0..bytes.len());
                bytes[at] = rng.gen();
                bytes.truncate(rng.gen_range(0..=bytes.len()));
            }
            let _ = decode(&Bytes::from(bytes));
        }
    }
}
