//! The resolver's Kafka plumbing: the driver that reads the inputs, feeds the [`Core`] and sends what it
//! decides.
//!
//! ```text
//!  input topics (every partition, from the beginning) --cdc: decode--> transaction: regroup by END --+--> Core
//!  <prefix>.graph.events ----------------------------------------------------------------------------+    |
//!  group over <prefix>.sync.desired + <prefix>.reservations --ownership: own partitions, loaded--> Core   |
//!  Core's output <---------------------------------------------------------------------------------------+
//!      --emit: enqueue in decision order--> producer --acks: awaited off the driver's path
//! ```
//! - [`consume`]: the driver ([`run`](consume::run)) and the topics it reads and writes;
//! - [`inputs`]: reading the inputs whole, the catch-up watermarks, the monitoring-only input offsets;
//! - [`cdc`]: the cdc-reader's envelopes and END records decoded into rows addressed by column name;
//! - [`transaction`]: records regrouped into their source transactions, released in commit order;
//! - [`ownership`]: the rooms and resources this instance owns through the consumer group, and when they are
//!   loaded;
//! - [`emit`]: the output enqueued in decision order; [`acks`]: its acknowledgements awaited off the driver's
//!   path.
//!
//! Invariants: the resolver stores no progress of its own: every run reads every input from the beginning and
//! emits nothing before every input partition is read up to its start watermark; a transaction is applied when
//! complete (or when a safety net releases it), in commit order; a room or resource is emitted for only once its
//! partition is owned and loaded; any transient failure restarts the run from scratch.
//!
//! [`Core`]: crate::core::Core

pub mod acks;
pub mod cdc;
pub mod consume;
pub mod emit;
pub mod inputs;
pub mod ownership;
pub mod transaction;
