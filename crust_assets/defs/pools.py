"""The planner's concurrency pool: plans are made one at a time, so each sees the ones before it.

Borrowing (`crust_assets.defs.borrowing`) can only see plans already recorded. A backfill
launches several plan runs at once, and two plans made at the same moment would each buy the
URLs they share. `contact_enrichment_batch` is therefore in the pool `crustdata_planner`: with a
limit of 1, a second plan's step waits (seconds) for the first one's to be recorded.

Dagster leaves a pool without a limit unlimited, and a deployment may not know about this one,
so the submitter sensor gives it a limit of 1 when it has none (or only the instance's default).
A limit someone set on purpose is kept, and reported on every tick when it is not 1.
"""

import dagster as dg

from crust_assets import names

# The default copy's pool; a copy's is `current().planner_pool`.
PLANNER_POOL = names.DEFAULT_NAMES.planner_pool


def ensure_planner_pool_limit(instance: dg.DagsterInstance) -> str | None:
    """Give the planner pool a limit of 1 unless one was set on purpose; a warning, or None."""
    storage, pool = instance.event_log_storage, names.current().planner_pool
    if not storage.supports_global_concurrency_limits:
        return (
            "this Dagster instance's storage has no concurrency pools: plans made at the same "
            "moment may buy the same URLs"
        )
    current = next((p for p in storage.get_pool_limits() if p.name == pool), None)
    if current is None or (current.from_default and current.limit != 1):
        storage.set_concurrency_slots(pool, 1)
        return None
    if current.limit != 1:
        return (
            f"pool {pool} allows {current.limit} plans at once: plans made at the same "
            "moment may buy the same URLs (set its limit to 1)"
        )
    return None
