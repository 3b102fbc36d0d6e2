"""The words of an alert, made safe to post: no secret, no contact value, no pre-signed URL.

A Slack channel is read by more people than the pipeline's data, and an error text can quote
what it failed on: a key echoed by a careless server, a pre-signed download URL, a person's
e-mail or profile. Every text that leaves for Slack goes through `safe_text`; the messages say
what failed, where, and name the partition, never the data. Pure: no Slack, no Dagster.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_CHARS = 600

_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    # A URL's query string: where pre-signed URLs carry their signature.
    (re.compile(r"(https?://[^\s?#'\"<>]+)\?[^\s'\"<>]*"), r"\1?<redacted>"),
    (re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}"), "<email>"),
    (re.compile(r"https?://(?:[\w-]+\.)?linkedin\.com/in/[^\s'\"<>,;)]+", re.I), "<profile URL>"),
)
_PHONE = re.compile(r"(?<![\w.:-])\+?\d[\d ().\-]{7,}\d(?![\w.:-])")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _phone(match: re.Match[str]) -> str:
    """A run of 9+ digits with phone punctuation; a date (and what follows it) is not one."""
    text = match.group(0)
    if _DATE.search(text) or sum(c.isdigit() for c in text) < 9:
        return text
    return "<phone>"


def safe_text(text: str, secrets: Iterable[str | None] = (), limit: int = MAX_CHARS) -> str:
    """`text` on one line, secrets masked as ***, contact values and URL queries replaced."""
    out = text
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        out = out.replace(secret, "***")
    for pattern, replacement in _REDACTIONS:
        out = pattern.sub(replacement, out)
    out = _PHONE.sub(_phone, out)
    out = " ".join(out.split())
    return out if len(out) <= limit else out[: limit - 1] + "…"


def run_failure_message(
    job: str, run_id: str, partition: str | None, error: str, secrets: Iterable[str | None]
) -> str:
    where = f" for {partition}" if partition else ""
    return f":red_circle: Run {run_id[:8]} of {job}{where} failed: {safe_text(error, secrets)}"


def check_failure_message(
    asset: str, check: str, partition: str | None, text: str, secrets: Iterable[str | None]
) -> str:
    where = f"[{partition}]" if partition else ""
    return f":warning: Check {check} of {asset}{where} failed: {safe_text(text, secrets)}"


def tick_failure_message(sensor: str, when: str, error: str, secrets: Iterable[str | None]) -> str:
    return f":red_circle: Sensor {sensor} failed its tick at {when}: {safe_text(error, secrets)}"
