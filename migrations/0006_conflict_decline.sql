-- Conflict policy "decline": the graph sink declines the Outlook meeting of a conflict row with status 'declined'
-- in the room mailbox and records here that it did. declined_at null = not yet carried out; decline_error holds a
-- definite Graph refusal (the row is not retried until an operator clears it).
alter table roomsync_conflicts add column if not exists declined_at timestamptz;
alter table roomsync_conflicts add column if not exists decline_error text;
create index if not exists roomsync_conflicts_to_decline on roomsync_conflicts (id)
    where status = 'declined' and declined_at is null and decline_error is null;
