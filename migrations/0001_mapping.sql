-- roomsync's mapping between booking-system reservations and Outlook room-calendar events.
-- The columns of the earlier PHP integration are kept with their names and meaning, so an existing
-- installation's rows keep their sense; the rest is what exactly-once writes to Graph need.
create table if not exists outlook_calendar_mapping (
    id               bigserial primary key,
    -- event | booking | allocation for booking-system items, outlook for Outlook-origin imports
    reservation_type varchar(20)  not null
        check (reservation_type in ('event', 'booking', 'allocation', 'outlook')),
    reservation_id   integer      not null,
    resource_id      integer      not null,
    -- the room mailbox (Graph user id or UPN) the event lives in
    outlook_item_id  varchar(255) not null,
    -- the Graph event id (immutable id); null until the create has been acknowledged
    outlook_event_id text,
    sync_status      varchar(20)  not null default 'pending'
        check (sync_status in ('pending', 'synced', 'error', 'parked', 'deleted', 'conflict')),
    last_sync_at     timestamptz,
    error_message    text,
    -- 1 event, 2 booking, 3 allocation; 0 for Outlook-origin items
    priority_level   smallint     not null,
    sync_direction   varchar(20)  not null default 'to_outlook'
        check (sync_direction in ('to_outlook', 'from_outlook')),
    created_at       timestamptz  not null default now(),
    updated_at       timestamptz  not null default now(),
    -- roomsync's key of the calendar item within the room: <type>:<reservation id>[:<piece>]
    item_key         text         not null,
    -- deterministic transactionId sent with the create, so a replayed POST never makes a second event
    transaction_id   uuid         not null,
    -- hash of the content last written (or to be written); an equal hash means no write is needed
    content_hash     text,
    -- Graph changeKey after roomsync's own write: a change carrying it is an echo
    change_key       text,
    ical_uid         text,
    -- write-ahead intent: recorded before the Graph call, cleared in the transaction that records its result
    intent           varchar(20)  not null default 'none'
        check (intent in ('none', 'create', 'update', 'delete')),
    intent_at        timestamptz,
    attempts         integer      not null default 0,
    unique (outlook_item_id, item_key)
);

create index if not exists outlook_calendar_mapping_reservation
    on outlook_calendar_mapping (reservation_type, reservation_id);
create index if not exists outlook_calendar_mapping_event
    on outlook_calendar_mapping (outlook_event_id);
create index if not exists outlook_calendar_mapping_status
    on outlook_calendar_mapping (sync_status);
