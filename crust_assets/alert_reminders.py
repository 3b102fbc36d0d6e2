"""When a failure is worth a Slack post: a new condition, a reminder while it holds, its end.

A lasting condition fails every tick of the submitter (a refused key while submissions are
paused, a plan waiting past its bound), and a failed check can be evaluated again with the same
result. Posting each one would post every ~30 s for hours, and a channel that floods gets muted.
So a failure is posted when its condition is new (its text, numbers aside, differs from the one
posted for the same thing), then at most once per reminder interval while it holds, and once
when it clears. Pure: the clock is the failures' own timestamps; no Slack, no Dagster.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

REMINDER_ENV = "CRUST_SLACK_REMINDER_MINUTES"
DEFAULT_REMINDER_MINUTES = 60.0
# Conditions remembered at most (one per failing check partition): the oldest posts go first.
MAX_STANDING = 1000

# A number on its own: a count, a duration, a clock time's parts. Dates (2026-12-01) and ids
# with letters or dashes (1a2b3c4d, 7f3e-0b2d) are not, so they still tell conditions apart.
_NUMBER = re.compile(r"(?<![\w.\-])\d+(?:\.\d+)?(?![\w\-])")


class Kind(StrEnum):
    NEW = "new"
    REMINDER = "reminder"
    CLEARED = "cleared"


@dataclass(frozen=True)
class Seen:
    """One outcome of something that can fail: a submitter tick, a check of one partition."""

    stream: str  # what it is the outcome of, e.g. "tick:contact_enrichment_sensor"
    at: float  # when (a Unix timestamp)
    failure: str | None  # the failure's text, already safe to post; None when it passed


@dataclass(frozen=True)
class Standing:
    """A failure that was posted and has not cleared."""

    condition: str
    since: float  # the first failure of this condition
    posted_at: float


@dataclass(frozen=True)
class Post:
    kind: Kind
    seen: Seen
    since: float  # when the condition began


def condition(text: str) -> str:
    """What a failure is about: its text with the numbers that change every tick blanked
    ('waited 25.3 h', '3 of 12 done', 'paused until ... 10:05:00')."""
    return _NUMBER.sub("#", text)


def reminder_seconds(raw: str | None) -> float:
    """The reminder interval from CRUST_SLACK_REMINDER_MINUTES (minutes, >= 0; 0 posts every
    failure); a wrong value is refused, naming the variable."""
    text = (raw or "").strip()
    if not text:
        return DEFAULT_REMINDER_MINUTES * 60
    try:
        minutes = float(text)
    except ValueError:
        minutes = math.nan
    if not (math.isfinite(minutes) and minutes >= 0):
        raise ValueError(f"{REMINDER_ENV} must be a number of minutes >= 0, got {text!r}")
    return minutes * 60


def step(
    standing: Mapping[str, Standing], seen: Seen, reminder: float
) -> tuple[Post | None, dict[str, Standing]]:
    """The post `seen` calls for, if any, and what stands after it (`reminder` in seconds)."""
    after = dict(standing)
    held = after.get(seen.stream)
    if seen.failure is None:
        if held is None:
            return None, after
        del after[seen.stream]
        return Post(Kind.CLEARED, seen, held.since), after
    new = condition(seen.failure)
    if held is None or held.condition != new:
        after[seen.stream] = Standing(new, seen.at, seen.at)
        return Post(Kind.NEW, seen, seen.at), _bounded(after)
    if seen.at - held.posted_at >= reminder:
        after[seen.stream] = Standing(new, held.since, seen.at)
        return Post(Kind.REMINDER, seen, held.since), after
    return None, after


def _bounded(standing: dict[str, Standing]) -> dict[str, Standing]:
    if len(standing) <= MAX_STANDING:
        return standing
    newest = sorted(standing.items(), key=lambda item: item[1].posted_at)[-MAX_STANDING:]
    return dict(newest)


def to_json(standing: Mapping[str, Standing]) -> dict[str, list[object]]:
    return {k: [s.condition, s.since, s.posted_at] for k, s in standing.items()}


def from_json(data: Mapping[str, list[object]]) -> dict[str, Standing]:
    return {k: Standing(str(c), float(a), float(p)) for k, (c, a, p) in data.items()}  # type: ignore[arg-type]
