-- Which booking-system resource is which Outlook room mailbox. An installation of the earlier PHP
-- integration may have this table already: then it is left exactly as it is (roomsync start-up checks
-- that it has a primary key, which logical replication of its UPDATEs and DELETEs needs).
create table if not exists bb_resource_outlook_item (
    id                serial primary key,
    resource_id       integer      not null,
    outlook_item_id   varchar(255) not null,
    outlook_item_name varchar(255),
    -- 0/1 like every flag of the booking system
    active            smallint     not null default 1,
    unique (resource_id)
);
