-- Requests to the CDC reader, carried through the replication stream itself (the signal-table pattern): the
-- reader acts on a row when it reads the row's INSERT, at that point of the stream, so what it emits is ordered
-- with the changes around it. The reader writes the outcome back into the row.
create table if not exists roomsync_signals (
    id            bigserial    primary key,
    -- backfill: re-snapshot `tables` (all captured tables when empty), only the rows of `resources` when given
    kind          varchar(20)  not null check (kind in ('backfill')),
    tables        text[]       not null default '{}',
    resources     integer[]    not null default '{}',
    requested_at  timestamptz  not null default now(),
    requested_by  text         not null default current_user,
    done_at       timestamptz,
    rows          bigint,
    error         text
);
