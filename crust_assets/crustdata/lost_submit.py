"""Which listed job, if any, a submit that got no answer created.

A submit whose answer never arrived may or may not have created (and billed) a job, so it
is never sent again blindly. The job is looked for instead among the account's jobs
(``GET /batch``): one created inside the submit's window, widened by the clock skew between
us and the server, with as many identifiers as were sent, and not one we already know.
Exactly one such job is the lost one; none means the submit did not arrive; several cannot
be told apart, and guessing could attach the wrong job's results to our URLs.

This is a pure function of the listed jobs: fetching them (and how many pages) stays with
the caller.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .models import BatchStatus

__all__ = ["LostSubmitLookup", "find_lost_submit"]


@dataclass(frozen=True)
class LostSubmitLookup:
    """The jobs that could be the lost submit's, in listing order."""

    candidates: tuple[BatchStatus, ...]

    @property
    def match(self) -> BatchStatus | None:
        """The one job the submit created, or None when there is no single candidate."""
        return self.candidates[0] if len(self.candidates) == 1 else None

    @property
    def ambiguous(self) -> bool:
        """Several jobs fit: none of them may be taken for the lost one."""
        return len(self.candidates) > 1


def find_lost_submit(
    listed: Iterable[BatchStatus],
    *,
    sent_from: datetime,
    sent_until: datetime,
    identifier_count: int,
    skew_seconds: float,
    known_ids: Collection[str] = (),
) -> LostSubmitLookup:
    """The listed jobs created in ``[sent_from - skew, sent_until + skew]`` with
    ``identifier_count`` identifiers whose id is not in ``known_ids``.

    ``known_ids`` are jobs we already hold (a job of the same size confirmed a moment
    earlier is not the lost one). A naive datetime is taken as UTC.
    """
    skew = timedelta(seconds=skew_seconds)
    low = _as_utc(sent_from) - skew
    high = _as_utc(sent_until) + skew
    return LostSubmitLookup(
        tuple(
            job
            for job in listed
            if job.identifier_count == identifier_count
            and job.batch_id not in known_ids
            and job.created_at is not None
            and low <= _as_utc(job.created_at) <= high
        )
    )


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
