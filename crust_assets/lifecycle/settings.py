"""The lifecycle's limits as one value: the sensor builds it from its resources, tests write it."""

from __future__ import annotations

from dataclasses import dataclass, field

from crust_assets.load_retry import LoadRetryPolicy

# A job whose submit gets no answer is looked for in GET /batch on this many ticks before we
# give up on it (and never resubmit it: that could bill the same URLs twice).
MAX_RECONCILE_TRIES = 3
# How long to stop submitting after the API refused the key or the account's credits.
PAUSE_SECONDS = 300.0
# Server clocks are not ours: accept a job created this much outside the submit window.
CLOCK_SKEW_SECONDS = 5.0
# Don't start a new API call when less than this is left of the tick budget.
CALL_RESERVE_SECONDS = 2.0
# One API call's read timeout inside a tick.
SENSOR_CALL_TIMEOUT_SECONDS = 10.0
# The sensor's ticks fail once the API has not answered this long (CRUST_API_DOWN_ALERT_MINUTES)
API_DOWN_ALERT_MINUTES = 30.0
# ... or once a plan has waited this long for its jobs or lenders (CRUST_PLAN_WAIT_ALERT_HOURS).
PLAN_WAIT_ALERT_HOURS = 24.0
# Submits of a job the API reports failed (CRUST_MAX_JOB_ATTEMPTS), and the wait before each
# resubmit (CRUST_RETRY_COOLDOWN_SECONDS).
MAX_JOB_ATTEMPTS = 3
RETRY_COOLDOWN_SECONDS = 60
# One API call's retry budget inside a tick.
SENSOR_RETRY_SECONDS = 5.0


@dataclass(frozen=True)
class LifecycleSettings:
    """env CRUST_MAX_JOB_ATTEMPTS, CRUST_RETRY_COOLDOWN_SECONDS, the load retry settings and
    the alarm bounds (CRUST_API_DOWN_ALERT_MINUTES, CRUST_PLAN_WAIT_ALERT_HOURS); the others are
    fixed bounds of a sensor tick."""

    max_job_attempts: int = MAX_JOB_ATTEMPTS
    retry_cooldown_seconds: float = RETRY_COOLDOWN_SECONDS
    pause_seconds: float = PAUSE_SECONDS
    max_reconcile_tries: int = MAX_RECONCILE_TRIES
    clock_skew_seconds: float = CLOCK_SKEW_SECONDS
    call_timeout_seconds: float = SENSOR_CALL_TIMEOUT_SECONDS
    call_reserve_seconds: float = CALL_RESERVE_SECONDS
    load_policy: LoadRetryPolicy = field(default_factory=LoadRetryPolicy)
    api_down_alert_minutes: float = API_DOWN_ALERT_MINUTES
    plan_wait_alert_hours: float = PLAN_WAIT_ALERT_HOURS
    # The running copy's names, for the texts that say what to materialise or watch (the
    # executor fills them from crust_assets.names; the core has no Dagster to ask).
    batch_asset: str = "contact_enrichment_batch"
    contacts_asset: str = "enriched_contacts"
    submitter_sensor: str = "contact_enrichment_sensor"
