-- Graph source: the event ids last known to exist per room mailbox, so a full delta round (after an expired
-- token, a `missed` lifecycle event or a window move) can emit deletes for ids it no longer sees. Written in the
-- same transaction as the room's delta link in roomsync_delta_state, after Kafka acknowledged the round.
create table if not exists roomsync_graph_known_events (
    mailbox           varchar(255) not null,
    event_id          text         not null,
    primary key (mailbox, event_id)
);
