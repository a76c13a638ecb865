//! Record keys of the pipeline's own topics (UTF-8 strings, readable in Kafka UI) and the partition a room's
//! records go to, so that every record of one room lands in one partition (stage 2 and the sinks partition by
//! room) even though keys name the item within the room.

/// The key of an item in a room: `<mailbox>/<item>`. A mailbox (user id or SMTP address) holds no `/`.
pub fn room_item_key(mailbox: &str, item: &str) -> String {
    format!("{mailbox}/{item}")
}

/// Splits a key made by [`room_item_key`] into mailbox and item.
pub fn split_room_item_key(key: &str) -> Option<(&str, &str)> {
    key.split_once('/').filter(|(mailbox, item)| !mailbox.is_empty() && !item.is_empty())
}

/// The partition of a room's records: Kafka's murmur2 of the mailbox, as the Java client's default partitioner
/// would place a record keyed by the mailbox alone.
pub fn room_partition(mailbox: &str, partitions: i32) -> i32 {
    if partitions <= 0 {
        return 0;
    }
    ((murmur2(mailbox.as_bytes()) & 0x7fff_ffff) % partitions as u32) as i32
}

/// Kafka's murmur2 hash (the Java client's `Utils.murmur2`).
fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_back_into_mailbox_and_item() {
        let key = room_item_key("hall-a@kommune.no", "booking:17:2");
        assert_eq!(split_room_item_key(&key), Some(("hall-a@kommune.no", "booking:17:2")));
        // Graph ids may contain '/': only the first separator splits.
        assert_eq!(split_room_item_key("room/AAMk/x=="), Some(("room", "AAMk/x==")));
        assert_eq!(split_room_item_key("no-separator"), None);
        assert_eq!(split_room_item_key("/x"), None);
    }

    #[test]
    fn murmur2_matches_kafka_reference_values() {
        // Reference values of org.apache.kafka.common.utils.Utils.murmur2 (as signed ints in Java).
        assert_eq!(murmur2(b"21") as i32, -973932308);
        assert_eq!(murmur2(b"foobar") as i32, -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string") as i32, -1486304829);
        assert_eq!(murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") as i32, -58897971);
    }

    #[test]
    fn every_record_of_a_room_goes_to_one_partition() {
        let p = room_partition("hall-a@kommune.no", 12);
        assert!((0..12).contains(&p));
        assert_eq!(room_partition("hall-a@kommune.no", 12), p);
        assert_eq!(room_partition("x", 0), 0);
    }
}
