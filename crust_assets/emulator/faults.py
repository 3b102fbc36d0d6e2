"""Fault injection: the misbehaviours a real API shows, on demand.

Why: the client's retries, the sensor's crash recovery and the download
checks can only be trusted if each failure mode can be produced at will.
Faults are set at start (``--faults JSON``) and changed at run time
(``PATCH /_emulator/faults``); counted faults ("next N ...") are consumed as
they fire, so a test can say "the next 2 calls fail" and then observe the
recovery. Random faults draw from one RNG that ``seed`` makes reproducible.

Fault state lives in memory only: a restarted emulator starts from its
command-line faults again, which is what a test restarting it expects.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class FaultConfigError(ValueError):
    """A fault setting that is unknown or of the wrong type/range (answered with 400)."""


@dataclass
class Faults:
    """Current fault settings; every default means "off".

    Counted fields (``*_next_*``, ``rate_limit_burst``, ``fail_next_jobs``)
    go down by one each time they fire.
    """

    # API calls (submit, status, list) answered 500/502/503 before doing anything.
    error_rate: float = 0.0
    # The next N API calls answered 429 with rate-limit headers.
    rate_limit_burst: int = 0
    # Value of x-ratelimit-reset (seconds) on those 429s; Retry-After is its ceiling.
    rate_limit_reset_seconds: float = 1.0
    # Probability that a newly submitted job ends "failed".
    job_failure_rate: float = 0.0
    # The next N submitted jobs end "failed".
    fail_next_jobs: int = 0
    # Added to every API call.
    latency_seconds: float = 0.0
    # The next N API calls stall for hang_seconds before being answered normally.
    hang_next_calls: int = 0
    hang_seconds: float = 30.0
    # The next N accepted submits create the job, then wait submit_delay_seconds
    # before answering (the client times out: an ambiguous submission).
    delay_next_submits: int = 0
    submit_delay_seconds: float = 5.0
    # The next N successful downloads serve only the first half of the gzip bytes.
    truncate_next_downloads: int = 0
    # The next N successful downloads serve valid gzip whose JSONL has a broken line.
    corrupt_next_downloads: int = 0
    # Every result part's first download (while set) is a complete 200 holding a truncated gzip;
    # later downloads of that part are fine: a store that is flaky once per object.
    truncate_first_downloads: bool = False
    # The object store (downloads only; the API is fine) answers 503 SlowDown for this many
    # seconds after each job completes: an outage that outlasts the loader's own retries.
    store_down_after_completion_seconds: float = 0.0
    # Jobs submitted while set deliver un-enveloped records.
    flat_records: bool = False
    # Jobs submitted while set lose / repeat this many records in their results.
    drop_records_per_job: int = 0
    duplicate_records_per_job: int = 0
    # The next N otherwise valid submits are refused 400 (webhook_url "not reachable"); no job.
    reject_next_submits: int = 0
    # A careless API echoing the caller's secrets: every 400 of a submit names the submitted
    # webhook_url and carries it and the bearer key in error.metadata; a failed job's
    # error_message names the key and its webhook URL (built per request, never stored).
    echo_secrets: bool = False
    # Every submit (while set) is refused 403 permission_denied, as for a plan without contact
    # access; no job is created and nothing is billed.
    deny_contact_access: bool = False
    # Status for "insufficient credits" (402 or 403); None = the configured default.
    insufficient_credits_status: int | None = None
    # Seed of the RNG behind error_rate and job_failure_rate; None = unseeded.
    seed: int | None = None


_RATES = {"error_rate", "job_failure_rate"}
_SECONDS = {
    "rate_limit_reset_seconds",
    "latency_seconds",
    "hang_seconds",
    "submit_delay_seconds",
    "store_down_after_completion_seconds",
}
_COUNTS = {
    "rate_limit_burst",
    "fail_next_jobs",
    "hang_next_calls",
    "delay_next_submits",
    "truncate_next_downloads",
    "corrupt_next_downloads",
    "drop_records_per_job",
    "duplicate_records_per_job",
    "reject_next_submits",
}
_FLAGS = {"flat_records", "truncate_first_downloads", "echo_secrets", "deny_contact_access"}
FAULT_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Faults))


def _validate(name: str, value: Any) -> Any:
    """Check one fault value; returns it normalised (ints for counts, floats for rates)."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if name in _RATES:
        if not is_number or not 0.0 <= float(value) <= 1.0:
            raise FaultConfigError(f"{name} must be a number between 0 and 1")
        return float(value)
    if name in _SECONDS:
        if not is_number or not math.isfinite(value) or value < 0:
            raise FaultConfigError(f"{name} must be a non-negative number of seconds")
        return float(value)
    if name in _COUNTS:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise FaultConfigError(f"{name} must be a non-negative integer")
        return value
    if name in _FLAGS:
        if not isinstance(value, bool):
            raise FaultConfigError(f"{name} must be true or false")
        return value
    if name == "insufficient_credits_status":
        if value not in (None, 402, 403) or isinstance(value, bool):
            raise FaultConfigError("insufficient_credits_status must be 402, 403 or null")
        return value
    if name == "seed":
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise FaultConfigError("seed must be an integer or null")
        return value
    raise FaultConfigError(f"unknown fault {name!r}; known: {', '.join(FAULT_NAMES)}")


