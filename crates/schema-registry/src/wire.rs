//! The Confluent wire format: one magic byte `0`, the schema id as a 4-byte big-endian integer, then the Avro
//! binary encoding of the value. Parsing never panics on short or foreign input.

use thiserror::Error;

/// The magic byte that opens every Confluent-framed record.
pub const MAGIC: u8 = 0;

/// Length of the header in front of the Avro payload.
pub const HEADER_LEN: usize = 5;

/// Why bytes are not a Confluent-framed record.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    /// Fewer bytes than the 5-byte header.
    #[error("record of {0} bytes is too short for the 5-byte Confluent header")]
    TooShort(usize),
    /// The first byte is not the magic byte.
    #[error("record starts with byte {0:#04x}, not the Confluent magic byte 0x00")]
    BadMagic(u8),
}

/// Frames an Avro payload with its schema id.
pub fn frame(schema_id: u32, avro: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + avro.len());
    out.push(MAGIC);
    out.extend_from_slice(&schema_id.to_be_bytes());
    out.extend_from_slice(avro);
    out
}

/// Splits a framed record into its schema id and Avro payload.
pub fn unframe(bytes: &[u8]) -> Result<(u32, &[u8]), WireError> {
    match bytes {
        [MAGIC, a, b, c, d, rest @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), rest)),
        [first, _, _, _, _, ..] => Err(WireError::BadMagic(*first)),
        short => Err(WireError::TooShort(short.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_round_trips_id_and_payload() {
        let framed = frame(0x0102_0304, b"avro");
        assert_eq!(framed, [0, 1, 2, 3, 4, b'a', b'v', b'r', b'o']);
        assert_eq!(unframe(&framed), Ok((0x0102_0304, &b"avro"[..])));
    }

    #[test]
    fn empty_payload_is_allowed() {
        assert_eq!(unframe(&frame(7, b"")), Ok((7, &b""[..])));
    }

    #[test]
    fn short_and_foreign_input_is_rejected_without_panic() {
        for len in 0..5 {
            assert_eq!(unframe(&vec![0; len]), Err(WireError::TooShort(len)));
        }
        assert_eq!(unframe(b"{\"json\":1}"), Err(WireError::BadMagic(b'{')));
    }

    #[test]
    fn every_short_byte_string_parses_or_errs() {
        // Exhaustive over 1..=3 bytes plus a spread of longer inputs: unframe must never panic.
        for a in 0..=255u8 {
            let _ = unframe(&[a]);
            for b in [0u8, 1, 127, 255] {
                let _ = unframe(&[a, b, 0, 0, 0, b]);
            }
        }
    }
}
