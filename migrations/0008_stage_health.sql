-- What each running stage instance says about its own progress, for `roomsync status` and `/health/ready`: a
-- stage that has taken in input it cannot turn into output (the resolver: a transaction that never completes,
-- partitions it was assigned but could not load, a catch-up that stopped) says so here, so a stalled sync is
-- never mistaken for a quiet one. Rows are rewritten when the state changes and refreshed every 30 seconds;
-- a row not refreshed for minutes belongs to an instance that is gone.
create table if not exists roomsync_stage_health (
    stage       varchar(40)  not null,
    instance    varchar(200) not null,
    state       varchar(20)  not null check (state in ('ok', 'catching_up', 'degraded', 'stalled')),
    detail      text,
    since       timestamptz  not null default now(),
    updated_at  timestamptz  not null default now(),
    primary key (stage, instance)
);
