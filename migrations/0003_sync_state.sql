-- Graph source progress: the last delta link per room mailbox, stored only after the round's records
-- were acknowledged by Kafka.
create table if not exists roomsync_delta_state (
    mailbox           varchar(255) primary key,
    delta_link        text,
    window_start      timestamptz  not null,
    window_end        timestamptz  not null,
    last_round_at     timestamptz,
    last_full_round_at timestamptz,
    updated_at        timestamptz  not null default now()
);

-- Graph change-notification subscriptions, one per room mailbox.
create table if not exists roomsync_subscriptions (
    subscription_id   text         primary key,
    mailbox           varchar(255) not null,
    -- the per-subscription secret Graph echoes back as clientState
    client_state      text         not null,
    expires_at        timestamptz  not null,
    created_at        timestamptz  not null default now(),
    renewed_at        timestamptz
);
create index if not exists roomsync_subscriptions_mailbox on roomsync_subscriptions (mailbox);

-- Consumer offsets of the sinks, committed in the same transaction as the sink's effect.
create table if not exists roomsync_consumer_offsets (
    consumer_group    text         not null,
    topic             text         not null,
    partition         integer      not null,
    -- the offset of the next record to read
    next_offset       bigint       not null,
    updated_at        timestamptz  not null default now(),
    primary key (consumer_group, topic, partition)
);
