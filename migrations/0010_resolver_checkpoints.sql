-- The resolver's checkpoint: the state it rebuilt from its input topics (the booking rows of reservations not
-- over before the sync window, the dimension and mapping rows, the Outlook events of the window), with the input
-- positions it was taken at. A resolver starts from the checkpoint of its consumer group and reads only what
-- came after it, instead of every input topic from the beginning (years of history). One row per group; every
-- instance of the group holds the same state, and whichever finds the row old writes it. The row is only a
-- shortcut: without it (or when it does not fit the topics any more) the resolver reads everything, as before.
create table if not exists roomsync_resolver_checkpoints (
    consumer_group varchar(200) primary key,
    -- format version, source schema, input topics and window: a checkpoint taken under others is not used
    fingerprint    text         not null,
    -- [{"topic": ..., "partition": ..., "next": ...}]: the next offset to read per input partition
    positions      jsonb        not null,
    -- the state, postcard-encoded (resolver::checkpoint)
    state          bytea        not null,
    -- input records the state stands for, read from the beginning of the topics (for the log and the benchmark)
    input_records  bigint       not null,
    written_by     varchar(200) not null,
    written_at     timestamptz  not null default now()
);
-- The state is a few to some tens of megabytes that PostgreSQL would otherwise try to compress on every write.
alter table roomsync_resolver_checkpoints alter column state set storage external;
