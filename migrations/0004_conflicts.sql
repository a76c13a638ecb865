-- Outlook-origin bookings that overlap a booking-system reservation: recorded for review.
create table if not exists roomsync_conflicts (
    id                bigserial    primary key,
    outlook_item_id   varchar(255) not null,
    resource_id       integer,
    outlook_event_id  text         not null,
    outlook_change_key text,
    reservation_type  varchar(20)  not null check (reservation_type in ('event', 'booking', 'allocation')),
    reservation_id    integer      not null,
    starts_at         timestamptz  not null,
    ends_at           timestamptz  not null,
    detected_at       timestamptz  not null default now(),
    status            varchar(20)  not null default 'open' check (status in ('open', 'declined', 'resolved')),
    resolution        text,
    resolved_at       timestamptz,
    unique (outlook_item_id, outlook_event_id, reservation_type, reservation_id)
);
create index if not exists roomsync_conflicts_open on roomsync_conflicts (status) where status = 'open';
