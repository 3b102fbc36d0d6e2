"""Whether the submitter polls on this tick: webhook hints, and the poll interval.

With job-complete callbacks (CRUST_WEBHOOK_URL) the sensor ticks every 5 s, the daemon's floor,
so a callback is acted on at once; it polls on its own only every CRUST_POLL_INTERVAL_SECONDS.
Hints only save latency, and polling covers for them, so no failure to read them may fail a tick.
"""

import os

from crust_assets.lifecycle.ledger import Ledger
from crust_assets.storage import DataLayout
from crust_assets.webhook_hints import consume_hints

DEFAULT_POLL_INTERVAL_SECONDS = 30


def poll_interval_seconds() -> int:
    """env CRUST_POLL_INTERVAL_SECONDS (default 30), read when the code location loads."""
    return int(os.environ.get("CRUST_POLL_INTERVAL_SECONDS", DEFAULT_POLL_INTERVAL_SECONDS))


def sensor_interval_seconds() -> int:
    """Every 5 s with callbacks configured (see the module doc), else the poll interval."""
    return 5 if os.environ.get("CRUST_WEBHOOK_URL") else poll_interval_seconds()


def hinted_batch_ids(layout: DataLayout) -> tuple[set[str], str | None]:
    """Batch ids the webhook receiver hinted (consumed), and why none could be read, if so.

    An unreachable bucket raises botocore's own errors, not OSError: any failure is a note.
    """
    try:
        return consume_hints(layout), None
    except Exception as error:  # any failure: see above
        return set(), f"webhook hints unreadable ({type(error).__name__}); polling instead"


def poll_due(
    layout: DataLayout, ledger: Ledger, webhook_url: str | None, now: float, notes: list[str]
) -> bool:
    """Poll every tick, unless callbacks are configured: then when a hint names an active job,
    or the poll interval has passed. With no plan open, stale hints are only deleted."""
    if not ledger.open_plans():
        drop_stale_hints(layout, "no plan is open", webhook_url, notes)
        return False
    if not webhook_url:
        drop_stale_hints(layout, "CRUST_WEBHOOK_URL is not set", webhook_url, notes)
        return True
    hints, problem = hinted_batch_ids(layout)
    if problem:
        notes.append(problem)
    hinted = ledger.known_batch_ids() & hints  # the poll confirms each with GET /batch
    if hinted:
        notes.append(f"{len(hinted)} job(s) hinted by webhook")
        return True
    return now - ledger.last_poll_at >= poll_interval_seconds() - 1.0


def drop_stale_hints(
    layout: DataLayout, why: str, webhook_url: str | None, notes: list[str]
) -> None:
    """Delete the hints no job can use, so leftover or forged ones never pile up in the store;
    one that cannot be read is a note only when callbacks are on."""
    dropped, problem = hinted_batch_ids(layout)
    if dropped:
        notes.append(f"{len(dropped)} stale webhook hint(s) deleted: {why}")
    elif problem and webhook_url:
        notes.append(problem)
