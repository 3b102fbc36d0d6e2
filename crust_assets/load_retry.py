"""When the sensor requests a failed `enriched_contacts` load again: a pure decision.

Why: a load run can fail for a reason that passes (the object store down for minutes, parts that
stay broken longer than the step's own RetryPolicy). The jobs are delivered and paid for, and
downloading them again is free, so the day must complete by itself once the store recovers:
the sensor requests the run again after a backoff (exponential, capped), a bounded number of
times, then gives up and says why. The decision takes the clock as a value, so it is tested on
a fake clock; nothing here knows Dagster.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

DEFAULT_MAX_LOAD_ATTEMPTS = 6
DEFAULT_LOAD_RETRY_SECONDS = 60.0
DEFAULT_LOAD_RETRY_MAX_SECONDS = 1800.0
# A run's failure text in an event or a tick summary: enough to act on, never a whole traceback.
REASON_LIMIT = 300


class LoadAction(StrEnum):
    REQUEST = "request"  # request attempt `attempt` now
    WAIT = "wait"  # not before `at`
    GIVE_UP = "give_up"  # `attempt` attempts made, all failed


class LoadRunStatus(StrEnum):
    """How the run of one load attempt stands, as far as the instance knows."""

    MISSING = "missing"  # requested, no run yet (the daemon has not launched it, or lost it)
    RUNNING = "running"  # queued, starting or started
    LOADED = "loaded"  # succeeded, or wrote the partition and a blocking check failed
    FAILED = "failed"  # ended failed before writing the partition
    CANCELED = "canceled"  # stopped by a person: not retried


@dataclass(frozen=True)
class LoadRun:
    """The newest run of one load attempt, and how it stands (read from the instance)."""

    run_id: str
    attempt: int
    status: LoadRunStatus
    ended_at: float | None
    reason: str = ""


@dataclass(frozen=True)
class LoadRetryPolicy:
    """env CRUST_MAX_LOAD_ATTEMPTS, CRUST_LOAD_RETRY_SECONDS, CRUST_LOAD_RETRY_MAX_SECONDS."""

    max_attempts: int = DEFAULT_MAX_LOAD_ATTEMPTS
    first_backoff_seconds: float = DEFAULT_LOAD_RETRY_SECONDS
    max_backoff_seconds: float = DEFAULT_LOAD_RETRY_MAX_SECONDS

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max load attempts must be at least 1, got {self.max_attempts}")
        if self.first_backoff_seconds < 0 or self.max_backoff_seconds < 0:
            raise ValueError("load retry backoff seconds must not be negative")

    def backoff(self, failed_attempts: int) -> float:
        """The wait after the n-th failed attempt: the first backoff, doubling, capped."""
        if failed_attempts < 1:
            return 0.0
        doubled = self.first_backoff_seconds * 2.0 ** min(failed_attempts - 1, 60)
        return min(doubled, self.max_backoff_seconds)


@dataclass(frozen=True)
class LoadDecision:
    action: LoadAction
    attempt: int  # REQUEST: the attempt to request; WAIT, GIVE_UP: the attempts made so far
    at: float | None = None  # WAIT: when the next attempt may be requested


def decide_load_retry(
    attempts: int, last_failure_at: float, now: float, policy: LoadRetryPolicy
) -> LoadDecision:
    """After `attempts` failed load attempts, the last one ending at `last_failure_at`."""
    if attempts >= policy.max_attempts:
        return LoadDecision(LoadAction.GIVE_UP, attempts)
    retry_at = last_failure_at + policy.backoff(attempts)
    if now < retry_at:
        return LoadDecision(LoadAction.WAIT, attempts, at=retry_at)
    return LoadDecision(LoadAction.REQUEST, attempts + 1)


def load_run_key(date: str, plan_id: str, attempt: int) -> str:
    """The run key of one load attempt; attempt 1 keeps the key loads always had, so a run
    requested before load retries existed is recognised and never launched twice."""
    base = f"enriched_contacts:{date}:{plan_id}"
    return base if attempt <= 1 else f"{base}:attempt-{attempt}"


def short_reason(text: str, limit: int = REASON_LIMIT) -> str:
    """One line, at most `limit` characters: a failure text fit for an event or a summary."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
