"""Retry timing: exponential backoff with full jitter, server advice, one time budget.

Why full jitter (delay uniform in ``[0, min(cap, base * 2**n)]``): several
processes retrying against the same API should not retry in lock-step (AWS
architecture blog, "Exponential Backoff And Jitter"). Why a time budget on top
of ``max_attempts``: a sensor tick has 60 s in total, so a retry that cannot
finish inside the budget is not started at all; the caller gets the error now
and tries again on a later tick.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["RetryBudget", "RetryPolicy", "parse_retry_after"]

# A value this large in a "seconds" header is an absolute epoch timestamp, not a delay.
_EPOCH_THRESHOLD = 1_000_000_000


@dataclass(frozen=True)
class RetryPolicy:
    """How many times and for how long the client retries one logical call."""

    max_attempts: int = 5
    max_retry_seconds: float = 30.0
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    rate_limit_jitter: float = 1.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.max_retry_seconds < 0:
            raise ValueError("max_retry_seconds must be >= 0")
        if self.backoff_base < 0 or self.backoff_max < 0:
            raise ValueError("backoff_base and backoff_max must be >= 0")

    def backoff(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Full-jitter delay before retry ``retry_number`` (1 = first retry)."""
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** max(0, retry_number - 1)))
        return (rng or random).uniform(0.0, ceiling)

    def rate_limit_delay(self, advised: float, rng: random.Random | None = None) -> float:
        """The server's advised wait plus a little jitter, so waiters do not stampede."""
        jitter_ceiling = min(self.rate_limit_jitter, 0.1 + 0.25 * max(0.0, advised))
        return max(0.0, advised) + (rng or random).uniform(0.0, jitter_ceiling)

    def start(self) -> RetryBudget:
        """Begin tracking one logical call."""
        return RetryBudget(self)


@dataclass
class RetryBudget:
    """Attempts made and time spent on one logical call (created by ``RetryPolicy.start``)."""

    policy: RetryPolicy
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0)
    attempts: int = 0

    def __post_init__(self) -> None:
        self.started = self.clock()

    def note_attempt(self) -> None:
        self.attempts += 1

    @property
    def elapsed(self) -> float:
        return self.clock() - self.started

    def can_retry(self, delay: float) -> bool:
        """True if another attempt is allowed and sleeping ``delay`` stays inside the budget."""
        if self.attempts >= self.policy.max_attempts:
            return False
        return self.elapsed + delay <= self.policy.max_retry_seconds


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asks us to wait, from ``x-ratelimit-reset`` or ``Retry-After``.

    ``x-ratelimit-reset`` is documented in seconds; a value that looks like an
    epoch timestamp is converted. ``Retry-After`` may be seconds or an HTTP date.
    Returns None when neither header is present or parseable.
    """
    now = time.time() if now is None else now
    for name in ("x-ratelimit-reset", "retry-after"):
        raw = headers.get(name)
        if raw is None:
            continue
        raw = raw.strip()
        try:
            value = float(raw)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(raw)
            except (TypeError, ValueError):
                continue
            return max(0.0, when.timestamp() - now)
        if value != value or value < 0:  # NaN or negative: ignore
            continue
        if value >= _EPOCH_THRESHOLD:
            return max(0.0, value - now)
        return value
    return None
