//! The resolver's checkpoint: its state as rebuilt from the input topics, with the input positions it stands
//! for, so that a start reads only what came after it instead of every input topic from the beginning.
//!
//! Why (issue #13): a start used to read years of CDC history (about a million records for a large
//! municipality) to rebuild a state that the sync window bounds to a small part of it; the broker serves those
//! records at about 39,000/s here, so no resolver could rebuild faster than about 26 s. A stream processor keeps
//! a changelog of its own state for that; the resolver keeps one checkpoint per consumer group in PostgreSQL
//! (`roomsync_resolver_checkpoints`, [`crate::postgres::checkpoint`]), because there the state and the positions
//! it stands for are written together in one statement, and the broker need not compact anything (tansu does
//! not).
//!
//! What it holds is exactly what reading the inputs builds and nothing of the output:
//! - stage 1's booking rows ([`BookingState`]: reservations not over before the window, with their links and
//!   the positions that tell replays apart; the dimension rows; the mirror of `outlook_calendar_mapping`),
//!   from which the reservations are assembled again on restore;
//! - the Outlook events of the window and the Outlook deletions not decided yet.
//!
//! What the resolver emitted (the desired ledger, the reservation records) is loaded from the output topics at
//! every start as before, and the import ledger, conflicts and reverts start empty as after a full rebuild.
//!
//! Invariants (the driver, [`crate::kafka::consume`], keeps them):
//! - an image is taken only between transactions: every record before the positions is applied, none after;
//! - it is written only once every output decided before it is acknowledged by the broker (or written to
//!   `roomsync_conflicts`): a decision the state no longer shows (an Outlook deletion decided, so no longer
//!   pending) is then never lost by a crash between the decision and its output;
//! - a checkpoint is used only when its [`fingerprint`] matches the running configuration and every position
//!   lies within its partition's offsets ([`unusable`]); otherwise the resolver reads everything, as without one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vocabulary::records::GraphEventBody;

use crate::config::Config;
use crate::core::Core;
use crate::stage1::reservations::Assembler;
use crate::stage1::state::BookingState;

/// Version of the encoded state; a checkpoint of another version is not used.
pub const FORMAT: u32 = 1;

/// The next offset to read per input (topic, partition).
pub type Positions = BTreeMap<(String, i32), i64>;

/// Low and high watermark per input (topic, partition).
pub type Watermarks = BTreeMap<(String, i32), (i64, i64)>;

/// What the resolver wrote and reads back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// [`fingerprint`] of the configuration it was taken under.
    pub fingerprint: String,
    /// Where reading goes on.
    pub positions: Positions,
    /// The encoded state ([`Core::image`]).
    pub state: Vec<u8>,
    /// Input records the state stands for (the sum of the positions).
    pub input_records: i64,
}

/// Why a checkpoint's state cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("checkpoint state: {0}")]
pub struct ImageError(#[from] postcard::Error);

#[derive(Serialize)]
struct ImageRef<'a> {
    state: &'a BookingState,
    applied_lsn: i64,
    graph: &'a BTreeMap<(String, String), GraphEventBody>,
    unseen_deletes: &'a BTreeMap<(String, String), Option<GraphEventBody>>,
}

/// [`ImageRef`] read back: the same fields in the same order.
#[derive(Deserialize)]
struct Image {
    state: BookingState,
    applied_lsn: i64,
    graph: BTreeMap<(String, String), GraphEventBody>,
    unseen_deletes: BTreeMap<(String, String), Option<GraphEventBody>>,
}

impl Core {
    /// The state built from the inputs, encoded (see the module documentation for what it holds).
    pub fn image(&self) -> Result<Vec<u8>, ImageError> {
        let image = ImageRef {
            state: &self.assembler.state,
            applied_lsn: self.assembler.applied_lsn(),
            graph: &self.graph,
            unseen_deletes: &self.unseen_deletes,
        };
        Ok(postcard::to_stdvec(&image)?)
    }

    /// Replaces the input state with an image's and assembles the reservations again; what was emitted (the
    /// ledgers) is left as it is. Nothing is emitted: [`Core::full`] follows once the inputs are read.
    pub fn restore(&mut self, image: &[u8]) -> Result<(), ImageError> {
        let image: Image = postcard::from_bytes(image)?;
        self.assembler = Assembler::restore(image.state, image.applied_lsn);
        self.graph = image.graph;
        self.unseen_deletes = image.unseen_deletes;
        Ok(())
    }
}

/// What a checkpoint's state depends on besides the inputs: its format, the captured schema, the input topics
/// (their names carry the prefix) and the window's past end (what the state forgot). A checkpoint taken under
/// another is not used.
pub fn fingerprint(config: &Config, inputs: &[String]) -> String {
    let mut inputs = inputs.to_vec();
    inputs.sort();
    format!(
        "format={FORMAT} schema={} past_seconds={} transactions={:?} inputs={}",
        config.source_schema,
        config.window.past.as_secs(),
        config.transactions,
        inputs.join(",")
    )
}

/// Why `positions` cannot be where reading goes on in partitions with these `watermarks`, if they cannot: a
/// position beyond the partition's end (the topic was deleted and made again) or before its start (retention
/// removed records the state never saw), or a partition that is gone.
pub fn unusable(positions: &Positions, watermarks: &Watermarks) -> Option<String> {
    for ((topic, partition), next) in positions {
        let Some((low, high)) = watermarks.get(&(topic.clone(), *partition)) else {
            return Some(format!("{topic}/{partition} no longer exists"));
        };
        if next > high {
            return Some(format!("{topic}/{partition} ends at {high}, before the checkpoint's position {next}"));
        }
        if next < low {
            return Some(format!("{topic}/{partition} starts at {low}, after the checkpoint's position {next}"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(topic: &str, partition: i32) -> (String, i32) {
        (topic.to_owned(), partition)
    }

    #[test]
    fn positions_within_every_partition_are_usable_and_others_are_not() {
        let watermarks = Watermarks::from([(key("a", 0), (0, 10)), (key("a", 1), (5, 8))]);
        assert_eq!(unusable(&Positions::from([(key("a", 0), 10), (key("a", 1), 5)]), &watermarks), None);
        assert_eq!(unusable(&Positions::new(), &watermarks), None, "nothing read: everything from the start");
        let recreated = unusable(&Positions::from([(key("a", 0), 11)]), &watermarks);
        assert!(recreated.is_some_and(|why| why.contains("a/0 ends at 10")));
        let retention = unusable(&Positions::from([(key("a", 1), 4)]), &watermarks);
        assert!(retention.is_some_and(|why| why.contains("a/1 starts at 5")));
        assert!(unusable(&Positions::from([(key("b", 0), 1)]), &watermarks).is_some());
    }

    #[test]
    fn the_fingerprint_changes_with_what_the_state_depends_on() {
        let config = Config::new(streams::Connections::new(
            streams::KafkaSettings::new("127.0.0.1:1"),
            "http://127.0.0.1:1",
            Default::default(),
        ));
        let inputs = vec!["b".to_owned(), "a".to_owned()];
        let base = fingerprint(&config, &inputs);
        assert_eq!(base, fingerprint(&config, &["a".to_owned(), "b".to_owned()]), "order does not matter");
        let mut longer = config.clone();
        longer.window.past = std::time::Duration::from_secs(7 * 86_400);
        assert_ne!(base, fingerprint(&longer, &inputs));
        let mut schema = config.clone();
        schema.source_schema = "booking".into();
        assert_ne!(base, fingerprint(&schema, &inputs));
        assert_ne!(base, fingerprint(&config, &["a".to_owned()]));
    }
}
