//! What an operator can ask and change, shared by the CLI commands and the admin API so both say the same:
//! room mappings (bb_resource_outlook_item), conflicts, backfill requests, and the pipeline's status.

pub mod backfill;
pub mod conflicts;
pub mod room_mappings;
pub mod status;
