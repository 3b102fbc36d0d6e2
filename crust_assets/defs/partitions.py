"""One partition per input list date (`data/input/<YYYY-MM-DD>.csv`)."""

import dagster as dg

# end_offset=1: today's list is a partition as soon as the day starts, so the daily schedule and
# the new-file sensor can run it the same day.
daily_partitions = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_offset=1)