def validate_faults(changes: Any) -> dict[str, Any]:
    """Validate a (partial) fault mapping as given on the CLI or in a PATCH body."""
    if not isinstance(changes, Mapping):
        raise FaultConfigError("faults must be a JSON object")
    return {str(name): _validate(str(name), value) for name, value in changes.items()}


@dataclass
class FaultState:
    """The live fault settings plus the RNG they draw from.

    Only touched from the server's event loop thread, so no locking.
    """

    faults: Faults = field(default_factory=Faults)
    rng: random.Random = field(default_factory=random.Random)
    # Parts ("batch_id/part") already served truncated by truncate_first_downloads.
    spoiled_parts: set[str] = field(default_factory=set)

    @classmethod
    def from_mapping(cls, initial: Mapping[str, Any] | None) -> FaultState:
        state = cls()
        if initial:
            state.update(initial)
        return state

    def update(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Apply a partial update atomically (all keys valid, or nothing changes)."""
        clean = validate_faults(changes)
        for name, value in clean.items():
            setattr(self.faults, name, value)
        if "seed" in clean:
            self.rng = random.Random(clean["seed"])
        return self.as_dict()

    def reset(self) -> dict[str, Any]:
        """Everything off again, RNG unseeded."""
        self.faults = Faults()
        self.rng = random.Random()
        self.spoiled_parts = set()
        return self.as_dict()

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.faults)

    def take(self, name: str) -> bool:
        """Consume one unit of a counted fault; True when it fired."""
        remaining = getattr(self.faults, name)
        if remaining > 0:
            setattr(self.faults, name, remaining - 1)
            return True
        return False

    def roll(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate

    def server_error_status(self) -> int | None:
        """500/502/503 when the error_rate fault fires for this call, else None."""
        if self.roll(self.faults.error_rate):
            return self.rng.choice((500, 502, 503))
        return None

    def spoil_first_download(self, batch_id: str, part: str) -> bool:
        """True the first time a part is downloaded while truncate_first_downloads is set."""
        key = f"{batch_id}/{part}"
        if not self.faults.truncate_first_downloads or key in self.spoiled_parts:
            return False
        self.spoiled_parts.add(key)
        return True

    def store_down(self, completed_at: float, now: float) -> bool:
        """Whether the object store is down for a job completed at `completed_at`."""
        return now < completed_at + self.faults.store_down_after_completion_seconds

    def decide_job_failure(self) -> bool:
        """Decided once at submit: consumes fail_next_jobs first, then rolls the rate."""
        return self.take("fail_next_jobs") or self.roll(self.faults.job_failure_rate)
