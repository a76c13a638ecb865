//! A generated municipality (`testkit::municipality`) as the benchmarks put it in front of roomsync: its room
//! mailboxes in the Graph emulator's tenant, and the oracle's rules for the calendars it must end up with.
//! Shared by the scale and pipeline benchmarks (`#[path = ...] mod municipality_setup;`; `municipality` is
//! testkit's).

use anyhow::Result;
use graph_emulator::RoomConfig;
use roomsync::config::SyncConfig;
use testkit::municipality::Summary;
use testkit::oracle::Rules;

/// One room mailbox per mapped resource, with its capacity and building.
pub fn rooms(summary: &Summary) -> Vec<RoomConfig> {
    summary
        .rooms
        .iter()
        .map(|room| RoomConfig {
            capacity: room.capacity.and_then(|c| u32::try_from(c).ok()),
            building: Some(room.building_name.clone()),
            ..RoomConfig::new(
                format!("00000000-0000-0000-0000-{:012}", room.resource_id),
                room.mailbox.clone(),
                room.name.clone(),
            )
        })
        .collect()
}

/// The sync window and trim rules of `sync`, from now.
pub fn rules(sync: &SyncConfig) -> Result<Rules> {
    let now = chrono::Utc::now();
    Ok(Rules {
        window_start: now - chrono::TimeDelta::from_std(sync.window_past)?,
        window_end: now + chrono::TimeDelta::from_std(sync.horizon)?,
        min_piece: sync.min_piece,
    })
}
