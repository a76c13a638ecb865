-- When an Outlook-origin booking (an import, reservation_type 'outlook') takes place. The resolver forgets
-- Outlook events that ended before the sync window, and the Graph source reports an event that left the window
-- like a deleted one: with the booking's end on its mapping row, a booking that took place keeps its import for
-- good, and only the deletion of one not yet over cancels it. Null: not known (rows of earlier releases whose
-- import made no bb_event); such an import counts as current.
alter table outlook_calendar_mapping add column if not exists starts_at timestamptz;
alter table outlook_calendar_mapping add column if not exists ends_at timestamptz;

-- Earlier imports that made a bb_event: its wall-clock times (Europe/Oslo) are the booking's.
do $$
begin
    if to_regclass('bb_event') is not null then
        update outlook_calendar_mapping m
           set starts_at = e.from_ at time zone 'Europe/Oslo', ends_at = e.to_ at time zone 'Europe/Oslo'
          from bb_event e
         where m.reservation_type = 'outlook' and m.reservation_id = e.id and m.reservation_id > 0
           and m.ends_at is null;
    end if;
end
$$;
